"""Loading a packed checkpoint builds the packed model straight from the file (issue 14).

The model is initialised on the meta device, packed layers are rebuilt from their specs, and the
file's tensors are assigned: no dense copy of the model is ever allocated. These tests check the
result equals the in-memory model that was saved (logits, non-persistent buffers, tied weights,
dtypes) for six architectures, and count the bytes of CPU tensors created while loading.
"""


import pytest
import torch
import transformers

import compress
from compress.checkpoint import WEIGHTS_NAME
from compress.errors import ModelLoadError
from compress.passes import RTNConfig
from tests.conftest import tiny_gpt2, tiny_llama


def _causal(config):
    return lambda: transformers.AutoModelForCausalLM.from_config(config)


ARCHITECTURES = {
    "llama": tiny_llama,
    "gpt2": tiny_gpt2,
    "opt": _causal(transformers.OPTConfig(vocab_size=128, hidden_size=32, ffn_dim=64, num_hidden_layers=1, num_attention_heads=2,
                                          max_position_embeddings=64, word_embed_proj_dim=32)),
    "gpt-neox": _causal(transformers.GPTNeoXConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                                   num_attention_heads=2, max_position_embeddings=64)),
    "qwen2": _causal(transformers.Qwen2Config(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                              num_attention_heads=2, num_key_value_heads=1)),
    "bert": lambda: transformers.AutoModelForMaskedLM.from_config(transformers.BertConfig(
        vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=64)),
}


def _packed(name):
    torch.manual_seed(0)
    model = ARCHITECTURES[name]().eval()
    model, _ = compress.apply(model, RTNConfig(bits=4, group_size=16), progress=False)
    return model


def _logits(model, ids):
    with torch.no_grad():
        return model(ids).logits


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_packed_load_equals_the_saved_model(tmp_path, name):
    model = _packed(name)
    out = compress.save(model, tmp_path / "m")
    loaded, _, _ = compress.load(out)
    ids = torch.randint(0, 128, (2, 9))
    torch.testing.assert_close(_logits(loaded, ids), _logits(model, ids), rtol=0, atol=0)
    meta = [n for n, t in (*loaded.named_parameters(), *loaded.named_buffers()) if t.is_meta]
    assert meta == []
    saved_buffers = dict(model.named_buffers())
    for buffer_name, buffer in loaded.named_buffers():  # non-persistent ones (rotary inv_freq, position ids) recomputed
        torch.testing.assert_close(buffer, saved_buffers[buffer_name], rtol=0, atol=0)
    embedding, head = loaded.get_input_embeddings(), loaded.get_output_embeddings()
    if getattr(loaded.config, "tie_word_embeddings", False) and isinstance(head, torch.nn.Linear):
        assert head.weight is embedding.weight


def test_load_peak_memory_is_the_stored_bytes_packed_or_dense(tmp_path):
    # Wide layers: the dense fp32 model is ~7x the packed one, so a dense copy shows at once.
    from compress.bench.fresh_load import load_rss

    model = tiny_llama(vocab_size=64, hidden=512, intermediate=2048, layers=4)
    dense = compress.save(model, tmp_path / "dense")
    model, _ = compress.apply(model, RTNConfig(bits=4, group_size=64), progress=False)
    packed = compress.save(model, tmp_path / "packed")
    # One-time costs of a first load, whatever the weights (the first model built in a process,
    # lazily imported libraries, unpacking scratch): ~8-20 MiB measured; a dense copy is 63 MB here.
    fixed = 24 << 20
    for folder in (packed, dense):
        figures = load_rss(folder)
        above = figures["load_peak_above_baseline_bytes"]
        assert above <= 1.2 * figures["stored_bytes"] + fixed, f"{folder.name}: load peak {above} bytes above the baseline ({figures})"


def test_packed_load_casts_to_the_asked_dtype_and_keeps_packed_scales(tmp_path):
    model = _packed("llama")
    out = compress.save(model, tmp_path / "m")
    loaded, _, _ = compress.load(out, dtype="bfloat16")
    assert loaded.model.embed_tokens.weight.dtype == torch.bfloat16
    layer = loaded.model.layers[0].mlp.down_proj
    assert layer.scales.dtype == torch.float16 and layer.qweight.dtype == torch.uint8
    reference = model.to(torch.bfloat16)  # bf16 rounding differs in places (rotary tables), not more
    ids = torch.randint(0, 128, (1, 7))
    torch.testing.assert_close(_logits(loaded, ids), _logits(reference, ids), rtol=0, atol=2e-2)


def test_packed_load_names_missing_and_unexpected_tensors(tmp_path):
    from safetensors.torch import load_file, save_file

    out = compress.save(_packed("llama"), tmp_path / "m")
    tensors = load_file(str(out / WEIGHTS_NAME))
    tensors.pop("model.norm.weight")
    tensors["model.extra.weight"] = torch.zeros(3)
    save_file(tensors, str(out / WEIGHTS_NAME))
    with pytest.raises(ModelLoadError, match=r"missing 1 \(model\.norm\.weight\).*unexpected 1 \(model\.extra\.weight\)"):
        compress.load(out)


def test_packed_load_names_a_tensor_of_the_wrong_shape(tmp_path):
    from safetensors.torch import load_file, save_file

    out = compress.save(_packed("llama"), tmp_path / "m")
    tensors = load_file(str(out / WEIGHTS_NAME))
    tensors["model.norm.weight"] = torch.zeros(5)
    save_file(tensors, str(out / WEIGHTS_NAME))
    with pytest.raises(ModelLoadError, match=r"wrong shape 1 \(model\.norm\.weight"):
        compress.load(out)


@pytest.mark.parametrize("bits", [4, 8])
def test_layers_unpacked_a_few_rows_at_a_time_equal_the_saved_ones(tmp_path, monkeypatch, bits):
    import compress.packed_load

    monkeypatch.setattr(compress.packed_load, "ROWS_PER_STEP", 16)  # every layer of the tiny model in several steps
    model = tiny_llama()
    model, _ = compress.apply(model, RTNConfig(bits=bits, group_size=None), progress=False)
    out = compress.save(model, tmp_path / "m")
    loaded, _, _ = compress.load(out)
    ids = torch.randint(0, 128, (1, 9))
    torch.testing.assert_close(_logits(loaded, ids), _logits(model, ids), rtol=0, atol=0)
