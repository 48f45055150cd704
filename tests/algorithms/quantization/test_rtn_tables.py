"""rtn's `head` and `embedding` settings: the output head and token embedding as packed tables."""

import json

import pytest
import torch
import transformers
from pydantic import ValidationError

import compress
from compress.algorithms.quantization.rtn import RTNConfig, plan_rtn
from compress.errors import UserError
from compress.formats import QuantizedEmbedding, QuantizedLinear
from compress.model_info import count_params


def llama(tie=True):
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=200, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                                      num_key_value_heads=2, max_position_embeddings=64, tie_word_embeddings=tie)
    return transformers.AutoModelForCausalLM.from_config(config).eval()


def gpt2():
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=200, n_embd=64, n_layer=2, n_head=4, n_positions=64, bos_token_id=0, eos_token_id=0)
    return transformers.AutoModelForCausalLM.from_config(config).eval()


TOKENS = torch.randint(0, 200, (2, 9), generator=torch.Generator().manual_seed(0))
HEAD = {"bits": 8, "group_size": 32}


def logits(model, tokens=TOKENS):
    with torch.no_grad():
        return model(tokens).logits


@pytest.mark.parametrize("make", [llama, gpt2], ids=["llama", "gpt2"])
def test_tied_head_and_embedding_are_one_packed_table_saved_once_and_reloaded_identically(make, tmp_path):
    model = make()
    dense_params = count_params(model)
    model, (report,) = compress.apply(model, [RTNConfig(bits=4, group_size=32, head=HEAD)], progress=False)
    head, embedding = model.get_output_embeddings(), model.get_input_embeddings()
    assert isinstance(head, QuantizedLinear) and head.bits == 8
    assert isinstance(embedding, QuantizedEmbedding) and embedding._table is head and report.details["tied_table"]
    assert count_params(model) == dense_params
    dense = make()
    touched = [m for m in dense.modules() if type(m).__name__ in ("Linear", "Conv1D")] + [dense.get_input_embeddings()]
    unique = {id(p): p for m in touched for p in m.parameters()}
    assert report.bytes_before == sum(p.numel() * 4 for p in unique.values())  # the tied table counted once
    decode, prefill = logits(model, TOKENS[:1, :1]), logits(model)
    saved = compress.save(model, tmp_path / "packed")
    manifest = json.loads((saved / "compression.json").read_text())
    embedding_name = [name for name, spec in manifest["modules"].items() if spec["format"] == "packed_embedding"]
    assert len(embedding_name) == 1 and manifest["modules"][embedding_name[0]]["tied_to"] == "lm_head"
    from safetensors import safe_open

    with safe_open(str(saved / "model.safetensors"), "pt") as handle:
        assert not [key for key in handle.keys() if key.startswith(embedding_name[0])]  # stored once, under the head
    loaded = compress.load(saved).model
    assert torch.equal(logits(loaded, TOKENS[:1, :1]), decode) and torch.equal(logits(loaded), prefill)


def test_untied_embedding_gets_its_own_table_and_reloads(tmp_path):
    model = llama(tie=False)
    config = RTNConfig(bits=4, group_size=32, head={"bits": 4, "group_size": 32}, embedding={"bits": 4, "group_size": 64})
    planned = {name: after for name, _, after in plan_rtn(model, config)}
    model, (report,) = compress.apply(model, [config], progress=False)
    assert model.get_input_embeddings().tied_to is None and model.get_input_embeddings().group_size == 64
    assert planned["model.embed_tokens"] == sum(t.numel() * t.element_size() for t in model.get_input_embeddings().state_dict().values())
    before = logits(model)
    loaded = compress.load(compress.save(model, tmp_path / "packed")).model
    assert torch.equal(logits(loaded), before)


def test_settings_are_validated_and_tagged():
    assert RTNConfig(head=HEAD).tag() == "rtn-w4-g128-head-w8-g32"
    with pytest.raises(ValidationError):
        RTNConfig(head={"bits": 8, "groups": 32})
    with pytest.raises(UserError, match="one packed table"):
        compress.apply(llama(), [RTNConfig(head=HEAD, embedding={"bits": 4, "group_size": 32})], progress=False)
    with pytest.raises(UserError, match="tied to the input embeddings.*head"):
        compress.apply(llama(), [RTNConfig(targets=["Linear", "lm_head"])], progress=False)


def test_exports_that_cannot_hold_a_packed_embedding_refuse(tmp_path):
    from compress.export import export

    model, _ = compress.apply(llama(), [RTNConfig(bits=4, group_size=32, head=HEAD)], progress=False)
    for fmt, out in (("gguf", tmp_path / "m.gguf"), ("compressed-tensors", tmp_path / "ct")):
        with pytest.raises(UserError, match="packed embedding"):
            export(model, fmt, out)
    assert not (tmp_path / "m.gguf").exists()
