"""PyTorch's CPU int4 GEMM (`aten._weight_int4pack_mm_for_cpu`) and the weight layout it wants.

Why this kernel: on a 2-core AVX2 machine it ran batch-1 GEMVs 1.5–2.5x faster than fp32
`F.linear`, where `aten._weight_int8pack_mm` and dequantize-then-matmul were several times
*slower* (benchmarks/packed_linear_speed.py). It takes bf16 activations, 4-bit codes in a
CPU-specific interleaved layout, and a bf16 table of (scale, zero) per group of 32..256 inputs,
computing `y = x @ ((q - 8) * scale + zero).T`.

Its layout depends on the CPU the process runs on (AVX512 interleaves 4 lanes of 16 rows, AVX2
2 lanes, other builds pairs of rows), so it is never saved: checkpoints keep the portable layout
of `compress.formats.packing`, and a module converts once, on its first CPU forward. To give
the portable buffer back (so RAM holds one packed copy) we must be able to undo the conversion;
`kernel_layout()` identifies the layout by packing a probe with the real op and comparing it with
the known layouts, and a layer whose conversion cannot be undone exactly keeps its portable copy.

    >>> import torch
    >>> codes = torch.randint(0, 16, (64, 128), dtype=torch.uint8)
    >>> packed = to_kernel_layout(codes)
    >>> kernel_layout() is None or torch.equal(from_kernel_layout(packed, 64, 128), codes)
    True
"""

from __future__ import annotations

import functools

import torch

KERNEL_GROUP_SIZES = (256, 128, 64, 32)  # the group sizes the op accepts, largest first
ROW_MULTIPLE = 16  # the op packs output rows in blocks of 16

# (style, block of output rows). Full blocks use `style`; a trailing partial block is packed in
# pairs of rows. Order matters only for speed of detection.
_LAYOUTS = (("lanes2", 32), ("lanes4", 64), ("pairs", 32), ("pairs", 16), ("pairs", 64))


def kernel_available() -> bool:
    """Whether this PyTorch build has the CPU int4 ops."""
    return hasattr(torch.ops.aten, "_weight_int4pack_mm_for_cpu") and hasattr(torch.ops.aten, "_convert_weight_to_int4pack_for_cpu")


def kernel_group_size(in_features: int, group_size: int | None) -> int | None:
    """The op's group size for a layer: the largest of 256/128/64/32 dividing both the input
    width and the quantization group (whose scales are then repeated); None if there is none.

    >>> kernel_group_size(576, 128)  # ragged last group of 64 -> run in groups of 64
    64
    >>> kernel_group_size(100, None) is None
    True
    """
    span = in_features if group_size is None else group_size
    for size in KERNEL_GROUP_SIZES:
        if in_features % size == 0 and span % size == 0:
            return size
    return None


def to_kernel_layout(codes: torch.Tensor) -> torch.Tensor:
    """4-bit codes (out, in) uint8 on CPU -> the op's packed uint8 weight (out, in / 2)."""
    return torch.ops.aten._convert_weight_to_int4pack_for_cpu(codes.to(torch.int32).contiguous(), 1)


def int4_matmul(x: torch.Tensor, packed: torch.Tensor, group_size: int, scale_zeros: torch.Tensor) -> torch.Tensor:
    """`x` (rows, in) bf16 times the packed weight -> (rows, out) bf16."""
    return torch.ops.aten._weight_int4pack_mm_for_cpu(x, packed, group_size, scale_zeros)


def _pack(codes: torch.Tensor, style: str, block: int) -> torch.Tensor:
    rows, columns = codes.shape
    full = rows // block
    codes = codes.to(torch.uint8)
    parts = []
    if full:
        blocks = codes[: full * block].reshape(full, block, columns)
        if style == "lanes4":  # byte d: rows d | d+32; byte 16+d: rows 16+d | 48+d
            lanes = blocks.reshape(full, 4, 16, columns)
            packed = (lanes[:, 0:2] | (lanes[:, 2:4] << 4)).permute(0, 3, 1, 2)
        elif style == "lanes2":  # byte d: rows d | d+16
            lanes = blocks.reshape(full, 2, 16, columns)
            packed = (lanes[:, 0] | (lanes[:, 1] << 4)).permute(0, 2, 1)
        else:  # byte j: rows 2j | 2j+1
            pairs = blocks.reshape(full, block // 2, 2, columns)
            packed = (pairs[:, :, 0] | (pairs[:, :, 1] << 4)).permute(0, 2, 1)
        parts.append(packed.reshape(-1))
    tail = rows - full * block
    if tail:
        pairs = codes[full * block :].reshape(tail // 2, 2, columns)
        parts.append((pairs[:, 0] | (pairs[:, 1] << 4)).t().reshape(-1))
    return torch.cat(parts).reshape(rows, columns // 2)


def _unpack(packed: torch.Tensor, rows: int, columns: int, style: str, block: int) -> torch.Tensor:
    flat = packed.reshape(-1)
    full = rows // block
    parts = []
    head = full * block * columns // 2
    if full:
        data = flat[:head]
        if style == "lanes4":
            data = data.reshape(full, columns, 2, 16).permute(0, 2, 3, 1)  # (full, lane pair, 16, columns)
            low, high = data & 0xF, data >> 4
            parts.append(torch.cat([low, high], dim=1).reshape(full * block, columns))
        elif style == "lanes2":
            data = data.reshape(full, columns, 16).permute(0, 2, 1)
            parts.append(torch.cat([data & 0xF, data >> 4], dim=1).reshape(full * block, columns))
        else:
            data = data.reshape(full, columns, block // 2).permute(0, 2, 1)
            parts.append(torch.stack([data & 0xF, data >> 4], dim=2).reshape(full * block, columns))
    tail = rows - full * block
    if tail:
        data = flat[head:].reshape(columns, tail // 2).t()
        parts.append(torch.stack([data & 0xF, data >> 4], dim=1).reshape(tail, columns))
    return torch.cat(parts).contiguous()


@functools.cache
def kernel_layout() -> tuple[str, int] | None:
    """The layout the op produces in this process, found by packing a probe; None if unknown."""
    if not kernel_available():
        return None
    generator = torch.Generator().manual_seed(0)
    probe = torch.randint(0, 16, (112, 64), dtype=torch.uint8, generator=generator)  # 112: full blocks and a tail
    reference = to_kernel_layout(probe)
    for style, block in _LAYOUTS:
        if torch.equal(_pack(probe, style, block).reshape(-1), reference.reshape(-1)):
            return style, block
    return None


def gather_rows(packed: torch.Tensor, index: torch.Tensor, rows: int, columns: int) -> torch.Tensor | None:
    """Codes (len(index), columns) of some rows of a kernel-layout weight (rows, columns), unpacking
    only the blocks that hold them (an embedding lookup into a head's packed table); None if the
    layout is unknown.

        >>> codes = torch.randint(0, 16, (96, 64), dtype=torch.uint8)
        >>> rows = gather_rows(to_kernel_layout(codes), torch.tensor([5, 90, 5]), 96, 64)
        >>> rows is None or torch.equal(rows, codes[[5, 90, 5]])
        True
    """
    layout = kernel_layout()
    if layout is None:
        return None
    style, block = layout
    full, per_block = rows // block, block * columns // 2
    flat = packed.reshape(-1)
    index = index.reshape(-1)
    out = torch.empty(index.numel(), columns, dtype=torch.uint8, device=packed.device)
    blocks = torch.div(index, block, rounding_mode="floor")
    in_full = blocks < full
    if bool(in_full.any()):
        wanted = index[in_full]
        unique, inverse = torch.unique(blocks[in_full], return_inverse=True)
        data = flat[: full * per_block].view(full, per_block)[unique]
        codes = _unpack(data.reshape(-1), unique.numel() * block, columns, style, block)
        out[in_full] = codes[inverse * block + wanted % block]
    if not bool(in_full.all()):
        codes = _unpack(flat[full * per_block :], rows - full * block, columns, style, block)
        out[~in_full] = codes[index[~in_full] - full * block]
    return out


def from_kernel_layout(packed: torch.Tensor, rows: int, columns: int) -> torch.Tensor | None:
    """Undo `to_kernel_layout`: the (rows, columns) uint8 codes, or None if the layout is unknown."""
    layout = kernel_layout()
    if layout is None:
        return None
    return _unpack(packed, rows, columns, *layout)
