"""What a pass is: a pydantic config bound to one function, and the report it returns.

    >>> from compress.passes.base import PassConfig
    >>> class Noop(PassConfig):
    ...     pass_name = "noop"
    >>> Noop().targets
    ['Linear']
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn


class PassConfig(BaseModel):
    """Base of every pass config: unknown keys are errors, every field typed and described."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)

    pass_name: ClassVar[str] = ""

    version: int = Field(1, ge=1, description="Config schema version, for recipes that outlive the code.")
    targets: list[str] = Field(
        default_factory=lambda: ["Linear"],
        description="Modules to transform: class names, module names/suffixes, or 're:<regex>'. "
        "Embeddings and lm_head are only selected when named explicitly.",
    )
    ignore: list[str] = Field(default_factory=list, description="Modules to leave alone, same syntax as targets.")

    def tag(self) -> str:
        """Short, readable name for variants: the pass name and the fields set off their default."""
        parts = [self.pass_name]
        for name, info in type(self).model_fields.items():
            if name in ("version", "targets", "ignore"):
                continue
            value = getattr(self, name)
            if value != info.get_default(call_default_factory=True):
                parts.append(f"{name}{value}")
        return "-".join(parts)

    def to_recipe_dict(self) -> dict[str, Any]:
        """The recipe form: `{"pass": name, **fields}`."""
        return {"pass": self.pass_name, **self.model_dump(mode="json")}


@dataclass
class PassContext:
    """What a pass may use besides the model: calibration data, tokenizer, teacher, device."""

    calibration: torch.Tensor | None = None  # LongTensor [n_samples, seq_len] of token ids
    tokenizer: Any = None
    teacher: nn.Module | None = None
    device: str = "cpu"
    progress: bool = True


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


PassFunction = Callable[[nn.Module, PassConfig, PassContext], PassReport]
PlanFunction = Callable[[nn.Module, PassConfig], list[tuple[str, int, int]]]


@dataclass(frozen=True)
class PassSpec:
    """A registered pass: its name, config class, function and what it needs."""

    name: str
    config: type[PassConfig]
    run: PassFunction
    description: str
    origin: str = "scalecompress"
    needs_calibration: bool = False
    needs_teacher: bool = False
    plan: PlanFunction | None = None  # (module, bytes now, bytes after) for --dry-run


class Timer:
    """`with Timer() as t: ...; t.seconds` — wall time of a pass."""

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc) -> bool:
        self.seconds = time.perf_counter() - self.start
        return False
