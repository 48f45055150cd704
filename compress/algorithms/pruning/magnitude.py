"""`magnitude`: zero the smallest weights, per row, per layer, across layers, or N:M along the inputs.

Scopes (the comparison group within which the smallest |w| are zeroed):
- `row`: every output row loses the same fraction — the group Wanda found matters; the fair
  baseline for wanda and sparsegpt, which compare per row too;
- `layer`: every layer loses the same fraction; `global`: one threshold across all layers.

The sparsity in the report is *measured* on the weights after pruning, per layer and in total.
N:M groups run along each output row's inputs (GPT-2's transposed `Conv1D` included): N
weights kept in every M consecutive inputs. Stored sparse (kept values + bitmask, so the
bytes fall) unless `storage: dense` keeps the zeros in place.

    >>> import torch, compress
    >>> model = torch.nn.Sequential(torch.nn.Linear(16, 8))
    >>> model, (report,) = compress.apply(model, [MagnitudeConfig(pattern="2:4")], progress=False)
    >>> report.details["sparsity"], report.details["pattern"], type(model[0]).__name__
    (0.5, '2:4', 'SparseLinear')
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from compress.algorithms.pruning.base import SparsityConfig, SparsityTally, store, weight_of
from compress.algorithms.pruning.masks import global_masks, n_m_mask, parse_pattern, unstructured_mask
from compress.core.registry import register_pass
from compress.formats.dense import weight_matrix


class MagnitudeConfig(SparsityConfig):
    """Magnitude pruning: the weights with the smallest |w| become exactly zero."""

    pass_name: ClassVar[str] = "magnitude"

    scope: Literal["row", "layer", "global"] = Field(
        "layer",
        description="'row': every output row loses the same fraction (Wanda's comparison group); 'layer': every layer the same fraction; "
        "'global': one threshold across all targeted layers.",
    )

    @model_validator(mode="after")
    def _scope_and_pattern(self) -> MagnitudeConfig:
        if self.pattern is not None and self.scope == "global":
            raise ValueError(f"scope='global' cannot be combined with pattern {self.pattern!r} (N:M is chosen within each group); remove one of them")
        return self

    def tag(self) -> str:
        """Short variant name, e.g. 'magnitude-50%', 'magnitude-2:4', 'magnitude-50%-row', 'magnitude-30%-global'."""
        if self.pattern:
            name = f"magnitude-{self.pattern}"
        else:
            name = f"magnitude-{self.sparsity * 100:g}%" + ("" if self.scope == "layer" else f"-{self.scope}")
        return name + ("-dense" if self.storage == "dense" else "")


def row_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Keep-mask dropping the int(in * sparsity) smallest |w| of every row (ties by position).

    >>> row_mask(torch.tensor([[1.0, -4.0, 2.0, 3.0], [5.0, 0.5, 6.0, 7.0]]), 0.5)
    tensor([[False,  True, False,  True],
            [False, False,  True,  True]])
    """
    drop = int(weight.shape[1] * sparsity)
    keep = torch.ones_like(weight, dtype=torch.bool)
    keep.scatter_(1, torch.sort(weight.detach().float().abs(), dim=1, stable=True).indices[:, :drop], False)
    return keep


@register_pass(
    MagnitudeConfig,
    engine="oneshot",
    description="Magnitude pruning: unstructured per row, per layer or global, or N:M (2:4, 4:8); stored sparse (bitmask) by default.",
)
class Magnitude:
    """Zero the smallest-magnitude weights of the selected layers in place."""

    def __init__(self, config: MagnitudeConfig, context=None) -> None:
        self.config = config
        self.masks: dict[str, torch.Tensor] = {}
        self.tally = SparsityTally()

    def prepare(self, selected: list[tuple[str, nn.Module]]) -> None:
        """Check N:M widths before anything is pruned; one threshold for the global scope."""
        config = self.config
        config.check_widths(selected)
        if config.scope == "global" and not config.pattern:
            names = [name for name, _ in selected]
            self.masks = dict(zip(names, global_masks([weight_matrix(module) for _, module in selected], config.sparsity)))

    def compress(self, name: str, module: nn.Module, stats=None) -> nn.Module | None:
        config = self.config
        weight = weight_matrix(module)
        if config.pattern:
            mask = n_m_mask(weight, *parse_pattern(config.pattern))
        elif config.scope == "row":
            mask = row_mask(weight, config.sparsity)
        else:
            mask = self.masks.pop(name) if name in self.masks else unstructured_mask(weight, config.sparsity)
        weight.data.masked_fill_(~mask, 0)
        stored = store(module, config.storage)
        self.tally.add(name, weight_of(stored if stored is not None else module))
        return stored

    def details(self) -> dict:
        return {**self.tally.details(self.config), "scope": self.config.scope}
