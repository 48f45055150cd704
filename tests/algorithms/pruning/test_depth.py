"""`depth`: the least important blocks are removed, indices and config rewritten."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import compress
from compress.algorithms.pruning.depth import block_influence
from compress.errors import UserError
from compress.passes import DepthConfig
from tests.algorithms.pruning.test_structured import DATA, llama
from tests.conftest import tiny_gpt2


def make_identity(block):
    with torch.no_grad():
        block.self_attn.o_proj.weight.zero_()
        block.mlp.down_proj.weight.zero_()


def test_a_block_that_changes_nothing_is_removed():
    model = llama(layers=4)
    make_identity(model.model.layers[1])
    kept = [model.model.layers[i] for i in (0, 2, 3)]
    report = compress.apply(model, [DepthConfig(fraction=0.25)], DATA, progress=False)[1][0]
    assert report.details["removed"] == [1] and report.details["scores"][1] == pytest.approx(0, abs=1e-6)
    assert list(model.model.layers) == kept and model.config.num_hidden_layers == 3
    assert [block.self_attn.layer_idx for block in model.model.layers] == [0, 1, 2]  # KV-cache slots renumbered
    assert report.modules == ["model.layers.1"] and report.bytes_after == 0
    assert model.generate(DATA[:1, :4], max_new_tokens=3, do_sample=False).shape == (1, 7)  # the cache works


def test_skip_loss_is_the_loss_increase_when_the_block_is_skipped():
    model = llama(layers=3)
    make_identity(model.model.layers[1])
    with torch.no_grad():
        base = float(model(DATA, labels=DATA).loss)
    report = compress.apply(model, [DepthConfig(fraction=0.34, importance="loss", keep_last=False)], DATA, progress=False)[1][0]
    scores = report.details["scores"]
    assert scores[1] == pytest.approx(0, abs=1e-6)  # skipping an identity block changes nothing
    skipped = llama(layers=3)
    del skipped.model.layers[0]
    skipped.config.num_hidden_layers = 2
    for index, block in enumerate(skipped.model.layers):
        block.self_attn.layer_idx = index
    make_identity(skipped.model.layers[0])
    assert scores[0] == pytest.approx(float(skipped(DATA, labels=DATA).loss) - base, abs=1e-4)
    assert report.details["removed"] == [min(range(3), key=scores.__getitem__)]


def test_block_influence_is_one_minus_cosine():
    model = llama(layers=2)
    outputs = model(DATA, output_hidden_states=True)
    hidden = outputs.hidden_states  # [embeddings, after block 0, after block 1 (final norm applied)]
    expected = 1 - F.cosine_similarity(hidden[0], hidden[1], dim=-1).mean()
    assert torch.allclose(block_influence(model, model.model.layers, DATA)[0].float(), expected, atol=1e-5)


def test_gpt2_blocks_are_removed_too():
    model = tiny_gpt2(layers=4)
    compress.apply(model, [DepthConfig(fraction=0.5)], DATA, progress=False)
    assert len(model.transformer.h) == 2 and model.config.n_layer == 2


def test_errors():
    with pytest.raises(UserError, match="leaving none"):
        compress.apply(llama(layers=2), [DepthConfig(fraction=0.5)], DATA, progress=False)
    with pytest.raises(UserError, match="supports llama"):
        compress.apply(torch.nn.Sequential(torch.nn.Linear(2, 2)), [DepthConfig()], DATA, progress=False)
