"""`rtn`: round-to-nearest weight-only quantization, stored packed.

Every selected linear layer (GPT-2 `Conv1D` included) becomes a `QuantizedLinear`: 2–8-bit
codes packed (4 per byte at 2 bits, 8 in 3 bytes at 3 bits, 2 per byte at 4 bits, one byte at
5–8 bits) with fp16 scales (and zero points when asymmetric), per group of `group_size` inputs
of each output row. This is the GPTQ paper's RTN baseline (min-max grid including 0).

The output head and the input token embedding are left alone unless asked for, with their own
settings (`head`, `embedding`): the head becomes a packed `QuantizedLinear`, the embedding a
`QuantizedEmbedding` (packed table dequantized at lookup). With tied embeddings the two are one
packed table, stored once: the head's settings serve both.

    head: {bits: 8, group_size: 128}   # in a recipe, under `pass: rtn`

    >>> import torch, compress
    >>> model = torch.nn.Sequential(torch.nn.Linear(256, 64))
    >>> model, (report,) = compress.apply(model, [RTNConfig(bits=4, group_size=128)], progress=False)
    >>> type(model[0]).__name__, report.bytes_after < report.bytes_before / 6
    ('QuantizedLinear', True)
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import BaseModel, ConfigDict, Field
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
from compress.errors import UserError
from compress.formats.packing import packed_columns
from compress.formats.quantized_embedding import QuantizedEmbedding
from compress.formats.quantized_linear import QuantizedLinear
from compress.formats.sparse_linear import SparseLinear


class TableQuant(BaseModel):
    """Settings of one packed table (the output head, the input embedding)."""

    model_config = ConfigDict(extra="forbid")

    bits: int = Field(8, ge=2, le=8, description="Bits per weight, 2..8. Default 8: see RTNConfig.head for the measured cost of fewer.")
    group_size: int | None = Field(128, ge=8, description="Inputs (hidden units) sharing one scale/zero per vocabulary row; null = per row.")
    symmetric: bool = Field(False, description="Grid symmetric around 0 instead of min-max asymmetric.")

    def tag(self) -> str:
        return f"w{self.bits}-" + (f"g{self.group_size}" if self.group_size else "pc") + ("-sym" if self.symmetric else "")


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
    head: TableQuant | None = Field(
        None,
        description="Pack the output head (lm_head) with these settings; null leaves it dense. With tied embeddings the one packed "
        "table also serves the input lookup (stored once). Default 8-bit g128: on pocket-d128-l4 / pocket-gpt2-d128-l4 an 8-bit "
        "table costs +0.0001 / +0.0000 bits/byte, a 4-bit g128 one +0.0085 / +0.0102 (more than the whole 4-bit body's +0.0018); "
        "benchmarks/RESULTS.md, 'Packed head and embedding'.",
    )
    embedding: TableQuant | None = Field(
        None,
        description="Pack the input token embedding (dequantized row by row at lookup) with these settings; null leaves it dense. "
        "A tied embedding is the head's table: leave this null (or equal to head).",
    )

    def tag(self) -> str:
        """Short variant name, e.g. 'rtn-w4-g128', 'rtn-w8-pc' (per channel), 'rtn-w4-g64-sym', 'rtn-w4-g128-head-w8-g128'."""
        grouping = f"g{self.group_size}" if self.group_size else "pc"
        tag = f"rtn-w{self.bits}-{grouping}" + ("-sym" if self.symmetric else "")
        tag += f"-head-{self.head.tag()}" if self.head else ""
        return tag + (f"-emb-{self.embedding.tag()}" if self.embedding else "")


def packed_bytes(out_features: int, in_features: int, config: RTNConfig | TableQuant, bias_bytes: int = 0) -> int:
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


class Tables:
    """The output head and input embedding of a model, by name, and whether they share a weight."""

    def __init__(self, model: nn.Module) -> None:
        head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        embedding = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
        names = {id(module): name for name, module in model.named_modules()}
        self.head = (names[id(head)], head) if head is not None and id(head) in names and hasattr(head, "weight") else None
        self.embedding = (names[id(embedding)], embedding) if isinstance(embedding, nn.Embedding) else None
        self.tied = bool(self.head and self.embedding and self.head[1].weight is self.embedding[1].weight)

    def settings(self, config: RTNConfig) -> tuple[TableQuant | None, TableQuant | None]:
        """(head settings, embedding settings); for a tied pair the one table's settings, for both."""
        if not self.tied:
            return (config.head if self.head else None), (config.embedding if self.embedding else None)
        if config.head and config.embedding and config.head != config.embedding:
            raise UserError(
                f"rtn: {self.head[0]!r} and {self.embedding[0]!r} share one (tied) weight, so they are one packed table; "
                "set only `head` (it serves both), or give `embedding` the same settings"
            )
        table = config.head or config.embedding
        return table, table

    def selected(self, config: RTNConfig) -> list[tuple[str, nn.Module]]:
        """Head first, then the embedding (a tied embedding links to the packed head)."""
        head, embedding = self.settings(config)
        return ([self.head] if head else []) + ([self.embedding] if embedding else [])


def _selected(model: nn.Module, config: RTNConfig) -> list[tuple[str, nn.Module]]:
    """Dense linears, pruned layers whose kept values are still floats (prune, then quantize), and
    the head and embedding when asked for."""
    from compress.core.targets import select_modules

    sparse_targets = ["SparseLinear" if entry == "Linear" else entry for entry in config.targets]
    pruned = [(name, module) for name, module in select_modules(model, sparse_targets, config.ignore)
              if isinstance(module, SparseLinear) and module.bits is None]
    tables = Tables(model).selected(config) if (config.head or config.embedding) else []
    linears = quantizable_linears(model, config.targets, config.ignore, "rtn")
    chosen = {id(module) for _, module in tables}
    if any(id(module) in chosen for _, module in linears):
        raise UserError("rtn: `targets` select the output head and `head` sets it too; remove it from targets (head: decides its settings)")
    return linears + pruned + tables


def plan_rtn(model: nn.Module, config: RTNConfig) -> list[tuple[str, int, int]]:
    """(module, bytes now, bytes after) for every layer `rtn` would quantize."""
    tables = Tables(model)
    head, embedding = tables.settings(config) if (config.head or config.embedding) else (None, None)
    rows = []
    for name, module in _selected(model, config):
        out_features, in_features = module.weight.shape if isinstance(module, nn.Embedding) else weight_matrix(module).shape
        settings = config
        if tables.head and module is tables.head[1]:
            settings = head
        elif tables.embedding and module is tables.embedding[1]:
            settings = embedding
            if tables.tied:
                rows.append((name, 0, 0))  # the head's table serves it
                continue
        rows.append((name, module_bytes(module), packed_bytes(out_features, in_features, settings, _bias_bytes(module))))
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
        self.tables: Tables | None = None
        self.packed_head: QuantizedLinear | None = None

    def select(self, model: nn.Module) -> list[tuple[str, nn.Module]]:
        self.tables = Tables(model)
        return _selected(model, self.config)

    def compress(self, name: str, module: nn.Module, stats=None) -> nn.Module:
        tables = self.tables
        if tables is not None and tables.embedding and module is tables.embedding[1]:
            _, settings = tables.settings(self.config)
            if tables.tied:  # the packed head's table serves the lookup
                return QuantizedEmbedding.tied(self.packed_head, tables.head[0], dtype=module.weight.dtype)
            return QuantizedEmbedding.from_table(self._quantize(name, module.weight.detach(), settings), dtype=module.weight.dtype)
        settings = self.config
        if tables is not None and tables.head and module is tables.head[1]:
            settings = tables.settings(self.config)[0]
        weight = module.dequantize(torch.float32) if isinstance(module, SparseLinear) else weight_matrix(module).detach()
        packed = self._quantize(name, weight, settings, bias=getattr(module, "bias", None))
        if tables is not None and tables.head and module is tables.head[1]:
            self.packed_head = packed
        if isinstance(module, SparseLinear):  # pruned zeros stay exact zeros on the grid: sparse + k-bit
            return SparseLinear.from_quantized(packed, module.layout)
        return packed

    def _quantize(self, name: str, weight: torch.Tensor, settings: RTNConfig | TableQuant, bias=None) -> QuantizedLinear:
        bits, group_size, symmetric = settings.bits, settings.group_size, settings.symmetric
        if group_size is not None and weight.shape[1] % group_size:
            self.ragged.append(name)
        codes, scales, zeros = rtn_quantize(weight, bits, group_size, symmetric)
        restored = dequantize(codes, scales, None if symmetric else zeros, group_size, bits)
        self.errors[name] = round(float((restored - weight.float()).norm() / weight.float().norm().clamp_min(1e-30)), 6)
        return pack(codes, scales, zeros, bits=bits, group_size=group_size, symmetric=symmetric, bias=bias)

    def details(self) -> dict:
        config, errors = self.config, self.errors
        return {
            "bits": config.bits,
            "group_size": config.group_size,
            "symmetric": config.symmetric,
            "head": config.head.model_dump() if config.head else None,
            "embedding": config.embedding.model_dump() if config.embedding else None,
            "tied_table": bool(self.tables and self.tables.tied and self.packed_head is not None),
            "format": QuantizedLinear.format_name,
            "relative_error": errors,
            "mean_relative_error": round(sum(errors.values()) / len(errors), 6) if errors else None,
            "ragged_last_group": self.ragged,
        }

