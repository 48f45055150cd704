"""Column-by-column weight updates with the inverse Hessian (Optimal Brain Surgeon, as GPTQ and
SparseGPT apply it), with lazy batch updates.

Columns are processed in order; each column's new value comes from a callback (GPTQ: the
nearest grid point; SparseGPT: the masked value), and its error is spread over the columns not
yet processed, weighted by the upper Cholesky factor of H⁻¹: first within a block of
`block_size` columns, then, once per block, onto all later columns in one matrix product.

    >>> import torch
    >>> from compress.engines.stats import damped_cholesky_inverse
    >>> W = torch.randn(4, 6); X = torch.randn(50, 6)
    >>> hinv, _, _ = damped_cholesky_inverse(2 * X.T @ X / 50, 0.01)
    >>> Q = column_sweep(W.clone(), hinv.float(), 4, lambda j, w, current: torch.round(w))
    >>> bool((Q == torch.round(Q)).all())
    True
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def column_sweep(
    weight: torch.Tensor,
    hinv: torch.Tensor,
    block_size: int,
    new_column: Callable[[int, torch.Tensor, Callable[[int, int], torch.Tensor]], torch.Tensor],
    start_block: Callable[[int, int, torch.Tensor, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Replace the columns of `weight` (rows, columns; updated in place between blocks) one by
    one by `new_column(j, column j, current)`, compensating the error on the later columns.

    `current(j0, j1)` gives the up-to-date values of columns j0..j1-1 (j0 >= j), the errors of
    this block so far included, so that a group's grid can be fitted to the weights as they are
    when its first column is reached, whatever `block_size` (which then only changes speed).

    `hinv` is the upper Cholesky factor of the damped inverse Hessian (same dtype as `weight`).
    `start_block(i1, i2, W1, Hinv1)` runs before each block (SparseGPT chooses its mask there).
    Returns the new weight (rows, columns).
    """
    columns = weight.shape[1]
    result = torch.zeros_like(weight)
    for i1 in range(0, columns, block_size):
        i2 = min(i1 + block_size, columns)
        block = weight[:, i1:i2].clone()
        block_hinv = hinv[i1:i2, i1:i2]
        errors = torch.zeros_like(block)
        if start_block is not None:
            start_block(i1, i2, block, block_hinv)
        for i in range(i2 - i1):

            def current(j0: int, j1: int, i=i, i1=i1, i2=i2, block=block, errors=errors, block_hinv=block_hinv) -> torch.Tensor:
                inside = block[:, j0 - i1 : min(j1, i2) - i1]
                if j1 <= i2:
                    return inside
                later = weight[:, i2:j1] - errors[:, :i] @ hinv[i1 : i1 + i, i2:j1]
                return torch.cat([inside, later], dim=1)

            column = block[:, i]
            new = new_column(i1 + i, column, current)
            result[:, i1 + i] = new
            error = (column - new) / block_hinv[i, i]
            block[:, i:] -= error.unsqueeze(1) @ block_hinv[i, i:].unsqueeze(0)
            errors[:, i] = error
        weight[:, i2:] -= errors @ hinv[i1:i2, i2:]
    return result
