"""`wanda`: Pruning by Weights and activations (Sun et al. 2023), no weight update.

Score of weight W_ij = |W_ij| · ‖X_j‖₂, the L2 norm of input j over the calibration tokens
(running sum of squares from the sequential engine's statistics). Weights are compared within
each output row (the paper's comparison group): every row loses the same fraction; or, with an
N:M pattern, the M - N lowest scores of every M consecutive inputs of a row are zeroed.
Blocks are calibrated in order, each on the outputs of the blocks already pruned, as the
reference does.

    >>> import torch
    >>> W = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    >>> wanda_mask(W, torch.tensor([16.0, 4.0, 1.0, 0.25]), sparsity=0.5, pattern=None)
    tensor([[ True,  True, False, False]])
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from compress.algorithms.pruning.base import SparsityConfig, SparsityTally, store, weight_of
from compress.algorithms.pruning.masks import n_m_mask, parse_pattern
from compress.core.registry import register_pass
from compress.core.targets import select_linears
from compress.formats.dense import weight_matrix
from compress.formats.sparse_linear import SparseLinear


class WandaConfig(SparsityConfig):
    """Wanda: prune by |weight| x input-activation norm, per output row or N:M; no update."""

    pass_name: ClassVar[str] = "wanda"

    def tag(self) -> str:
        """'wanda-50%', 'wanda-2:4' (+ '-dense' when zeros are stored in place)."""
        name = f"wanda-{self.pattern}" if self.pattern else f"wanda-{self.sparsity * 100:g}%"
        return name + ("-dense" if self.storage == "dense" else "")


def wanda_mask(weight: torch.Tensor, input_sq: torch.Tensor, sparsity: float, pattern: str | None) -> torch.Tensor:
    """Keep-mask (out, in) from scores |W| · sqrt(Σ x_j²): per row, or N:M along the inputs."""
    scores = weight.detach().float().abs() * input_sq.float().sqrt().to(weight.device).unsqueeze(0)
    if pattern:
        return n_m_mask(scores, *parse_pattern(pattern))
    rows, columns = scores.shape
    drop = int(columns * sparsity)
    keep = torch.ones_like(scores, dtype=torch.bool)
    keep.scatter_(1, torch.sort(scores, dim=1, stable=True).indices[:, :drop], False)
    return keep


@register_pass(
    WandaConfig,
    engine="sequential",
    needs={"calibration"},
    description="Wanda: prune by |W|·‖X‖ per output row or N:M (2:4, 4:8), no weight update; stored sparse (bitmask) by default.",
)
class Wanda:
    """Input norms per layer (`observe`), then the per-row or N:M mask (`compress`)."""

    def __init__(self, config: WandaConfig, context=None) -> None:
        self.config = config
        self.tally = SparsityTally()

    def select(self, model: nn.Module) -> list[tuple[str, nn.Module]]:
        selected = select_linears(model, self.config.targets, self.config.ignore)
        self.config.check_widths(selected)
        return selected

    def observe(self, name: str, module: nn.Module, inputs: torch.Tensor, stats) -> None:
        stats.input_sq(name, inputs.shape[1]).add(inputs)

    def compress(self, name: str, module: nn.Module, stats) -> SparseLinear | None:
        weight = weight_matrix(module)
        mask = wanda_mask(weight, stats.input_sq(name).sum, self.config.sparsity, self.config.pattern)
        weight.data.masked_fill_(~mask, 0)
        stored = store(module, self.config.storage)
        self.tally.add(name, weight_of(stored if stored is not None else module))
        return stored

    def details(self) -> dict:
        return self.tally.details(self.config)
