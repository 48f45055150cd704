"""The integer grid of weight-only quantization: scales, zero points, round to nearest.

One grid per (output row, group of `group_size` consecutive inputs), or per row when
`group_size` is None. As in GPTQ (and its RTN baseline) the grid's range always includes 0:
asymmetric uses [min(w, 0), max(w, 0)] with an integer zero point, symmetric uses
[-max|w|, max|w|] with the zero point fixed at 2**(bits-1). A code q stands for
`(q - zero) * scale`. Scales are rounded to fp16 *before* rounding the weights, so the codes
are the nearest ones for the scales actually stored.

When `group_size` does not divide the input width, the last group of each row is shorter
(the remaining columns); its grid comes from those columns only. GPTQ/AWQ reuse
`grid_params` and `quantize` on the columns they update.

    >>> import torch
    >>> weight = torch.randn(64, 256)
    >>> codes, scales, zeros = rtn_quantize(weight, bits=8, group_size=128)
    >>> codes.dtype, tuple(scales.shape)
    (torch.uint8, (64, 2))
    >>> error = dequantize(codes, scales, zeros, group_size=128, bits=8) - weight
    >>> bool(error.norm() / weight.norm() < 0.01)
    True
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from compress.formats.affine import (
    dequantize_codes as dequantize,  # codes -> weights, shared with the formats
)
from compress.formats.affine import expand_groups, group_count

__all__ = ["QuantizedWeight", "dequantize", "expand_groups", "find_params", "grid_params", "group_count", "pack", "quantizable_linears", "quantize", "rtn_quantize"]

FP16_MAX = 65504.0
FP16_TINY = 2.0**-24  # smallest positive fp16 (subnormal): keeps a scale from rounding to 0


class QuantizedWeight(NamedTuple):
    codes: torch.Tensor  # uint8 (out, in), values in [0, 2**bits)
    scales: torch.Tensor  # fp16 (out, groups)
    zeros: torch.Tensor  # fp16 (out, groups), integer values; 2**(bits-1) everywhere when symmetric


def _grouped(weight: torch.Tensor, group_size: int | None) -> torch.Tensor:
    """(out, in) -> (out, groups, width), padding a ragged last group with zeros.

    Zeros do not move the grid because its range always includes 0.
    """
    out_features, in_features = weight.shape
    width = in_features if group_size is None else group_size
    padding = -in_features % width
    if padding:
        weight = torch.nn.functional.pad(weight, (0, padding))
    return weight.reshape(out_features, -1, width)


def find_params(values: torch.Tensor, bits: int, symmetric: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Grid over the last dimension of `values`: (scale, zero) as fp16, shaped values.shape[:-1].

    >>> scale, zero = find_params(torch.tensor([[-1.0, 0.5, 2.0]]), bits=4, symmetric=False)
    >>> round(float(scale), 4), float(zero)
    (0.2, 5.0)
    """
    values = values.float()
    max_code = 2**bits - 1
    low = values.amin(dim=-1).clamp(max=0)
    high = values.amax(dim=-1).clamp(min=0)
    if symmetric:
        high = torch.maximum(low.abs(), high)
        low = -high
    empty = (high - low) == 0
    low = torch.where(empty, -1.0, low)  # an all-zero group still needs a valid grid
    high = torch.where(empty, 1.0, high)
    scale = ((high - low) / max_code).clamp(FP16_TINY, FP16_MAX).half()
    if symmetric:
        zero = torch.full_like(scale, 2 ** (bits - 1))
    else:
        zero = torch.round(-low / scale.float()).clamp(0, max_code).half()
    return scale, zero


def grid_params(weight: torch.Tensor, bits: int, group_size: int | None, symmetric: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Scales and zero points, fp16 (out, groups), of a weight (out, in)."""
    return find_params(_grouped(weight, group_size), bits, symmetric)


def quantize(weight: torch.Tensor, scales: torch.Tensor, zeros: torch.Tensor, bits: int, group_size: int | None) -> torch.Tensor:
    """Round a weight (out, in) to the nearest codes of its grid: uint8 (out, in)."""
    in_features = weight.shape[1]
    scale = expand_groups(scales, in_features, group_size).float()
    zero = expand_groups(zeros, in_features, group_size).float()
    codes = torch.round(weight.float() / scale) + zero
    return codes.clamp(0, 2**bits - 1).to(torch.uint8)
def rtn_quantize(weight: torch.Tensor, bits: int, group_size: int | None, symmetric: bool = False) -> QuantizedWeight:
    """Round-to-nearest: the grid of each group, then the nearest code of every weight.

    >>> codes, scales, zeros = rtn_quantize(torch.randn(8, 32), bits=4, group_size=None)
    >>> int(codes.max()) <= 15
    True
    """
    scales, zeros = grid_params(weight, bits, group_size, symmetric)
    return QuantizedWeight(quantize(weight, scales, zeros, bits, group_size), scales, zeros)


def pack(codes: torch.Tensor, scales: torch.Tensor, zeros: torch.Tensor, *, bits: int, group_size: int | None, symmetric: bool, bias=None):
    """Codes and their grid as the packed `QuantizedLinear` every weight-only quantizer stores
    (rtn, gptq, awq): one format, so all of them decode equally fast."""
    from compress.formats.quantized_linear import QuantizedLinear

    return QuantizedLinear.from_codes(codes, scales, None if symmetric else zeros, bits=bits, group_size=group_size, symmetric=symmetric, bias=bias)


def quantizable_linears(model, targets: list[str], ignore: list[str], pass_name: str) -> list:
    """The linear layers a weight quantizer selects; a head tied to the input embeddings is refused
    (quantizing it would store the embedding twice; rtn's `head` setting packs the pair as one table)."""
    from compress.core.targets import select_linears
    from compress.errors import UserError

    selected = select_linears(model, targets, ignore)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    inputs = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    for name, module in selected:
        if module is head and inputs is not None and getattr(head, "weight", None) is getattr(inputs, "weight", None):
            raise UserError(
                f"{pass_name}: targets select {name!r}, whose weight is tied to the input embeddings; quantizing it would "
                "duplicate the embedding. Remove it from targets"
                + (" and use rtn's `head:` setting (one packed table serves both)" if pass_name == "rtn" else ", or untie the embeddings first")
            )
    return selected
