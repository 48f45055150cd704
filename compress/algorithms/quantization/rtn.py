"""`rtn`: round-to-nearest weight-only quantization, stored packed.

Every selected linear layer (GPT-2 `Conv1D` included) becomes a `QuantizedLinear`: 2–8-bit
codes packed (4 per byte at 2 bits, 8 in 3 bytes at 3 bits, 2 per byte at 4 bits, one byte at
5–8 bits) with fp16 scales (and zero points when asymmetric), per group of `group_size` inputs
of each output row. This is the GPTQ paper's RTN baseline (min-max grid including 0).

    >>> import torch, compress
    >>> model = torch.nn.Sequential(torch.nn.Linear(256, 64))
    >>> model, (report,) = compress.apply(model, [RTNConfig(bits=4, group_size=128)], progress=False)
    >>> type(model[0]).__name__, report.bytes_after < report.bytes_before / 6
    ('QuantizedLinear', True)
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import Field
from torch import nn

from compress.algorithms.quantization.grid import (
    dequantize,
    pack,
    quantizable_linears,
    rtn_quantize,
)
from compress.core.config import PassConfig
from compress.core.registry import register_pass
from compress.formats.affine import group_count
from compress.formats.dense import module_bytes, weight_matrix
from compress.formats.packing import packed_columns
from compress.formats.quantized_linear import QuantizedLinear
from compress.formats.sparse_linear import SparseLinear


class RTNConfig(PassConfig):
    """Round-to-nearest quantization of linear weights to packed integers."""

    pass_name: ClassVar[str] = "rtn"

    bits: int = Field(4, ge=2, le=8, description="Bits per weight, 2..8. 4 is the usual sweet spot; 8 is near lossless.")
    group_size: int | None = Field(
        128,
        ge=8,
        description="Inputs sharing one scale/zero, per output row; null = one per output row (per channel). "
        "A group that does not divide a layer's inputs leaves a shorter last group. "
        "Multiples of 32 run on PyTorch's fast CPU int4 kernel.",
    )
    symmetric: bool = Field(False, description="Grid symmetric around 0 (no zero points stored) instead of min-max asymmetric.")

    def tag(self) -> str:
        """Short variant name, e.g. 'rtn-w4-g128', 'rtn-w8-pc' (per channel), 'rtn-w4-g64-sym'."""
        grouping = f"g{self.group_size}" if self.group_size else "pc"
        return f"rtn-w{self.bits}-{grouping}" + ("-sym" if self.symmetric else "")


def packed_bytes(out_features: int, in_features: int, config: RTNConfig, bias_bytes: int = 0) -> int:
    """Bytes a layer takes once quantized: packed codes + fp16 scales (+ zeros) + bias.

    >>> packed_bytes(4096, 4096, RTNConfig(bits=4, group_size=128)) / (4096 * 4096)  # bytes per weight
    0.53125
    """
    groups = group_count(in_features, config.group_size)
    per_group_tables = 1 if config.symmetric else 2
    return out_features * packed_columns(in_features, config.bits) + out_features * groups * 2 * per_group_tables + bias_bytes


def _bias_bytes(module: nn.Module) -> int:
    bias = getattr(module, "bias", None)
    return 0 if bias is None else bias.numel() * bias.element_size()


def _selected(model: nn.Module, config: RTNConfig) -> list[tuple[str, nn.Module]]:
    """Dense linears, and pruned layers whose kept values are still floats (prune, then quantize)."""
    from compress.core.targets import select_modules

    sparse_targets = ["SparseLinear" if entry == "Linear" else entry for entry in config.targets]
    pruned = [(name, module) for name, module in select_modules(model, sparse_targets, config.ignore)
              if isinstance(module, SparseLinear) and module.bits is None]
    return quantizable_linears(model, config.targets, config.ignore, "rtn") + pruned


def plan_rtn(model: nn.Module, config: RTNConfig) -> list[tuple[str, int, int]]:
    """(module, bytes now, bytes after) for every layer `rtn` would quantize."""
    rows = []
    for name, module in _selected(model, config):
        out_features, in_features = weight_matrix(module).shape
        rows.append((name, module_bytes(module), packed_bytes(out_features, in_features, config, _bias_bytes(module))))
    return rows


@register_pass(
    RTNConfig,
    engine="oneshot",
    description="Round-to-nearest weight quantization, 2-8 bits, group-wise or per channel, stored packed.",
    plan=plan_rtn,
)
class RTN:
    """Replace each selected linear layer by a packed `QuantizedLinear`.

    Details: the relative Frobenius error of every layer's dequantized weight, their mean, and
    the layers whose last group is shorter because `group_size` does not divide their inputs.
    """

    def __init__(self, config: RTNConfig, context=None) -> None:
        self.config = config
        self.errors: dict[str, float] = {}
        self.ragged: list[str] = []

    def select(self, model: nn.Module) -> list[tuple[str, nn.Module]]:
        return _selected(model, self.config)

    def compress(self, name: str, module: nn.Module, stats=None) -> QuantizedLinear:
        config = self.config
        weight = module.dequantize(torch.float32) if isinstance(module, SparseLinear) else weight_matrix(module).detach()
        if config.group_size is not None and weight.shape[1] % config.group_size:
            self.ragged.append(name)
        codes, scales, zeros = rtn_quantize(weight, config.bits, config.group_size, config.symmetric)
        packed = pack(codes, scales, zeros, bits=config.bits, group_size=config.group_size, symmetric=config.symmetric, bias=getattr(module, "bias", None))
        restored = dequantize(codes, scales, None if config.symmetric else zeros, config.group_size, config.bits)
        self.errors[name] = round(float((restored - weight.float()).norm() / weight.float().norm().clamp_min(1e-30)), 6)
        if isinstance(module, SparseLinear):  # pruned zeros stay exact zeros on the grid: sparse + k-bit
            return SparseLinear.from_quantized(packed, module.layout)
        return packed

    def details(self) -> dict:
        config, errors = self.config, self.errors
        return {
            "bits": config.bits,
            "group_size": config.group_size,
            "symmetric": config.symmetric,
            "format": QuantizedLinear.format_name,
            "relative_error": errors,
            "mean_relative_error": round(sum(errors.values()) / len(errors), 6) if errors else None,
            "ragged_last_group": self.ragged,
        }

