"""`gptq`: GPTQ weight quantization (Frantar et al. 2022), stored in the same packed format as `rtn`.

For every linear layer of a block, the Hessian H = 2/N Σ x xᵀ of its inputs on the calibration
data (accumulated by the sequential engine), then column by column: round to the grid, spread
the rounding error over the columns not yet quantized with the damped inverse Hessian's
Cholesky factor (lazy batch updates of `block_size` columns). Options as in the reference:
`damp` (fraction of the mean diagonal, retried ×10 while Cholesky fails, reported), groups of
`group_size` inputs (a shorter last group when it does not divide the width), `act_order`
(columns by descending Hessian diagonal, with static groups so that the stored layout stays in
natural order and decodes exactly like `rtn`), symmetric or asymmetric, 2–8 bits.

    >>> import torch
    >>> W, X = torch.randn(16, 200), torch.randn(400, 200)
    >>> result = gptq_quantize(W, 2 * X.T.double() @ X.double() / 400, bits=4, group_size=64)
    >>> result.codes.shape, result.scales.shape
    (torch.Size([16, 200]), torch.Size([16, 4]))
"""

from __future__ import annotations

import warnings
from typing import ClassVar, NamedTuple

import torch
from pydantic import Field
from torch import nn

from compress.algorithms.obs import column_sweep
from compress.algorithms.quantization.grid import (
    dequantize,
    find_params,
    pack,
    quantizable_linears,
)
from compress.algorithms.quantization.rtn import RTNConfig, plan_rtn
from compress.core.config import PassConfig
from compress.core.registry import register_pass
from compress.engines.stats import damped_cholesky_inverse
from compress.formats.affine import group_count
from compress.formats.dense import weight_matrix
from compress.formats.quantized_linear import QuantizedLinear


class GPTQConfig(PassConfig):
    """GPTQ: quantize linear weights column by column, compensating each rounding error."""

    pass_name: ClassVar[str] = "gptq"

    bits: int = Field(4, ge=2, le=8, description="Bits per weight, 2..8.")
    group_size: int | None = Field(
        128,
        ge=8,
        description="Inputs sharing one scale/zero per output row; null = per channel. A size that does not divide a "
        "layer's inputs leaves a shorter last group (works here; compressed-tensors export cannot hold it).",
    )
    symmetric: bool = Field(False, description="Grid symmetric around 0 (no zero points) instead of min-max asymmetric.")
    act_order: bool = Field(False, description="Quantize columns by descending Hessian diagonal (static groups keep the stored layout in order).")
    damp: float = Field(0.01, gt=0, le=1, description="Dampening added to the Hessian diagonal, as a fraction of its mean; raised x10 when Cholesky fails.")
    block_size: int = Field(128, ge=1, le=4096, description="Columns per lazy batch update (speed only; the result is the same maths).")

    def tag(self) -> str:
        """Short variant name, e.g. 'gptq-w4-g128', 'gptq-w3-g64-sym-act'."""
        grouping = f"g{self.group_size}" if self.group_size else "pc"
        return f"gptq-w{self.bits}-{grouping}" + ("-sym" if self.symmetric else "") + ("-act" if self.act_order else "")


class GPTQResult(NamedTuple):
    codes: torch.Tensor  # uint8 (out, in), natural column order
    scales: torch.Tensor  # fp16 (out, groups)
    zeros: torch.Tensor  # fp16 (out, groups)
    damp: float  # dampening used (after retries)
    retries: int


def gptq_quantize(
    weight: torch.Tensor,
    hessian: torch.Tensor,
    *,
    bits: int,
    group_size: int | None,
    symmetric: bool = False,
    act_order: bool = False,
    damp: float = 0.01,
    block_size: int = 128,
) -> GPTQResult:
    """GPTQ on one weight (out, in) with its input Hessian (in, in); computes in weight's dtype."""
    W = weight.detach().clone()
    H = hessian.detach().double()
    rows, columns = W.shape
    dead = torch.diag(H) == 0  # inputs that never fire: weight irrelevant, set to 0
    if bool(dead.any()):
        H = H.clone()
        H[dead, dead] = 1
        W[:, dead] = 0
    maxq = 2**bits - 1
    groups = group_count(columns, group_size)
    width = group_size or columns
    scales = torch.empty(rows, groups, dtype=torch.float16)
    zeros = torch.empty(rows, groups, dtype=torch.float16)
    static = group_size is None or act_order  # grids fixed before any update (per channel: on the whole row)
    if static:
        for g in range(groups):
            scales[:, g], zeros[:, g] = find_params(W[:, g * width : (g + 1) * width], bits, symmetric)
    perm = None
    if act_order:
        perm = torch.argsort(torch.diag(H), descending=True)
        W, H = W[:, perm], H[perm][:, perm]
    hinv, damp_used, retries = damped_cholesky_inverse(H, damp)
    codes = torch.empty(rows, columns, dtype=torch.uint8)

    def new_column(j: int, column: torch.Tensor, current) -> torch.Tensor:
        natural = int(perm[j]) if perm is not None else j
        group = natural // width
        if not static and j % width == 0:  # a group's grid from its weights as updated so far
            scales[:, group], zeros[:, group] = find_params(current(j, min(j + width, columns)), bits, symmetric)
        scale = scales[:, group].to(column.dtype)
        zero = zeros[:, group].to(column.dtype)
        q = torch.clamp(torch.round(column / scale) + zero, 0, maxq)
        codes[:, j] = q.to(torch.uint8)
        return (q - zero) * scale

    column_sweep(W, hinv.to(W.dtype), block_size, new_column)
    if perm is not None:
        codes = codes[:, torch.argsort(perm)]
    return GPTQResult(codes, scales, zeros, damp_used, retries)


def reconstruction_error(weight: torch.Tensor, restored: torch.Tensor, hessian: torch.Tensor) -> float:
    """‖WX − ŴX‖² / ‖WX‖² on the calibration inputs, from their Hessian: tr(E H Eᵀ) / tr(W H Wᵀ)."""
    W, E, H = weight.double(), (weight.double() - restored.double()), hessian.double()
    return float(((E @ H) * E).sum() / ((W @ H) * W).sum().clamp_min(1e-300))


@register_pass(
    GPTQConfig,
    engine="sequential",
    needs={"calibration"},
    description="GPTQ weight quantization, 2-8 bits, groups (ragged last group allowed), act_order, stored packed like rtn.",
    plan=lambda model, config: plan_rtn(model, RTNConfig(**config.model_dump(include={"targets", "ignore", "bits", "group_size", "symmetric"}))),
)
class GPTQ:
    """Hessian from the block's inputs (`observe`), then GPTQ per layer (`compress`)."""

    def __init__(self, config: GPTQConfig, context=None) -> None:
        self.config = config
        self.errors: dict[str, float] = {}
        self.damp: dict[str, float] = {}
        self.ragged: list[str] = []

    def select(self, model: nn.Module) -> list[tuple[str, nn.Module]]:
        return quantizable_linears(model, self.config.targets, self.config.ignore, "gptq")

    def observe(self, name: str, module: nn.Module, inputs: torch.Tensor, stats) -> None:
        stats.hessian(name, inputs.shape[1]).add(inputs)

    def compress(self, name: str, module: nn.Module, stats) -> QuantizedLinear:
        config = self.config
        hessian = stats.hessian(name).matrix()
        weight = weight_matrix(module).detach().float()
        if config.group_size is not None and weight.shape[1] % config.group_size:
            self.ragged.append(name)
        result = gptq_quantize(
            weight, hessian, bits=config.bits, group_size=config.group_size, symmetric=config.symmetric,
            act_order=config.act_order, damp=config.damp, block_size=config.block_size,
        )
        stored_zeros = None if config.symmetric else result.zeros
        restored = dequantize(result.codes, result.scales, stored_zeros, config.group_size, config.bits)
        self.errors[name] = round(reconstruction_error(weight, restored, hessian), 8)
        if result.retries:
            self.damp[name] = result.damp
        return pack(result.codes, result.scales, result.zeros, bits=config.bits, group_size=config.group_size,
                    symmetric=config.symmetric, bias=getattr(module, "bias", None))

    def details(self) -> dict:
        config, errors = self.config, self.errors
        details = {
            "bits": config.bits,
            "group_size": config.group_size,
            "symmetric": config.symmetric,
            "act_order": config.act_order,
            "format": QuantizedLinear.format_name,
            "reconstruction_error": errors,  # ‖WX − ŴX‖² / ‖WX‖² per layer, on the calibration inputs
            "mean_reconstruction_error": round(sum(errors.values()) / len(errors), 8) if errors else None,
            "damp_raised": self.damp,  # layers whose Cholesky needed more dampening than `damp`
            "ragged_last_group": self.ragged,
        }
        if self.ragged:
            message = (
                f"gptq: group_size={config.group_size} does not divide the inputs of {len(self.ragged)} layer(s) "
                f"(e.g. {self.ragged[0]}): they keep a shorter last group, which this package loads, but compressed-tensors "
                "cannot hold; `export` to that format will refuse this model. Use a group size dividing every width to export it"
            )
            details["export_warning"] = message
            warnings.warn(message, stacklevel=2)
        return details
