from types import SimpleNamespace

import pytest

from compress import registry
from compress.errors import ScaleCompressError, UserError
from compress.passes.base import PassConfig, PassReport, PassSpec


def test_builtin_passes_are_listed():
    assert {"rtn", "magnitude"} <= set(registry.pass_names())
    assert registry.get_pass("rtn").config.pass_name == "rtn"


def test_unknown_pass_suggests_the_closest_name():
    with pytest.raises(UserError, match=r"unknown pass 'rnt'; did you mean 'rtn'\?"):
        registry.get_pass("rnt")


class _PluginConfig(PassConfig):
    pass_name = "plugin_noop"


def _plugin_run(model, config, context):
    return PassReport(pass_name="plugin_noop", config=config.model_dump())


PLUGIN_SPEC = PassSpec(name="plugin_noop", config=_PluginConfig, run=_plugin_run, description="does nothing", origin="?")


def _fake_entry_points(monkeypatch, entries):
    monkeypatch.setattr(registry.importlib.metadata, "entry_points", lambda group: entries if group == registry.ENTRY_POINT_GROUP else [])
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def _entry(name, obj, dist="acme-passes"):
    return SimpleNamespace(name=name, value=f"acme:{name}", dist=SimpleNamespace(name=dist), load=lambda: obj)


def test_third_party_pass_arrives_through_entry_points(monkeypatch):
    _fake_entry_points(monkeypatch, [_entry("plugin_noop", PLUGIN_SPEC)])
    spec = registry.get_pass("plugin_noop")
    assert spec.origin == "acme-passes"
    assert "plugin_noop" in registry.pass_names()


def test_plugin_shadowing_a_builtin_fails_loudly(monkeypatch):
    _fake_entry_points(monkeypatch, [_entry("rtn", PLUGIN_SPEC)])
    with pytest.raises(ScaleCompressError, match="built-in pass name"):
        registry.pass_names()


def test_plugin_that_is_not_a_pass_is_named(monkeypatch):
    _fake_entry_points(monkeypatch, [_entry("broken", object())])
    with pytest.raises(ScaleCompressError, match="'broken'"):
        registry.pass_names()


def test_duplicate_registration_fails(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    registry.register_pass("dup_pass", config=_PluginConfig, description="one")(lambda m, c, x: None)
    with pytest.raises(ScaleCompressError, match="registered twice"):
        registry.register_pass("dup_pass", config=_PluginConfig, description="two")(lambda m, c, x: None)
