"""Bit packing of integer codes along the last dimension, little-endian within each unit.

Layouts (rows stay rows; each row is packed on its own, padded with zero codes to a whole unit):

| bits | unit              | bytes per code |
|------|-------------------|----------------|
| 2    | 4 codes in 1 byte | 0.25           |
| 3    | 8 codes in 3 bytes| 0.375          |
| 4    | 2 codes in 1 byte | 0.5            |
| 5–8  | 1 code in 1 byte  | 1 (uint8 container, so the CPU kernel path needs no repacking) |

Code `i` of a unit occupies bits `[i*bits, (i+1)*bits)` of the unit read as a little-endian
integer: for 4 bits the first code is the low nibble, for 3 bits codes 0–1 and the low 2 bits
of code 2 fill byte 0.

    >>> import torch
    >>> codes = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 0]], dtype=torch.uint8)
    >>> packed = pack_codes(codes, bits=3)
    >>> packed.shape
    torch.Size([1, 3])
    >>> torch.equal(unpack_codes(packed, bits=3, columns=8), codes)
    True
"""

from __future__ import annotations

import torch

from compress.errors import ScaleCompressError

SUPPORTED_BITS = range(2, 9)


def _unit(bits: int) -> tuple[int, int, int]:
    """(codes per unit, bytes per unit, bits each code occupies) for a bit-width."""
    if bits not in SUPPORTED_BITS:
        raise ScaleCompressError(f"cannot pack {bits}-bit codes; supported bit-widths: 2..8")
    if bits == 2:
        return 4, 1, 2
    if bits == 3:
        return 8, 3, 3
    if bits == 4:
        return 2, 1, 4
    return 1, 1, 8


def packed_columns(columns: int, bits: int) -> int:
    """Bytes per row after packing `columns` codes of `bits` bits.

    >>> packed_columns(100, 3)  # 13 units of 8 codes, 3 bytes each
    39
    """
    per_unit, unit_bytes, _ = _unit(bits)
    return -(-columns // per_unit) * unit_bytes


def pack_codes(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack integer codes in [0, 2**bits) of shape (..., columns) into uint8 (..., packed_columns).

    >>> pack_codes(torch.tensor([[1, 15]], dtype=torch.uint8), bits=4)
    tensor([[241]], dtype=torch.uint8)
    """
    per_unit, unit_bytes, width = _unit(bits)
    columns = codes.shape[-1]
    if codes.numel() and int(codes.max()) >= (1 << bits):
        raise ScaleCompressError(f"code {int(codes.max())} does not fit in {bits} bits")
    codes = codes.to(torch.uint8)
    if width == 8:
        return codes.contiguous()
    padding = -columns % per_unit
    if padding:
        codes = torch.nn.functional.pad(codes, (0, padding))
    units = codes.reshape(*codes.shape[:-1], -1, per_unit).to(torch.int64)
    shifts = torch.arange(per_unit, device=codes.device, dtype=torch.int64) * width
    words = (units << shifts).sum(dim=-1)  # disjoint bit ranges, so a sum is an OR
    byte_shifts = torch.arange(unit_bytes, device=codes.device, dtype=torch.int64) * 8
    packed = (words.unsqueeze(-1) >> byte_shifts) & 0xFF
    return packed.reshape(*codes.shape[:-1], -1).to(torch.uint8)


def unpack_codes(packed: torch.Tensor, bits: int, columns: int) -> torch.Tensor:
    """Inverse of `pack_codes`: uint8 (..., packed_columns) -> uint8 codes (..., columns).

    >>> unpack_codes(torch.tensor([[241]], dtype=torch.uint8), bits=4, columns=2)
    tensor([[ 1, 15]], dtype=torch.uint8)
    """
    per_unit, unit_bytes, width = _unit(bits)
    if packed.shape[-1] != packed_columns(columns, bits):
        raise ScaleCompressError(
            f"packed rows have {packed.shape[-1]} bytes; {columns} codes of {bits} bits need {packed_columns(columns, bits)}"
        )
    if width == 8:
        return packed
    if unit_bytes == 1:  # 2 and 4 bits: whole codes per byte, stay in uint8 (the fast, common case)
        shifts = torch.arange(0, 8, width, device=packed.device, dtype=torch.uint8)
        codes = (packed.unsqueeze(-1) >> shifts) & ((1 << width) - 1)
        return codes.reshape(*packed.shape[:-1], -1)[..., :columns].contiguous()
    units = packed.reshape(*packed.shape[:-1], -1, unit_bytes).to(torch.int32)  # 3 bits: 24-bit words
    byte_shifts = torch.arange(unit_bytes, device=packed.device, dtype=torch.int32) * 8
    words = (units << byte_shifts).sum(dim=-1, dtype=torch.int32)
    shifts = torch.arange(per_unit, device=packed.device, dtype=torch.int32) * width
    codes = (words.unsqueeze(-1) >> shifts) & ((1 << width) - 1)
    codes = codes.reshape(*packed.shape[:-1], -1)[..., :columns]
    return codes.to(torch.uint8).contiguous()
