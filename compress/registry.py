"""Pass registry: built-ins by name (imported on first use), third parties by entry point.

Third-party packages expose a `PassSpec` (or a function decorated with `register_pass`) in
the entry-point group `scalecompress.passes`:

    [project.entry-points."scalecompress.passes"]
    my_pass = "my_package.my_pass:spec"

    >>> from compress.registry import get_pass
    >>> get_pass("rtn").name
    'rtn'
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
from collections.abc import Callable

from compress.errors import ScaleCompressError, UserError
from compress.passes.base import PassConfig, PassSpec

ENTRY_POINT_GROUP = "scalecompress.passes"

# name -> module whose import registers it; kept explicit so `ls passes` needs no package walk.
BUILTIN_PASSES: dict[str, str] = {
    "rtn": "compress.passes.quantization.rtn",
    "magnitude": "compress.passes.pruning.magnitude",
}

_REGISTRY: dict[str, PassSpec] = {}
_entry_points_loaded = False


def register_pass(
    name: str,
    *,
    config: type[PassConfig],
    description: str,
    needs_calibration: bool = False,
    needs_teacher: bool = False,
    plan=None,
    origin: str | None = None,
) -> Callable:
    """Decorator binding a pass function to its name and config class; duplicates fail loudly."""

    def decorate(function):
        spec = PassSpec(
            name=name,
            config=config,
            run=function,
            description=description,
            origin=origin or function.__module__.split(".")[0].replace("compress", "scalecompress"),
            needs_calibration=needs_calibration,
            needs_teacher=needs_teacher,
            plan=plan,
        )
        _add(spec)
        function.spec = spec
        return function

    return decorate


def _add(spec: PassSpec) -> None:
    existing = _REGISTRY.get(spec.name)
    if existing is not None and existing.run is not spec.run:
        raise ScaleCompressError(
            f"pass {spec.name!r} is registered twice: by {existing.origin} and by {spec.origin}; "
            "uninstall one of the two packages or rename the pass"
        )
    if spec.config.pass_name != spec.name:
        spec.config.pass_name = spec.name
    _REGISTRY[spec.name] = spec


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in BUILTIN_PASSES:
            raise ScaleCompressError(
                f"package {entry.dist.name if entry.dist else '?'} registers pass {entry.name!r}, "
                "which is a built-in pass name; rename it in that package's entry points"
            )
        try:
            obj = entry.load()
        except Exception as error:  # noqa: BLE001 - a broken plugin must say which one it is
            raise ScaleCompressError(f"pass plugin {entry.name!r} ({entry.value}) failed to import: {error}") from error
        spec = getattr(obj, "spec", obj)
        if not isinstance(spec, PassSpec):
            raise ScaleCompressError(
                f"pass plugin {entry.name!r} ({entry.value}) is not a PassSpec or a function decorated with register_pass"
            )
        if spec.name != entry.name:
            raise ScaleCompressError(f"pass plugin entry point {entry.name!r} points at a pass named {spec.name!r}; make them equal")
        origin = entry.dist.name if entry.dist else spec.origin
        _add(PassSpec(**{**spec.__dict__, "origin": origin}))


def pass_names() -> list[str]:
    """Every pass name known: built-ins and installed plugins."""
    _load_entry_points()
    return sorted(set(BUILTIN_PASSES) | set(_REGISTRY))


def get_pass(name: str) -> PassSpec:
    """The pass registered under `name`; unknown names get a "did you mean" hint."""
    if name in BUILTIN_PASSES and name not in _REGISTRY:
        importlib.import_module(BUILTIN_PASSES[name])
    if name not in _REGISTRY:
        _load_entry_points()
    if name not in _REGISTRY:
        names = pass_names()
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UserError(f"unknown pass {name!r}{hint} (known passes: {', '.join(names)})")
    return _REGISTRY[name]


def all_passes() -> list[PassSpec]:
    """Every registered pass, built-ins imported."""
    return [get_pass(name) for name in pass_names()]
