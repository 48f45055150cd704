"""What an integer code means: `(code - zero) * scale`, one (scale, zero) per row and group.

A group is `group_size` consecutive inputs of one output row (the last group of a row is
shorter when `group_size` does not divide the input width); `group_size=None` means one group
per row. Symmetric grids store no zeros: their zero point is 2**(bits-1).

    >>> import torch
    >>> codes = torch.tensor([[0, 15, 8]], dtype=torch.uint8)
    >>> dequantize_codes(codes, torch.tensor([[0.5]]).half(), None, group_size=None, bits=4)
    tensor([[-4.0000,  3.5000,  0.0000]])
"""

from __future__ import annotations

import torch


def group_count(in_features: int, group_size: int | None) -> int:
    """Groups per row: ceil(in / group_size), or 1 without groups.

    >>> group_count(576, 128)
    5
    """
    return 1 if group_size is None else -(-in_features // group_size)


def expand_groups(per_group: torch.Tensor, in_features: int, group_size: int | None) -> torch.Tensor:
    """(out, groups) -> (out, in): each group's value repeated over its columns."""
    if group_size is None:
        return per_group[:, :1].expand(-1, in_features)
    return per_group.repeat_interleave(group_size, dim=1)[:, :in_features]


def dequantize_codes(
    codes: torch.Tensor,
    scales: torch.Tensor,
    zeros: torch.Tensor | None,
    group_size: int | None,
    bits: int,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Codes (out, in) back to weights `(codes - zero) * scale`, in `dtype`; zeros=None is symmetric."""
    out_features, in_features = codes.shape
    width = in_features if group_size is None else group_size
    if in_features % width == 0:  # whole groups: broadcast (out, groups, 1) instead of expanding
        grouped = codes.reshape(out_features, -1, width).float()
        scale = scales.float().unsqueeze(-1)
        if zeros is None:
            grouped = grouped.sub_(float(2 ** (bits - 1)))
        else:
            grouped = grouped.sub_(zeros.float().unsqueeze(-1))
        return grouped.mul_(scale).reshape(out_features, in_features).to(dtype)
    scale = expand_groups(scales, in_features, group_size).float()
    zero = float(2 ** (bits - 1)) if zeros is None else expand_groups(zeros, in_features, group_size).float()
    return ((codes.float() - zero) * scale).to(dtype)
