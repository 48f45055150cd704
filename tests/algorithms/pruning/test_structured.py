"""`structured`: heads (whole KV groups under GQA) and MLP channels removed, config rewritten."""

from __future__ import annotations

import pytest
import torch
import transformers

import compress
from compress.errors import UserError
from compress.passes import StructuredConfig
from tests.conftest import tiny_gpt2


def llama(heads=4, kv_heads=2, layers=2, hidden=32, intermediate=64):
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=64, hidden_size=hidden, intermediate_size=intermediate, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=kv_heads, head_dim=8, max_position_embeddings=64,
    )
    return transformers.AutoModelForCausalLM.from_config(config).eval()


DATA = torch.randint(0, 64, (4, 16), generator=torch.Generator().manual_seed(1))


def run(model, **fields):
    return compress.apply(model, [StructuredConfig(**fields)], DATA, progress=False)[1][0]


def test_gqa_removes_whole_kv_groups_and_channels():
    model = llama(heads=4, kv_heads=2)
    report = run(model, heads=0.5, mlp=0.25)
    attention = model.model.layers[0].self_attn
    assert (attention.q_proj.out_features, attention.k_proj.out_features, attention.o_proj.in_features) == (16, 8, 16)
    assert model.model.layers[1].mlp.down_proj.in_features == 48
    assert (model.config.num_attention_heads, model.config.num_key_value_heads, model.config.intermediate_size) == (2, 1, 48)
    assert report.details["kv_heads"] == [2, 1] and report.bytes_after < report.bytes_before
    assert model(DATA).logits.shape == (4, 16, 64)  # still runs with the new head count


def test_parameters_fall_by_the_expected_amount():
    model = llama(heads=4, kv_heads=4, hidden=32, intermediate=64)
    before = sum(p.numel() for p in model.parameters())
    run(model, heads=0.5, mlp=0.25, importance="magnitude")
    # per block: two heads of q,k,v rows (3 * 16 * 32) and o columns (16 * 32), 16 channels of gate/up/down (3 * 16 * 32)
    assert before - sum(p.numel() for p in model.parameters()) == 2 * (4 * 16 * 32 + 3 * 16 * 32)


@pytest.mark.parametrize("importance", ["magnitude", "activation", "taylor"])
def test_a_dead_channel_and_head_are_removed_first(importance):
    model = llama(heads=4, kv_heads=4, layers=1)
    mlp, attention = model.model.layers[0].mlp, model.model.layers[0].self_attn
    with torch.no_grad():
        mlp.gate_proj.weight[5].zero_(), mlp.up_proj.weight[5].zero_(), mlp.down_proj.weight[:, 5].zero_()
        attention.v_proj.weight[16:24].zero_(), attention.o_proj.weight[:, 16:24].zero_(), attention.q_proj.weight[16:24].zero_(), attention.k_proj.weight[16:24].zero_()
    kept_row = mlp.gate_proj.weight[6].clone()
    run(model, heads=0.5, mlp=1 / 8, round_to=1, importance=importance)
    assert torch.equal(mlp.gate_proj.weight[5], kept_row)  # channel 5 gone, 6 moved up
    assert attention.o_proj.weight.abs().sum(0).min() > 0  # the dead head (2) was one of those removed


def test_unsupported_architecture_names_the_supported_ones():
    with pytest.raises(UserError, match="supports llama, mistral, qwen2"):
        run(tiny_gpt2())


def test_head_counts_stay_divisors_of_the_hidden_size():
    model = llama(heads=4, kv_heads=4, hidden=32)  # 3 heads would not divide 32: transformers refuses such a config
    with pytest.warns(UserWarning, match="nearest count"):
        report = run(model, heads=0.25)
    assert report.details["heads"] == [4, 2] and "allowed: [2, 3]" in report.details["heads_note"]
    model = llama(heads=4, kv_heads=2)
    assert run(model, heads=0.2).details["kv_heads"] == [2, 1]  # at least one group when heads > 0
    with pytest.raises(UserError, match="no number of KV groups"):
        run(llama(heads=4, kv_heads=1), heads=0.5)  # one KV group: removing it removes every head


def test_targets_do_not_apply_to_model_level_passes():
    from compress.passes import DepthConfig

    for config_class in (StructuredConfig, DepthConfig):
        with pytest.raises(ValueError, match="targets/ignore do not apply"):
            config_class(targets=["q_proj"])
