"""What a pass did, and the checks the framework makes on every module a pass touched.

`PassRun` is the framework's record of one pass while it runs: engines call `touch` for every
module the algorithm changed; it counts bytes before/after and refuses NaN/Inf weights.

    >>> import torch
    >>> check_finite("demo", "0", torch.nn.Linear(2, 2))  # fine: nothing raised
    >>> layer = torch.nn.Linear(2, 2); layer.bias.data[0] = float("nan")
    >>> check_finite("demo", "0", layer)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    compress.errors.UserError: pass 'demo' left 1 NaN/Inf value(s) in 0.bias; ...
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from compress.core.targets import describe_selection, select_linears
from compress.errors import UserError
from compress.formats.dense import module_bytes


@dataclass
class PassReport:
    """What a pass did: which modules, bytes before/after, time, and pass-specific numbers."""

    pass_name: str
    config: dict[str, Any]
    modules: list[str] = field(default_factory=list)
    bytes_before: int = 0
    bytes_after: int = 0
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pass": self.pass_name,
            "config": self.config,
            "modules": self.modules,
            "bytes_before": self.bytes_before,
            "bytes_after": self.bytes_after,
            "seconds": round(self.seconds, 4),
            "details": self.details,
        }


def check_finite(pass_name: str, name: str, module: nn.Module) -> None:
    """UserError naming the layer when a touched module holds NaN or Inf in a floating tensor."""
    for key, tensor in module.state_dict().items():
        if tensor is None or not tensor.is_floating_point() or tensor.device.type == "meta":
            continue
        if not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise UserError(
                f"pass {pass_name!r} left {bad} NaN/Inf value(s) in {name}.{key}; the model is not usable. "
                "Check the source weights for NaN/Inf (or fp16 overflow) and the pass's settings, then rerun"
            )


class PassRun:
    """One pass being run: its spec, config, algorithm instance and growing report."""

    def __init__(self, spec, config, algorithm) -> None:
        self.spec = spec
        self.config = config
        self.algorithm = algorithm
        self.report = PassReport(pass_name=spec.name, config=config.model_dump(mode="json"))
        self.seconds = 0.0  # the pass's own time; the engine adds its share of a shared walk

    @property
    def name(self) -> str:
        return self.spec.name

    def touch(self, name: str, bytes_before: int, module_after: nn.Module | None) -> None:
        """Record that `name` changed: bytes before, the module now there (None: removed)."""
        if module_after is not None:
            check_finite(self.name, name, module_after)
        self.report.modules.append(name)
        self.report.bytes_before += bytes_before
        self.report.bytes_after += 0 if module_after is None else module_bytes(module_after)

    def select(self, model: nn.Module) -> list[tuple[str, nn.Module]]:
        """The modules this pass acts on (the algorithm's `select(model)` or its targets' linears).

        Zero modules is an error naming the pass and what its targets matched.
        """
        if hasattr(self.algorithm, "select"):
            selected = list(self.algorithm.select(model))
        else:
            selected = select_linears(model, self.config.targets, self.config.ignore)
        if not selected:
            self.fail_empty(model)
        return selected

    def fail_empty(self, model: nn.Module) -> None:
        raise UserError(
            f"pass {self.name!r} touched no module: {describe_selection(model, self.config.targets, self.config.ignore)}. "
            "Fix its targets/ignore (see `scalecompress ls passes`) or remove the pass"
        )
