"""What unstructured pruning passes share: the sparsity/pattern/storage fields of their configs,
how a pruned layer is stored, and the sparsity measured afterwards.

    >>> import torch
    >>> config = SparsityConfig(pattern="2:4")
    >>> config.sparsity, config.n_m()
    (0.5, (2, 4))
    >>> layer = torch.nn.Linear(8, 4)
    >>> with torch.no_grad(): layer.weight[:, ::2] = 0
    >>> type(store(layer, "sparse")).__name__
    'SparseLinear'
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, field_validator, model_validator
from torch import nn

from compress.algorithms.pruning.masks import parse_pattern
from compress.core.config import PassConfig
from compress.errors import UserError
from compress.formats.base import PackedModule
from compress.formats.dense import weight_matrix
from compress.formats.sparse_linear import SparseLinear


class SparsityConfig(PassConfig):
    """Fields of every unstructured pruning pass: how much, which pattern, how it is stored."""

    sparsity: float = Field(
        0.5,
        ge=0.0,
        lt=1.0,
        description="Fraction of weights to zero, 0 <= s < 1. With a pattern it is implied ((M-N)/M); leave it unset or equal.",
    )
    pattern: str | None = Field(
        None,
        description="N:M semi-structured sparsity, e.g. '2:4' (2 kept of every 4 consecutive inputs); null = unstructured.",
    )
    storage: Literal["sparse", "dense"] = Field(
        "sparse",
        description="'sparse': kept values + bitmask (compressed-tensors' sparse-bitmask / sparse-24-bitmask), bytes fall with sparsity; "
        "'dense': zeros stored in place (for a quantization pass that follows).",
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
    def _consistent(self):
        if self.pattern is None:
            return self
        n, m = parse_pattern(self.pattern)
        implied = (m - n) / m
        if "sparsity" in self.model_fields_set and abs(self.sparsity - implied) > 1e-9:
            raise ValueError(
                f"sparsity={self.sparsity} contradicts pattern {self.pattern!r}, which zeroes {m - n} of every {m} "
                f"weights (sparsity {implied:g}); remove sparsity or set it to {implied:g}"
            )
        self.__dict__["sparsity"] = implied  # keep the dump truthful without re-validating
        return self

    def n_m(self) -> tuple[int, int] | None:
        return parse_pattern(self.pattern) if self.pattern else None

    def check_widths(self, selected: list[tuple[str, nn.Module]]) -> None:
        """N:M needs input widths divisible by M: say which layers are not, before pruning any."""
        if not self.pattern:
            return
        _, m = parse_pattern(self.pattern)
        uneven = [f"{name} ({weight_matrix(module).shape[1]})" for name, module in selected if weight_matrix(module).shape[1] % m]
        if uneven:
            raise UserError(
                f"{self.pass_name}: pattern {self.pattern!r} needs input widths divisible by {m}; "
                f"{', '.join(uneven[:5])} are not. Add them to ignore or choose another pattern"
            )


def store(module: nn.Module, storage: str) -> nn.Module | None:
    """The pruned layer as stored: a `SparseLinear` (from a dense or quantized layer), or None
    (left as it is, zeros in place)."""
    if storage == "dense":
        return None
    if isinstance(module, PackedModule):
        return SparseLinear.from_quantized(module)
    return SparseLinear.from_linear(module)


def weight_of(module: nn.Module) -> torch.Tensor:
    """The (out, in) weight of a dense, quantized or sparse layer, for measuring."""
    return module.dequantize() if isinstance(module, PackedModule) else weight_matrix(module)


class SparsityTally:
    """Zeros counted per layer as each is pruned (no weight kept), then measured in total.

    >>> tally = SparsityTally()
    >>> tally.add("a", torch.tensor([0.0, 1.0])); tally.add("b", torch.tensor([0.0, 0.0]))
    >>> tally.measured()
    (0.75, {'a': 0.5, 'b': 1.0})
    """

    def __init__(self) -> None:
        self.counts: dict[str, tuple[int, int]] = {}

    def add(self, name: str, weight: torch.Tensor) -> None:
        self.counts[name] = (int((weight == 0).sum()), weight.numel())

    def measured(self) -> tuple[float, dict[str, float]]:
        """(total, per layer) fraction of weights that are exactly zero."""
        zeros = sum(z for z, _ in self.counts.values())
        total = sum(n for _, n in self.counts.values())
        per_layer = {name: round(z / n, 6) for name, (z, n) in self.counts.items()}
        return (round(zeros / total, 6) if total else 0.0), per_layer

    def details(self, config: SparsityConfig) -> dict:
        total, per_layer = self.measured()
        return {"sparsity": total, "sparsity_per_layer": per_layer, "target_sparsity": config.sparsity, "pattern": config.pattern, "stored": config.storage}
