"""`sparsegpt`: SparseGPT (Frantar & Alistarh 2023) — prune with Optimal-Brain-Surgeon weight
reconstruction from the layer's input Hessian, optionally quantizing in the same sweep.

Per layer, with H = 2/N Σ x xᵀ (the sequential engine's running Hessian, shared with GPTQ) and
U the upper Cholesky factor of the damped H⁻¹ (the same `damped_cholesky_inverse`):
columns are visited in order, in lazy batches of `block_size`. Unstructured: at the start of
each batch the `sparsity` fraction of its weights with the lowest w² / U_jj² is masked (the
paper's adaptive mask selection); N:M: at every M-th column, the M - N lowest w² / U_jj² of the
next M columns in each row. A masked weight becomes 0 (or, with `bits`, every weight is then
rounded to the group's grid, zero staying exactly zero), and its error (w - q) / U_jj is spread
over the columns not yet visited: W[:, j:] -= err · U[j, j:] (the shared `column_sweep`).

    >>> import torch
    >>> W, X = torch.randn(8, 32), torch.randn(256, 32)
    >>> result = sparsegpt_prune(W, 2 * X.T.double() @ X.double() / 256, sparsity=0.5)
    >>> float((result.weight == 0).float().mean())
    0.5
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import torch
from pydantic import Field
from torch import nn

from compress.algorithms.obs import column_sweep
from compress.algorithms.pruning.base import SparsityConfig, SparsityTally, store, weight_of
from compress.algorithms.pruning.masks import parse_pattern
from compress.algorithms.quantization.gptq import reconstruction_error
from compress.algorithms.quantization.grid import find_params, pack
from compress.core.registry import register_pass
from compress.core.targets import select_linears
from compress.engines.stats import damped_cholesky_inverse
from compress.formats.affine import group_count
from compress.formats.dense import weight_matrix


class SparseGPTConfig(SparsityConfig):
    """SparseGPT: prune with OBS reconstruction from the input Hessian, unstructured or N:M, optionally + k-bit."""

    pass_name: ClassVar[str] = "sparsegpt"

    damp: float = Field(0.01, gt=0, le=1, description="Dampening added to the Hessian diagonal, as a fraction of its mean; raised x10 when Cholesky fails.")
    block_size: int = Field(128, ge=1, le=4096, description="Columns per lazy batch; the unstructured mask is chosen per batch (the paper's 128).")
    bits: int | None = Field(None, ge=2, le=8, description="Joint quantization: also round the kept weights to a k-bit grid in the same sweep (stored packed); null = no quantization.")
    group_size: int | None = Field(128, ge=8, description="With bits: inputs sharing one scale/zero per output row; null = per channel.")
    symmetric: bool = Field(False, description="With bits: grid symmetric around 0 instead of min-max asymmetric.")

    def tag(self) -> str:
        """'sparsegpt-50%', 'sparsegpt-2:4-w4-g128' (+ '-dense' when zeros are stored in place)."""
        name = f"sparsegpt-{self.pattern}" if self.pattern else f"sparsegpt-{self.sparsity * 100:g}%"
        if self.bits:
            name += f"-w{self.bits}-" + (f"g{self.group_size}" if self.group_size else "pc")
        return name + ("-dense" if self.storage == "dense" else "")


class SparseGPTResult(NamedTuple):
    weight: torch.Tensor  # pruned (and, with bits, dequantized) weight (out, in)
    codes: torch.Tensor | None  # uint8 (out, in) with bits
    scales: torch.Tensor | None  # fp16 (out, groups)
    zeros: torch.Tensor | None
    damp: float
    retries: int


def sparsegpt_prune(
    weight: torch.Tensor,
    hessian: torch.Tensor,
    *,
    sparsity: float,
    pattern: str | None = None,
    damp: float = 0.01,
    block_size: int = 128,
    bits: int | None = None,
    group_size: int | None = 128,
    symmetric: bool = False,
) -> SparseGPTResult:
    """SparseGPT on one weight (out, in) with its input Hessian (in, in); float32 maths."""
    W = weight.detach().to(torch.float32, copy=True, memory_format=torch.contiguous_format)  # GPT-2's Conv1D gives a transposed view
    H = hessian.detach().double().clone()
    rows, columns = W.shape
    dead = torch.diag(H) == 0  # inputs that never fire: weight irrelevant, set to 0
    H[dead, dead] = 1
    W[:, dead] = 0
    hinv, damp_used, retries = damped_cholesky_inverse(H, damp)
    hinv = hinv.float()
    diagonal = torch.diag(hinv)
    pruned = torch.zeros(rows, columns, dtype=torch.bool)
    n_m = parse_pattern(pattern) if pattern else None
    width = group_size or columns
    codes = torch.empty(rows, columns, dtype=torch.uint8) if bits else None
    scales = torch.empty(rows, group_count(columns, group_size), dtype=torch.float16) if bits else None
    zeros = torch.empty_like(scales) if bits else None

    def start_block(i1: int, i2: int, block: torch.Tensor, block_hinv: torch.Tensor) -> None:
        if n_m is None:  # adaptive mask: the lowest w²/U_jj² of this batch of columns
            scores = block.square() / torch.diag(block_hinv).square().unsqueeze(0)
            chosen = torch.zeros(scores.shape, dtype=torch.bool)
            chosen.view(-1)[torch.sort(scores.flatten(), stable=True).indices[: int(scores.numel() * sparsity)]] = True
            pruned[:, i1:i2] = chosen

    def new_column(j: int, column: torch.Tensor, current) -> torch.Tensor:
        if n_m is not None and j % n_m[1] == 0:
            n, m = n_m
            scores = current(j, min(j + m, columns)).square() / diagonal[j : j + m].square().unsqueeze(0)
            pruned[:, j : j + m].scatter_(1, torch.topk(scores, m - n, dim=1, largest=False).indices, True)
        q = column.masked_fill(pruned[:, j], 0)
        if bits is None:
            return q
        group = j // width
        if j % width == 0:  # the group's grid from its weights as updated so far
            scales[:, group], zeros[:, group] = find_params(current(j, min(j + width, columns)), bits, symmetric)
        scale, zero = scales[:, group].float(), zeros[:, group].float()
        code = torch.clamp(torch.round(q / scale) + zero, 0, 2**bits - 1)
        codes[:, j] = code.to(torch.uint8)
        return (code - zero) * scale

    result = column_sweep(W, hinv, block_size, new_column, start_block)
    return SparseGPTResult(result, codes, scales, zeros, damp_used, retries)


@register_pass(
    SparseGPTConfig,
    engine="sequential",
    needs={"calibration"},
    description="SparseGPT: OBS pruning with weight reconstruction from the Hessian (shared with gptq), unstructured or N:M, optional joint k-bit; stored sparse.",
)
class SparseGPT:
    """Hessian from the block's inputs (`observe`), then SparseGPT per layer (`compress`)."""

    def __init__(self, config: SparseGPTConfig, context=None) -> None:
        self.config = config
        self.tally = SparsityTally()
        self.errors: dict[str, float] = {}
        self.damp: dict[str, float] = {}

    def select(self, model: nn.Module) -> list[tuple[str, nn.Module]]:
        selected = select_linears(model, self.config.targets, self.config.ignore)
        self.config.check_widths(selected)
        return selected

    def observe(self, name: str, module: nn.Module, inputs: torch.Tensor, stats) -> None:
        stats.hessian(name, inputs.shape[1]).add(inputs)

    def compress(self, name: str, module: nn.Module, stats) -> nn.Module | None:
        config = self.config
        hessian = stats.hessian(name).matrix()
        weight = weight_matrix(module)
        result = sparsegpt_prune(
            weight, hessian, sparsity=config.sparsity, pattern=config.pattern, damp=config.damp,
            block_size=config.block_size, bits=config.bits, group_size=config.group_size, symmetric=config.symmetric,
        )
        self.errors[name] = round(reconstruction_error(weight.detach().float(), result.weight, hessian), 8)
        if result.retries:
            self.damp[name] = result.damp
        if config.bits:
            module = pack(result.codes, result.scales, result.zeros, bits=config.bits, group_size=config.group_size,
                          symmetric=config.symmetric, bias=getattr(module, "bias", None))
            stored = store(module, config.storage) or module
        else:
            weight.data.copy_(result.weight.to(weight.dtype))
            stored = store(module, config.storage)
        self.tally.add(name, weight_of(stored if stored is not None else module))
        return stored

    def details(self) -> dict:
        errors = self.errors
        return {
            **self.tally.details(self.config),
            "bits": self.config.bits,
            "reconstruction_error": errors,  # ‖WX − ŴX‖² / ‖WX‖² per layer, on the calibration inputs
            "mean_reconstruction_error": round(sum(errors.values()) / len(errors), 8) if errors else None,
            "damp_raised": self.damp,
        }
