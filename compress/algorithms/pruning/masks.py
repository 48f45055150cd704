"""Pruning masks from importance scores (True = keep): unstructured (per tensor or across
tensors) and N:M. Magnitudes |score| are compared as float32; ties are broken by position, so
the number pruned is always exactly the number asked.

Wanda and SparseGPT reuse these with their own scores.

    >>> import torch
    >>> scores = torch.tensor([[4.0, 1.0, 3.0, 2.0]])
    >>> smallest_masks([scores], 2)[0]
    tensor([[ True, False,  True, False]])
    >>> n_m_mask(scores, 1, 2)
    tensor([[ True, False,  True, False]])
"""

from __future__ import annotations

import re

import torch

from compress.errors import UserError

_PATTERN = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*$")


def parse_pattern(pattern: str) -> tuple[int, int]:
    """'N:M' -> (N, M): keep N weights in every M consecutive inputs; 0 < N < M.

    >>> parse_pattern("2:4")
    (2, 4)
    """
    match = _PATTERN.match(pattern)
    if not match or not 0 < int(match.group(1)) < int(match.group(2)):
        raise UserError(f"pattern={pattern!r} is not an N:M pattern with 0 < N < M (N kept of every M inputs); use e.g. '2:4' or '4:8'")
    return int(match.group(1)), int(match.group(2))


def _magnitudes(scores: torch.Tensor) -> torch.Tensor:
    return scores.detach().float().abs().contiguous()


def smallest_masks(scores: list[torch.Tensor], count: int) -> list[torch.Tensor]:
    """Masks over several score tensors that drop exactly the `count` smallest |scores| overall.

    The threshold is the count-th smallest magnitude (`kthvalue` over the float32 magnitudes of
    all tensors, so several tensors cost one float32 copy of them all); ties at the threshold
    are dropped in order until the count is met.

    >>> masks = smallest_masks([torch.tensor([1.0, 5.0]), torch.tensor([2.0, 2.0, 9.0])], 3)
    >>> [m.tolist() for m in masks]
    [[False, True], [False, False, True]]
    """
    total = sum(s.numel() for s in scores)
    if not 0 <= count <= total:
        raise ValueError(f"cannot prune {count} of {total} scores")
    if count == 0:
        return [torch.ones_like(s, dtype=torch.bool) for s in scores]
    flat = torch.cat([_magnitudes(s).flatten() for s in scores]) if len(scores) > 1 else _magnitudes(scores[0]).flatten()
    threshold = flat.kthvalue(count).values
    ties_left = count - int((flat < threshold).sum())
    del flat
    masks = []
    for s in scores:
        magnitudes = _magnitudes(s)
        keep = magnitudes > threshold
        ties = (magnitudes == threshold).flatten().nonzero().flatten()
        keep.view(-1)[ties[ties_left:]] = True  # ties beyond the quota stay
        ties_left = max(ties_left - ties.numel(), 0)
        masks.append(keep)
    return masks


def unstructured_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Keep the largest scores of one tensor, dropping round(sparsity * numel)."""
    return smallest_masks([scores], round(sparsity * scores.numel()))[0]


def global_masks(scores: list[torch.Tensor], sparsity: float) -> list[torch.Tensor]:
    """Keep the largest scores across all tensors, dropping round(sparsity * total numel)."""
    return smallest_masks(scores, round(sparsity * sum(s.numel() for s in scores)))


def n_m_mask(scores: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Keep the N largest of every M consecutive scores along the last dimension (inputs)."""
    rows, columns = scores.shape
    if columns % m:
        raise UserError(f"an {n}:{m} pattern needs input widths divisible by {m}; this layer has {columns}")
    groups = scores.detach().float().abs().reshape(rows, columns // m, m)
    keep = torch.zeros_like(groups, dtype=torch.bool)
    keep.scatter_(-1, groups.topk(n, dim=-1).indices, True)
    return keep.reshape(rows, columns)
