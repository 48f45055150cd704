"""`sparsegpt`: OBS pruning with reconstruction; the reference's sweep transcribed."""

from __future__ import annotations

import pytest
import torch

import compress
from compress.algorithms.pruning.sparsegpt import sparsegpt_prune
from compress.formats import SparseLinear
from compress.passes import SparseGPTConfig
from tests.algorithms.pruning.test_structured import DATA, llama


def reference_sparsegpt(W, H, sparsity, prunen=0, prunem=0, blocksize=128, percdamp=0.01):
    """IST-DASLab/sparsegpt SparseGPT.fasterprune (without quantizer), one layer.

    One deliberate difference: the unstructured mask of a block drops exactly
    int(numel * sparsity) scores (the reference's `tmp <= thresh` drops one more)."""
    W, H = W.clone().float(), H.clone().float()
    rows, columns = W.shape
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    damp = percdamp * torch.mean(torch.diag(H))
    H[torch.arange(columns), torch.arange(columns)] += damp
    H = torch.linalg.cholesky(H)
    H = torch.cholesky_inverse(H)
    Hinv = torch.linalg.cholesky(H, upper=True)
    for i1 in range(0, columns, blocksize):
        i2 = min(i1 + blocksize, columns)
        count = i2 - i1
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        Err1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        if prunen == 0:
            tmp = W1**2 / (torch.diag(Hinv1).reshape((1, -1))) ** 2
            mask1 = torch.zeros_like(tmp, dtype=torch.bool)
            mask1.view(-1)[torch.sort(tmp.flatten(), stable=True)[1][: int(tmp.numel() * sparsity)]] = True
        else:
            mask1 = torch.zeros_like(W1) == 1
        for i in range(count):
            w = W1[:, i]
            d = Hinv1[i, i]
            if prunen != 0 and i % prunem == 0:
                tmp = W1[:, i : (i + prunem)] ** 2 / (torch.diag(Hinv1)[i : (i + prunem)].reshape((1, -1))) ** 2
                mask1.scatter_(1, i + torch.topk(tmp, prunen, dim=1, largest=False)[1], True)
            q = w.clone()
            q[mask1[:, i]] = 0
            Q1[:, i] = q
            err1 = (w - q) / d
            W1[:, i:] -= err1.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
            Err1[:, i] = err1
        W[:, i1:i2] = Q1
        W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])
    return W


def problem(rows=16, columns=96, tokens=400, seed=0):
    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(tokens, columns, generator=generator) @ torch.randn(columns, columns, generator=generator) * 0.3  # correlated inputs
    return torch.randn(rows, columns, generator=generator), X, (2 * X.T.double() @ X.double() / tokens)


@pytest.mark.parametrize("pattern", [None, "2:4"])
def test_sweep_equals_the_reference(pattern):
    W, _, H = problem()
    n, m = (int(x) for x in pattern.split(":")) if pattern else (0, 0)
    expected = reference_sparsegpt(W, H, 0.5, prunen=m - n, prunem=m, blocksize=32)
    result = sparsegpt_prune(W, H, sparsity=0.5, pattern=pattern, block_size=32)
    assert torch.allclose(result.weight, expected, atol=1e-4)
    if pattern:
        assert bool(((result.weight.reshape(16, -1, 4) == 0).sum(-1) == 2).all())


def test_reconstruction_beats_masking_alone():
    W, X, H = problem()
    result = sparsegpt_prune(W, H, sparsity=0.5)
    masked = W * (result.weight != 0)  # the same mask, no update
    assert (X @ (W - result.weight).T).norm() < 0.8 * (X @ (W - masked).T).norm()


def test_joint_4bit_codes_stay_on_the_grid_and_zero_where_pruned():
    W, _, H = problem()
    result = sparsegpt_prune(W, H, sparsity=0.5, bits=4, group_size=32)
    codes, scales, zeros = result.codes, result.scales, result.zeros
    restored = (codes.float() - zeros.float().repeat_interleave(32, 1)) * scales.float().repeat_interleave(32, 1)
    assert torch.allclose(restored, result.weight, atol=1e-6)
    assert float((result.weight == 0).float().mean()) >= 0.5


def test_apply_stores_two_four_plus_4bit_and_reloads(tmp_path):
    model = llama(layers=2)
    report = compress.apply(model, [SparseGPTConfig(pattern="2:4", bits=4, group_size=32)], DATA, progress=False)[1][0]
    layer = model.model.layers[1].self_attn.q_proj
    assert isinstance(layer, SparseLinear) and layer.layout == "sparse-24-bitmask" and layer.bits == 4
    assert report.bytes_after <= 0.2 * report.bytes_before
    with torch.no_grad():
        logits = model(DATA).logits
    reloaded = compress.load(compress.save(model, tmp_path / "sgpt")).model
    with torch.no_grad():
        assert torch.equal(reloaded(DATA).logits, logits)


def test_gpt2_conv1d_layers_are_pruned_through_their_transposed_weight():
    from tests.conftest import tiny_gpt2

    model = tiny_gpt2(layers=1)
    report = compress.apply(model, [SparseGPTConfig(sparsity=0.5, storage="dense")], DATA, progress=False)[1][0]
    assert report.details["sparsity"] == 0.5
    assert float((model.transformer.h[0].mlp.c_fc.weight == 0).float().mean()) == 0.5
