"""Pass registry: a config class keys its algorithm class; built-ins by name, plugins by entry point.

    @register_pass(RTNConfig, engine="oneshot", description="Round-to-nearest ...")
    class RTN:
        def __init__(self, config, context): ...
        def compress(self, name, module, stats=None): ...   # -> replacement module or None

Third-party packages expose a decorated algorithm class (or a `PassSpec`) in the entry-point
group `scalecompress.passes`:

    [project.entry-points."scalecompress.passes"]
    my_pass = "my_package.my_pass:MyAlgorithm"

    >>> from compress.core.registry import get_pass
    >>> get_pass("rtn").name, get_pass("rtn").engine
    ('rtn', 'oneshot')
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from compress.core.config import PassConfig
from compress.errors import ScaleCompressError, UserError

ENTRY_POINT_GROUP = "scalecompress.passes"
ENGINES = ("oneshot", "sequential", "train")
NEEDS = frozenset({"calibration", "teacher", "train_data"})

# name -> module whose import registers it; kept explicit so `ls passes` needs no package walk.
BUILTIN_PASSES: dict[str, str] = {
    "rtn": "compress.algorithms.quantization.rtn",
    "gptq": "compress.algorithms.quantization.gptq",
    "mixed": "compress.algorithms.quantization.mixed",
    "magnitude": "compress.algorithms.pruning.magnitude",
    "awq": "compress.algorithms.quantization.awq",
    "smoothquant": "compress.algorithms.quantization.smoothquant",
    "bnb": "compress.algorithms.quantization.bnb",
    "wanda": "compress.algorithms.pruning.wanda",
    "sparsegpt": "compress.algorithms.pruning.sparsegpt",
    "structured": "compress.algorithms.pruning.structured",
    "depth": "compress.algorithms.pruning.depth",
    "distill": "compress.algorithms.distillation.kd",
}

# What an algorithm class must define, by engine (any one of the names).
_REQUIRED = {"oneshot": ("compress", "compress_model"), "sequential": ("compress", "compress_block"), "train": ()}


@dataclass(frozen=True)
class PassSpec:
    """A registered pass: name, config class, algorithm class, engine and what it needs."""

    name: str
    config: type[PassConfig]
    algorithm: type
    engine: str
    description: str
    needs: frozenset[str] = frozenset()
    origin: str = "scalecompress"
    plan: Callable[..., list[tuple[str, int, int]]] | None = None  # (model, config) -> (module, bytes now, bytes after)

    @property
    def needs_calibration(self) -> bool:
        return "calibration" in self.needs

    @property
    def needs_teacher(self) -> bool:
        return "teacher" in self.needs

    def run(self, model, config: PassConfig | None = None, context: Any = None):
        """Run this one pass through the framework; returns its `PassReport`."""
        from compress.core.apply import run_passes
        from compress.core.context import PassContext

        return run_passes(model, [config or self.config()], context or PassContext(progress=False))[0]


_REGISTRY: dict[str, PassSpec] = {}
_entry_points_loaded = False


def register_pass(
    config: type[PassConfig],
    *,
    engine: str = "oneshot",
    needs: frozenset[str] | set[str] = frozenset(),
    description: str,
    plan: Callable | None = None,
    origin: str | None = None,
) -> Callable[[type], type]:
    """Class decorator binding an algorithm to its config class (whose `pass_name` names the pass)."""
    name = config.pass_name
    if not name:
        raise ScaleCompressError(f"{config.__name__} has no pass_name; set `pass_name = \"...\"` on the class")
    if engine not in ENGINES:
        raise ScaleCompressError(f"pass {name!r}: engine {engine!r} is not one of {', '.join(ENGINES)}")
    unknown = set(needs) - NEEDS
    if unknown:
        raise ScaleCompressError(f"pass {name!r}: unknown needs {sorted(unknown)}; allowed: {', '.join(sorted(NEEDS))}")

    def decorate(algorithm: type) -> type:
        required = _REQUIRED[engine]
        if required and not any(hasattr(algorithm, method) for method in required):
            raise ScaleCompressError(f"pass {name!r}: a {engine} algorithm defines {' or '.join(required)}; {algorithm.__name__} has neither")
        spec = PassSpec(
            name=name,
            config=config,
            algorithm=algorithm,
            engine=engine,
            description=description,
            needs=frozenset(needs),
            origin=origin or algorithm.__module__.split(".")[0].replace("compress", "scalecompress"),
            plan=plan,
        )
        _add(spec)
        algorithm.spec = spec
        return algorithm

    return decorate


def _add(spec: PassSpec) -> None:
    existing = _REGISTRY.get(spec.name)
    if existing is not None and existing.algorithm is not spec.algorithm:
        raise ScaleCompressError(
            f"pass {spec.name!r} is registered twice: by {existing.origin} and by {spec.origin}; "
            "uninstall one of the two packages or rename the pass"
        )
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
        except Exception as error:
            raise ScaleCompressError(f"pass plugin {entry.name!r} ({entry.value}) failed to import: {error}") from error
        spec = getattr(obj, "spec", obj)
        if not isinstance(spec, PassSpec):
            raise ScaleCompressError(
                f"pass plugin {entry.name!r} ({entry.value}) is not a PassSpec or an algorithm class decorated with register_pass"
            )
        if spec.name != entry.name:
            raise ScaleCompressError(f"pass plugin entry point {entry.name!r} points at a pass named {spec.name!r}; make them equal")
        origin = entry.dist.name if entry.dist else spec.origin
        _add(PassSpec(**{**spec.__dict__, "origin": origin}))


def _register_builtin(name: str) -> None:
    """Import a built-in pass's module; if it was imported before (its decorator already ran into
    a registry that has since been replaced), register the spec its algorithm class carries."""
    module = importlib.import_module(BUILTIN_PASSES[name])
    if name in _REGISTRY:
        return
    for value in vars(module).values():
        spec = getattr(value, "spec", None)
        if isinstance(spec, PassSpec) and spec.name == name and spec.algorithm is value:
            _add(spec)
            return


def pass_names() -> list[str]:
    """Every pass name known: built-ins and installed plugins."""
    _load_entry_points()
    return sorted(set(BUILTIN_PASSES) | set(_REGISTRY))


def get_pass(name: str) -> PassSpec:
    """The pass registered under `name`; unknown names get a "did you mean" hint."""
    if name in BUILTIN_PASSES and name not in _REGISTRY:
        _register_builtin(name)
    if name not in _REGISTRY:
        _load_entry_points()
    if name not in _REGISTRY:
        names = pass_names()
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UserError(f"unknown pass {name!r}{hint} (known passes: {', '.join(names)})")
    return _REGISTRY[name]


def spec_for(config: PassConfig) -> PassSpec:
    """The pass a config instance keys (its class must be the registered one)."""
    if not isinstance(config, PassConfig):
        raise UserError(
            f"expected a pass config (e.g. RTNConfig(bits=4)), got {type(config).__name__}; "
            "for a recipe file use compress.Recipe.from_yaml(path) and apply its variants[0].passes"
        )
    spec = get_pass(config.pass_name)
    if not isinstance(config, spec.config):
        raise UserError(f"{type(config).__name__} is not the config of pass {spec.name!r} ({spec.config.__name__})")
    return spec


def all_passes() -> list[PassSpec]:
    """Every registered pass, built-ins imported."""
    return [get_pass(name) for name in pass_names()]
