"""`magnitude`: zero the smallest weights, per layer, across layers, or N:M along the inputs.

Weights are zeroed in place; the layers stay dense, so no memory saving is claimed (the report's
bytes after equal bytes before). The sparsity in the report is *measured* on the weights after
pruning, per layer and in total over the targeted layers. N:M groups run along each output row's
inputs (GPT-2's transposed `Conv1D` included): N weights kept in every M consecutive inputs.

    >>> import torch, compress
    >>> model = torch.nn.Sequential(torch.nn.Linear(16, 8))
    >>> model, (report,) = compress.apply(model, [MagnitudeConfig(pattern="2:4")], progress=False)
    >>> report.details["sparsity"], report.details["pattern"]
    (0.5, '2:4')
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import Field, field_validator, model_validator
from torch import nn

from compress.algorithms.pruning.masks import (
    global_masks,
    n_m_mask,
    parse_pattern,
    unstructured_mask,
)
from compress.core.config import PassConfig
from compress.core.registry import register_pass
from compress.errors import UserError
from compress.formats.dense import weight_matrix


class MagnitudeConfig(PassConfig):
    """Magnitude pruning: the weights with the smallest |w| become exactly zero."""

    pass_name: ClassVar[str] = "magnitude"

    sparsity: float = Field(
        0.5,
        ge=0.0,
        lt=1.0,
        description="Fraction of weights to zero, 0 <= s < 1. With a pattern it is implied ((M-N)/M); leave it unset or equal.",
    )
    scope: Literal["layer", "global"] = Field(
        "layer",
        description="'layer': every layer loses the same fraction; 'global': one threshold across all targeted layers.",
    )
    pattern: str | None = Field(
        None,
        description="N:M semi-structured sparsity, e.g. '2:4' (2 kept of every 4 consecutive inputs); null = unstructured.",
    )

    @field_validator("pattern")
    @classmethod
    def _valid_pattern(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            n, m = parse_pattern(value)
        except UserError as error:
            raise ValueError(str(error)) from None
        return f"{n}:{m}"

    @model_validator(mode="after")
    def _consistent(self) -> MagnitudeConfig:
        if self.pattern is None:
            return self
        n, m = parse_pattern(self.pattern)
        implied = (m - n) / m
        if "sparsity" in self.model_fields_set and abs(self.sparsity - implied) > 1e-9:
            raise ValueError(
                f"sparsity={self.sparsity} contradicts pattern {self.pattern!r}, which zeroes {m - n} of every {m} "
                f"weights (sparsity {implied:g}); remove sparsity or set it to {implied:g}"
            )
        if self.scope != "layer":
            raise ValueError(f"scope={self.scope!r} cannot be combined with pattern {self.pattern!r} (N:M is chosen within each group); remove one of them")
        self.__dict__["sparsity"] = implied  # keep the dump truthful without re-validating
        return self

    def tag(self) -> str:
        """Short variant name, e.g. 'magnitude-50%', 'magnitude-2:4', 'magnitude-30%-global'."""
        if self.pattern:
            return f"magnitude-{self.pattern}"
        return f"magnitude-{self.sparsity * 100:g}%" + ("-global" if self.scope == "global" else "")


def measured_sparsity(weights: dict[str, torch.Tensor]) -> tuple[float, dict[str, float]]:
    """(total, per layer) fraction of weights that are exactly zero.

    >>> measured_sparsity({"a": torch.tensor([0.0, 1.0]), "b": torch.tensor([0.0, 0.0])})
    (0.75, {'a': 0.5, 'b': 1.0})
    """
    zeros = {name: int((w == 0).sum()) for name, w in weights.items()}
    total = sum(w.numel() for w in weights.values())
    per_layer = {name: round(zeros[name] / weights[name].numel(), 6) for name in weights}
    return (round(sum(zeros.values()) / total, 6) if total else 0.0), per_layer


@register_pass(
    MagnitudeConfig,
    engine="oneshot",
    description="Magnitude pruning: unstructured per layer or global, or N:M (2:4, 4:8); zeros stored densely.",
)
class Magnitude:
    """Zero the smallest-magnitude weights of the selected layers in place."""

    def __init__(self, config: MagnitudeConfig, context=None) -> None:
        self.config = config
        self.masks: dict[str, torch.Tensor] = {}
        self.weights: dict[str, torch.Tensor] = {}  # (out, in) views of the pruned layers, measured at the end

    def prepare(self, selected: list[tuple[str, nn.Module]]) -> None:
        """Check N:M widths before anything is pruned; one threshold for the global scope."""
        config = self.config
        if config.pattern:
            _, m = parse_pattern(config.pattern)
            uneven = [f"{name} ({weight_matrix(module).shape[1]})" for name, module in selected if weight_matrix(module).shape[1] % m]
            if uneven:
                raise UserError(
                    f"magnitude: pattern {config.pattern!r} needs input widths divisible by {m}; "
                    f"{', '.join(uneven[:5])} are not. Add them to ignore or choose another pattern"
                )
        elif config.scope == "global":
            names = [name for name, _ in selected]
            self.masks = dict(zip(names, global_masks([weight_matrix(module) for _, module in selected], config.sparsity)))

    def compress(self, name: str, module: nn.Module, stats=None) -> None:
        weight = weight_matrix(module)
        if self.config.pattern:
            mask = n_m_mask(weight, *parse_pattern(self.config.pattern))
        else:
            mask = self.masks.pop(name) if name in self.masks else unstructured_mask(weight, self.config.sparsity)
        weight.masked_fill_(~mask, 0)
        self.weights[name] = weight

    def details(self) -> dict:
        total, per_layer = measured_sparsity(self.weights)
        config = self.config
        return {
            "sparsity": total,
            "sparsity_per_layer": per_layer,
            "target_sparsity": config.sparsity,
            "scope": config.scope,
            "pattern": config.pattern,
            "stored": "dense",
        }
