"""Folding per-channel scales along the norm -> linear mappings leaves every model's function unchanged."""

from __future__ import annotations

import pytest
import torch
import transformers

from compress.engines.mappings import block_mappings, fold_scales, supported_architectures
from compress.errors import UserError

SMALL = dict(vocab_size=64, max_position_embeddings=64)


def _config(kind: str, kv_heads: int = 4):
    if kind in ("llama", "qwen2", "mistral"):
        cls = {"llama": transformers.LlamaConfig, "qwen2": transformers.Qwen2Config, "mistral": transformers.MistralConfig}[kind]
        return cls(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=kv_heads, **SMALL)
    if kind == "opt":
        return transformers.OPTConfig(hidden_size=32, ffn_dim=64, num_hidden_layers=2, num_attention_heads=4, word_embed_proj_dim=32, **SMALL)
    if kind == "gpt2":
        return transformers.GPT2Config(vocab_size=64, n_embd=32, n_layer=2, n_head=4, n_positions=64)
    if kind == "gpt_neox":
        return transformers.GPTNeoXConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, **SMALL)
    raise ValueError(kind)


def _blocks(model):
    for path in ("model.layers", "model.decoder.layers", "transformer.h", "gpt_neox.layers"):
        try:
            return model.get_submodule(path)
        except AttributeError:
            continue
    raise AssertionError("no blocks")


def _model(kind: str, kv_heads: int = 4):
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(_config(kind, kv_heads)).eval().double()
    with torch.no_grad():  # norms start at ones/zeros; make them (and biases) non-trivial
        for module in model.modules():
            if "Norm" in type(module).__name__:
                module.weight.uniform_(0.5, 1.5)
                if getattr(module, "bias", None) is not None:
                    module.bias.normal_(0, 0.1)
            elif getattr(module, "bias", None) is not None and isinstance(module.bias, torch.nn.Parameter):
                module.bias.normal_(0, 0.1)
    return model


@pytest.mark.parametrize("kind", ["llama", "qwen2", "mistral", "opt", "gpt2", "gpt_neox"])
def test_folding_random_scales_keeps_the_logits(kind):
    model = _model(kind)
    tokens = torch.randint(0, 64, (2, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = model(tokens).logits
        folded = 0
        for block in _blocks(model):
            for mapping in block_mappings(block):
                fold_scales(mapping, torch.rand(mapping.channels, dtype=torch.float64) * 4 + 0.25)
                folded += 1
        after = model(tokens).logits
    assert folded >= 2 * len(_blocks(model))
    torch.testing.assert_close(after, before, rtol=1e-9, atol=1e-9)


def test_folding_changes_the_weights_it_should():
    model = _model("llama")
    block = _blocks(model)[0]
    mapping = block_mappings(block)[0]
    norm_before = block.input_layernorm.weight.clone()
    q_before = block.self_attn.q_proj.weight.clone()
    scales = torch.full((mapping.channels,), 2.0, dtype=torch.float64)
    fold_scales(mapping, scales)
    torch.testing.assert_close(block.input_layernorm.weight, norm_before / 2)
    torch.testing.assert_close(block.self_attn.q_proj.weight, q_before * 2)


def test_grouped_query_attention_drops_v_to_o():
    names = [m.smooth for m in block_mappings(_blocks(_model("llama", kv_heads=2))[0])]
    assert names == ["input_layernorm", "post_attention_layernorm", "mlp.up_proj"]
    full = [m.smooth for m in block_mappings(_blocks(_model("llama", kv_heads=4))[0])]
    assert "self_attn.v_proj" in full


def test_unsupported_architecture_names_the_supported_ones():
    config = transformers.BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64)
    block = transformers.AutoModel.from_config(config).encoder.layer[0]
    with pytest.raises(UserError, match="BertLayer.*gpt2.*llama"):
        block_mappings(block)
    assert {"llama", "qwen2", "mistral", "opt", "gpt2", "gpt_neox"} <= set(supported_architectures())


def test_fold_rejects_non_positive_scales():
    mapping = block_mappings(_blocks(_model("gpt2"))[0])[0]
    with pytest.raises(ValueError, match="positive"):
        fold_scales(mapping, torch.zeros(mapping.channels))


def test_gpt2_maps_the_value_third_of_c_attn_to_attn_c_proj():
    """GPT-2's fused c_attn emits q | k | v; attention is linear in v, so v's rows -> c_proj (as LLaMA's v -> o)."""
    block = _blocks(_model("gpt2"))[0]
    mapping = {m.smooth: m for m in block_mappings(block)}["attn.c_attn"]
    assert mapping.balance == ("attn.c_proj",) and mapping.channels == 32
    q_k = block.attn.c_attn.weight[:, :64].clone()  # Conv1D: (in, out); out = q | k | v
    v, bias = block.attn.c_attn.weight[:, 64:].clone(), block.attn.c_attn.bias[64:].clone()
    scales = torch.linspace(0.5, 2.0, 32, dtype=torch.float64)
    fold_scales(mapping, scales)
    torch.testing.assert_close(block.attn.c_attn.weight[:, :64], q_k, rtol=0, atol=0)
    torch.testing.assert_close(block.attn.c_attn.weight[:, 64:], v / scales)
    torch.testing.assert_close(block.attn.c_attn.bias[64:], bias / scales)
