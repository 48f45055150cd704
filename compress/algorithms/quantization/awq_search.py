"""The two searches of AWQ (Lin et al. 2023), as plain functions on tensors.

Scale search (paper eq. 4-5): for a group of linears fed by one producer, try
s = mean|x|^alpha for alpha in {0, 1/n, ..., (n-1)/n}, normalised so max(s)·min(s) = 1;
quantize W·diag(s), feed it x / s (done as Q(W·s) / s on the weight), and keep the alpha
whose block output is closest to the dense one. alpha = 0 is round-to-nearest itself, so the
search never does worse than RTN on the calibration data.

Clipping search (llm-awq `auto_clip`): per output row and group, shrink the weight's range
to (1 - i/n)·max|w| for i < max_shrink·n and keep the threshold whose group output
x·Q(clip(w)) is closest to x·w.

    >>> import torch
    >>> x_mean = torch.tensor([1.0, 4.0])
    >>> candidate_scales(x_mean, 0.5)
    tensor([0.7071, 1.4142])
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from compress.algorithms.quantization.grid import dequantize, rtn_quantize


def fake_quantize(weight: torch.Tensor, bits: int, group_size: int | None, symmetric: bool) -> torch.Tensor:
    """Round-to-nearest and back: the weight as the packed layer will compute with it."""
    codes, scales, zeros = rtn_quantize(weight, bits, group_size, symmetric)
    return dequantize(codes, scales, None if symmetric else zeros, group_size, bits).to(weight.dtype)


def candidate_scales(x_mean: torch.Tensor, alpha: float) -> torch.Tensor:
    """s = mean|x|^alpha, clamped away from 0 and normalised so that max(s)·min(s) = 1."""
    scales = x_mean.float().pow(alpha).clamp(min=1e-4)
    return scales / (scales.max() * scales.min()).sqrt()


@torch.no_grad()
def search_scales(
    weights: list[torch.Tensor],
    x_mean: torch.Tensor,
    loss: Callable[[list[torch.Tensor]], float],
    quantize: Callable[[torch.Tensor], torch.Tensor],
    grid: int = 20,
) -> tuple[torch.Tensor, float, list[float]]:
    """The best scales for linears with `weights` (each (out, in)) sharing inputs whose mean |x| is `x_mean`.

    `loss(candidate_weights)` measures the block with those weights in place of the originals.
    Returns (scales, alpha, loss of every alpha tried).
    """
    losses = []
    best = (float("inf"), None, 0.0)
    for step in range(grid):
        alpha = step / grid
        scales = candidate_scales(x_mean, alpha).to(weights[0].device)
        candidate = [quantize(weight.float() * scales) / scales for weight in weights]
        value = float(loss(candidate))
        losses.append(value)
        if value < best[0]:
            best = (value, scales, alpha)
    return best[1], best[2], losses


@torch.no_grad()
def search_clip(
    weight: torch.Tensor,
    inputs: torch.Tensor,
    quantize: Callable[[torch.Tensor], torch.Tensor],
    group_size: int | None,
    grid: int = 20,
    max_shrink: float = 0.5,
    max_elements: int = 1 << 23,
) -> torch.Tensor:
    """Per (row, group) clipping thresholds (out, groups) for `weight` (out, in) on `inputs` (tokens, in).

    `quantize` must quantize a (rows, in) weight with the same group size. A last group shorter
    than `group_size` is padded with zero weights and inputs, which change neither its range nor its outputs.
    """
    out_features, in_features = weight.shape
    group = group_size or in_features
    padded = -(-in_features // group) * group
    w = F.pad(weight.float(), (0, padded - in_features))
    x = F.pad(inputs.float(), (0, padded - in_features))
    groups = padded // group
    x = x.reshape(1, x.shape[0], groups, group)
    rows_per_batch = max(1, max_elements // max(1, x.numel()))
    thresholds = []
    for start in range(0, out_features, rows_per_batch):
        w_rows = w[start : start + rows_per_batch].reshape(-1, 1, groups, group)
        reference = (x * w_rows).sum(-1)  # (rows, tokens, groups)
        original_max = w_rows.abs().amax(dim=-1, keepdim=True)
        best_max = original_max.clone()
        best_error = torch.full_like(original_max, float("inf"))
        for step in range(int(max_shrink * grid)):
            max_value = original_max * (1 - step / grid)
            clipped = torch.maximum(torch.minimum(w_rows, max_value), -max_value)
            restored = quantize(clipped.reshape(-1, padded)).reshape(clipped.shape)
            error = ((x * restored).sum(-1) - reference).pow(2).mean(dim=1).reshape(best_error.shape)
            better = error < best_error
            best_error[better] = error[better]
            best_max[better] = max_value[better]
        thresholds.append(best_max.reshape(-1, groups))
    return torch.cat(thresholds)


@torch.no_grad()
def apply_clip(weight: torch.Tensor, thresholds: torch.Tensor, group_size: int | None) -> None:
    """Clamp each (row, group) of `weight` (out, in; a view is written through) to ±threshold."""
    in_features = weight.shape[1]
    group = group_size or in_features
    limit = thresholds.repeat_interleave(group, dim=1)[:, :in_features].to(weight.dtype)
    weight.copy_(torch.maximum(torch.minimum(weight, limit), -limit))
