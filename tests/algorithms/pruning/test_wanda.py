"""`wanda`: |W|·‖X_j‖ scores per output row or N:M, no update; the reference's maths transcribed."""

from __future__ import annotations

import pytest
import torch

import compress
from compress.algorithms.pruning.wanda import wanda_mask
from compress.errors import UserError
from compress.formats import SparseLinear
from compress.passes import MagnitudeConfig, WandaConfig
from tests.algorithms.pruning.test_structured import DATA, llama
from tests.conftest import tiny_gpt2


def reference_wanda(W, batches, sparsity, prune_n=0, prune_m=0):
    """locuslab/wanda prune_wanda for one layer: scaler_row as its WrappedGPT keeps it, then the mask."""
    scaler_row, nsamples = torch.zeros(W.shape[1]), 0
    for inp in batches:  # inp: (samples, tokens, in)
        tmp = inp.shape[0]
        inp = inp.reshape(-1, inp.shape[-1]).t().float()
        scaler_row *= nsamples / (nsamples + tmp)
        nsamples += tmp
        scaler_row += torch.norm(inp, p=2, dim=1) ** 2 / nsamples
    W_metric = torch.abs(W) * torch.sqrt(scaler_row.reshape((1, -1)))
    W_mask = torch.zeros_like(W_metric) == 1  # True = pruned
    if prune_n != 0:
        for ii in range(W_metric.shape[1]):
            if ii % prune_m == 0:
                tmp = W_metric[:, ii : (ii + prune_m)].float()
                W_mask.scatter_(1, ii + torch.topk(tmp, prune_n, dim=1, largest=False)[1], True)
    else:
        indices = torch.sort(W_metric, dim=-1, stable=True)[1][:, : int(W_metric.shape[1] * sparsity)]
        W_mask.scatter_(1, indices, True)
    return ~W_mask


@pytest.mark.parametrize("pattern", [None, "2:4", "4:8"])
def test_mask_equals_the_reference(pattern):
    torch.manual_seed(0)
    W = torch.randn(16, 32)
    batches = [torch.randn(2, 5, 32) * torch.rand(32) * 3 for _ in range(3)]
    input_sq = sum(b.reshape(-1, 32).square().sum(0) for b in batches)
    n, m = (int(x) for x in pattern.split(":")) if pattern else (0, 0)
    expected = reference_wanda(W, batches, 0.5, prune_n=m - n if pattern else 0, prune_m=m)
    assert torch.equal(wanda_mask(W, input_sq, 0.5, pattern), expected)


def test_a_loud_input_keeps_its_small_weights():
    layer = torch.nn.Linear(8, 4, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.ones(4, 8))
        layer.weight[:, 3] = 0.01  # smallest weights, on the loudest input
    data = torch.ones(20, 8)
    data[:, 3] = 1000.0
    mask = wanda_mask(layer.weight, data.square().sum(0), 0.5, None)
    assert mask[:, 3].all()


def test_apply_prunes_half_of_every_row_and_stores_sparse(tmp_path):
    model = llama(layers=2)
    report = compress.apply(model, [WandaConfig(sparsity=0.5)], DATA, progress=False)[1][0]
    layer = model.model.layers[0].mlp.down_proj
    assert isinstance(layer, SparseLinear) and layer.layout == "sparse-bitmask"
    assert bool(((layer.dequantize() == 0).sum(1) == 32).all())  # 64 inputs: 32 zeros in every row
    assert report.details["sparsity"] == 0.5 and report.bytes_after < 0.6 * report.bytes_before
    with torch.no_grad():
        logits = model(DATA).logits
    folder = compress.save(model, tmp_path / "wanda")
    reloaded = compress.load(folder).model
    with torch.no_grad():
        assert torch.equal(reloaded(DATA).logits, logits)


def test_two_four_on_gpt2_conv1d_beats_magnitude_on_the_layer_outputs():
    dense = tiny_gpt2(layers=1)
    outputs = {}
    for config in (WandaConfig(pattern="2:4"), MagnitudeConfig(pattern="2:4")):
        model = tiny_gpt2(layers=1)
        compress.apply(model, [config], DATA, progress=False)
        with torch.no_grad():
            outputs[config.pass_name] = model(DATA).logits
    with torch.no_grad():
        reference = dense(DATA).logits
    assert (outputs["wanda"] - reference).norm() < (outputs["magnitude"] - reference).norm()


def test_errors_name_the_problem():
    with pytest.raises(UserError, match="touched no module"):
        compress.apply(llama(), [WandaConfig(targets=["nothing_here"])], DATA, progress=False)
    with pytest.raises(ValueError, match="contradicts pattern"):
        WandaConfig(sparsity=0.3, pattern="2:4")
