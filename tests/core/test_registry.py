from types import SimpleNamespace

import pytest
import torch

import compress
from compress.core import registry
from compress.core.config import PassConfig
from compress.errors import ScaleCompressError, UserError


def test_builtin_passes_are_listed():
    assert {"rtn", "magnitude"} <= set(registry.pass_names())
    assert registry.get_pass("rtn").config.pass_name == "rtn"


def test_unknown_pass_suggests_the_closest_name():
    with pytest.raises(UserError, match=r"unknown pass 'rnt'; did you mean 'rtn'\?"):
        registry.get_pass("rnt")


class _PluginConfig(PassConfig):
    pass_name = "plugin_noop"


class _PluginAlgorithm:
    """Scales every selected weight by 1 (a no-op that still touches the modules)."""

    def __init__(self, config, context):
        self.config = config

    def compress(self, name, module, stats=None):
        module.weight.mul_(1.0)


PLUGIN_SPEC = registry.PassSpec(name="plugin_noop", config=_PluginConfig, algorithm=_PluginAlgorithm, engine="oneshot", description="does nothing", origin="?")


def _fake_entry_points(monkeypatch, entries):
    monkeypatch.setattr(registry.importlib.metadata, "entry_points", lambda group: entries if group == registry.ENTRY_POINT_GROUP else [])
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def _entry(name, obj, dist="acme-passes"):
    return SimpleNamespace(name=name, value=f"acme:{name}", dist=SimpleNamespace(name=dist), load=lambda: obj)


def test_third_party_pass_arrives_through_entry_points_and_runs(monkeypatch):
    _fake_entry_points(monkeypatch, [_entry("plugin_noop", PLUGIN_SPEC)])
    spec = registry.get_pass("plugin_noop")
    assert spec.origin == "acme-passes"
    assert "plugin_noop" in registry.pass_names()
    _, (report,) = compress.apply(torch.nn.Sequential(torch.nn.Linear(4, 4)), [_PluginConfig()], progress=False)
    assert report.modules == ["0"] and report.bytes_before == report.bytes_after == 80


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

    class One(_PluginAlgorithm):
        pass

    class Two(_PluginAlgorithm):
        pass

    registry.register_pass(_PluginConfig, description="one")(One)
    with pytest.raises(ScaleCompressError, match="registered twice"):
        registry.register_pass(_PluginConfig, description="two")(Two)


def test_registration_checks_the_algorithm_shape():
    class Nameless(PassConfig):
        pass

    with pytest.raises(ScaleCompressError, match="no pass_name"):
        registry.register_pass(Nameless, description="?")
    with pytest.raises(ScaleCompressError, match="engine 'blockwise'"):
        registry.register_pass(_PluginConfig, engine="blockwise", description="?")
    with pytest.raises(ScaleCompressError, match="unknown needs"):
        registry.register_pass(_PluginConfig, needs={"labels"}, description="?")
    with pytest.raises(ScaleCompressError, match="defines compress or compress_block"):
        registry.register_pass(_PluginConfig, engine="sequential", description="?")(object)


def test_builtin_imported_while_the_registry_was_swapped_is_still_found(monkeypatch):
    """A built-in module first imported while a test had swapped the registry must not be lost
    ("unknown pass 'gptq'; did you mean 'gptq'?" was seen after such a test)."""
    registry.get_pass("gptq")  # imported and registered
    monkeypatch.setattr(registry, "_REGISTRY", {k: v for k, v in registry._REGISTRY.items() if k != "gptq"})
    spec = registry.get_pass("gptq")
    assert spec.name == "gptq" and spec.engine == "sequential"
