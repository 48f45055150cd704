"""A `QuantizedLinear`'s weight in the form PyTorch's CPU int4 op wants (`compress.formats.cpu_int4`).

The op computes `(nibble - 8) * scale + offset` with 4-bit nibbles and a bf16 table of (scale,
offset) per group of 32..256 inputs. Our codes get there as:
- 4-bit: the codes as they are, offset `(8 - zero) * scale`;
- 2- and 3-bit: shifted by `8 - zero` (still 0..15), so no zero term is rounded to bf16;
- 5-8-bit: high and low nibbles side by side (2K columns, activations fed twice), the offset split
  over two bf16 terms so it stays exact to ~2**-18.
Output rows are padded to the op's multiple of 16 (zero scale and offset: padding computes 0).
Our own kernels (`compress.formats.native_kernels`) read the same nibbles with the exact fp16
scales and zeros instead of the table.

    >>> import torch
    >>> codes = torch.randint(0, 8, (20, 64), dtype=torch.uint8)
    >>> shifted = nibbles(codes, None, bits=3, group_size=32)  # symmetric 3-bit: zero 4, shift 4
    >>> torch.equal(shifted, codes + 4)
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from compress.formats import cpu_int4
from compress.formats.affine import expand_groups


@dataclass
class KernelWeight:
    packed: torch.Tensor  # the op's layout of (rows, columns) 4-bit nibbles
    scale_zeros: torch.Tensor  # bf16 (columns / group_size, rows, 2)
    group_size: int
    columns: int  # in_features, or 2 * in_features when codes run as two nibbles
    rows: int  # out_features rounded up to the op's multiple of 16 (padding rows are zero)
    native_decode_rows: int = 0  # up to this many rows run our decode kernel, not the int4 op
    native_prefill: bool = False  # more rows run our prefill kernel (else dequantize + F.linear)
    bound: Any = None  # our kernels' arguments (`native_kernels.bind`), bound on first use


def nibbles(codes: torch.Tensor, zeros: torch.Tensor | None, bits: int, group_size: int | None) -> torch.Tensor:
    """The op's 4-bit nibbles (out, in or 2 * in) of codes (out, in)."""
    if bits < 4:
        return codes + code_shift(zeros, bits, codes.shape[1], group_size)
    if bits == 4:
        return codes
    return torch.cat([codes >> 4, codes & 0xF], dim=1)


def code_shift(zeros: torch.Tensor | None, bits: int, in_features: int, group_size: int | None) -> torch.Tensor:
    """What 2- and 3-bit codes are shifted by: 8 - zero per weight (`zeros`: those rows' zero points)."""
    if zeros is None:
        return torch.tensor(8 - 2 ** (bits - 1), dtype=torch.uint8)
    return (8 - expand_groups(zeros, in_features, group_size)).to(torch.uint8)


def build(nibbled: torch.Tensor, scales: torch.Tensor, zeros: torch.Tensor | None, *, bits: int, group_size: int | None,
          out_features: int, native_decode_rows: int, native_prefill: bool) -> KernelWeight:
    """The op's form of a layer's nibbles (from `nibbles`) and its fp16 scales and zeros."""
    in_features = nibbled.shape[1] // 2 if bits > 4 else nibbled.shape[1]
    group = cpu_int4.kernel_group_size(in_features, group_size)
    rows = -(-out_features // cpu_int4.ROW_MULTIPLE) * cpu_int4.ROW_MULTIPLE  # the op packs blocks of 16 rows
    padding = rows - out_features
    packed = cpu_int4.to_kernel_layout(F.pad(nibbled, (0, 0, 0, padding)) if padding else nibbled)
    table = scale_zero_table(scales, zeros, bits, group_size, in_features, group)
    if padding:  # zero scale and offset: padding rows compute 0 and are cut off
        table = F.pad(table, (0, 0, 0, padding))
    return KernelWeight(packed, table, group, nibbled.shape[1], rows, native_decode_rows, native_prefill)


def scale_zero_table(scales: torch.Tensor, zeros: torch.Tensor | None, bits: int, group_size: int | None, in_features: int,
                     group: int) -> torch.Tensor:
    """The op's (columns / group, out, 2) bf16 table of (scale, offset) for `(q - 8) * scale + offset`."""
    index = torch.arange(in_features // group) * group
    index = index // group_size if group_size is not None else torch.zeros_like(index)
    scale = scales[:, index].float().bfloat16().float()
    zero = float(2 ** (bits - 1)) if zeros is None else zeros[:, index].float()
    if bits < 4:
        scaled, offsets = scale, torch.zeros_like(scale)  # codes were shifted by 8 - zero
    elif bits == 4:
        scaled, offsets = scale, ((8 - zero) * scale).bfloat16()
    else:
        # q = 16 * high + low: (high - 8) * 16s + (low - 8) * s + offset_a + offset_b = (q - zero) * s
        offset = (136 - zero) * scale
        offset_a = offset.bfloat16()
        offset_b = (offset - offset_a.float()).bfloat16()  # what bf16 rounding of offset_a lost
        scaled = torch.cat([16 * scale, scale], dim=1)
        offsets = torch.cat([offset_a, offset_b], dim=1)
    table = torch.stack([scaled.bfloat16(), offsets.bfloat16()], dim=-1)  # (out, columns / group, 2)
    return table.transpose(0, 1).contiguous()
