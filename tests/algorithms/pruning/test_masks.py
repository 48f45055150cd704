import pytest
import torch

from compress.algorithms.pruning.masks import (
    global_masks,
    n_m_mask,
    parse_pattern,
    smallest_masks,
    unstructured_mask,
)
from compress.errors import UserError


def test_unstructured_drops_exactly_the_smallest():
    scores = torch.randn(64, 96, generator=torch.Generator().manual_seed(0))
    mask = unstructured_mask(scores, 0.3)
    dropped = round(0.3 * scores.numel())
    assert int((~mask).sum()) == dropped
    assert float(scores.abs()[~mask].max()) <= float(scores.abs()[mask].min())


def test_ties_still_give_the_exact_count():
    scores = torch.ones(10, 10)
    scores[0, 0] = 5
    for sparsity in (0.0, 0.37, 0.5, 0.99):
        mask = unstructured_mask(scores, sparsity)
        assert int((~mask).sum()) == round(sparsity * 100)
    assert bool(unstructured_mask(scores, 0.99)[0, 0])  # the one large score survives


def test_global_masks_share_one_threshold():
    generator = torch.Generator().manual_seed(1)
    scores = [torch.randn(32, 64, generator=generator) * scale for scale in (0.1, 1.0, 10.0)]
    masks = global_masks(scores, 0.5)
    assert sum(int((~m).sum()) for m in masks) == sum(s.numel() for s in scores) // 2
    kept = torch.cat([s.abs()[m] for s, m in zip(scores, masks)])
    dropped = torch.cat([s.abs()[~m] for s, m in zip(scores, masks)])
    assert float(dropped.max()) <= float(kept.min())
    fractions = [float((~m).float().mean()) for m in masks]
    assert fractions[0] > 0.9 and fractions[2] < 0.1  # small-scale layers lose most


def test_smallest_masks_bounds():
    with pytest.raises(ValueError):
        smallest_masks([torch.ones(3)], 4)
    assert bool(smallest_masks([torch.ones(3)], 0)[0].all())


@pytest.mark.parametrize(("n", "m"), [(2, 4), (4, 8), (1, 4), (3, 4)])
def test_n_m_keeps_n_largest_in_every_group(n, m):
    scores = torch.randn(16, 64, generator=torch.Generator().manual_seed(2))
    mask = n_m_mask(scores, n, m)
    groups = mask.reshape(16, -1, m)
    assert bool((groups.sum(-1) == n).all())
    magnitudes = scores.abs().reshape(16, -1, m)
    kept_min = magnitudes.masked_fill(~groups, float("inf")).amin(-1)
    dropped_max = magnitudes.masked_fill(groups, -1.0).amax(-1)
    assert bool((dropped_max <= kept_min).all())


def test_patterns():
    assert parse_pattern("4:8") == (4, 8) and parse_pattern(" 2 : 4 ") == (2, 4)
    for bad in ("4:4", "0:4", "5:4", "2-4", "a:b", ""):
        with pytest.raises(UserError, match="N:M"):
            parse_pattern(bad)
    with pytest.raises(UserError, match="divisible by 8"):
        n_m_mask(torch.ones(2, 12), 4, 8)


def test_masks_of_transposed_views_have_the_view_shape():
    storage = torch.randn(96, 64)  # GPT-2 Conv1D keeps (in, out); passes look at (out, in)
    view = storage.t()
    mask = unstructured_mask(view, 0.5)
    assert mask.shape == (64, 96) and int((~mask).sum()) == 64 * 48
    view.masked_fill_(~mask, 0)
    assert int((storage == 0).sum()) == 64 * 48
