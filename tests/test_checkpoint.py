import json
import subprocess
import sys
import textwrap
import time

import pytest
import torch
import transformers

import compress
from compress.checkpoint import MANIFEST_NAME, WEIGHTS_NAME, count_params, weight_bytes
from compress.errors import ModelLoadError, UserError
from tests.conftest import tiny_gpt2, tiny_llama


def _logits(model, ids):
    with torch.no_grad():
        return model(ids).logits


@pytest.mark.parametrize(
    "make",
    [
        tiny_llama,
        tiny_gpt2,
        lambda: transformers.AutoModelForCausalLM.from_config(transformers.OPTConfig(vocab_size=128, hidden_size=32, ffn_dim=64, num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=64, word_embed_proj_dim=32)),
        lambda: transformers.AutoModelForCausalLM.from_config(transformers.GPTNeoXConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=64)),
        lambda: transformers.AutoModelForCausalLM.from_config(transformers.Qwen2Config(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1)),
    ],
    ids=["llama", "gpt2", "opt", "gpt-neox", "qwen2"],
)
def test_save_load_round_trip_causal_lms(tmp_path, make):
    model = make().eval()
    out = compress.save(model, tmp_path / "model")
    loaded, _, info = compress.load(out)
    ids = torch.randint(0, 128, (2, 12))
    assert torch.equal(_logits(model, ids), _logits(loaded, ids))
    assert info.params == sum(p.numel() for p in model.parameters())
    assert 0 < info.non_embedding_params < info.params
    assert info.weight_bytes == sum(p.numel() * 4 for p in model.parameters())
    assert (out / MANIFEST_NAME).is_file() and (out / WEIGHTS_NAME).is_file()
    # A dense checkpoint stays a plain transformers checkpoint.
    plain = transformers.AutoModelForCausalLM.from_pretrained(out)
    assert torch.equal(_logits(model, ids), _logits(plain.eval(), ids))


def test_bert_encoder_loads_as_masked_lm(tmp_path):
    config = transformers.BertConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=64)
    model = transformers.AutoModelForMaskedLM.from_config(config).eval()
    loaded, _, info = compress.load(compress.save(model, tmp_path / "bert"))
    assert type(loaded).__name__ == "BertForMaskedLM"
    assert info.architecture == "BertForMaskedLM"


def test_gpt2_non_embedding_excludes_token_and_position_embeddings(gpt2_model):
    total, non_embedding = count_params(gpt2_model)
    embeddings = gpt2_model.transformer.wte.weight.numel() + gpt2_model.transformer.wpe.weight.numel()
    assert total - non_embedding == embeddings  # lm_head is tied to wte: counted once


def test_untied_output_head_counts_as_embedding():
    model = tiny_llama(tie=False)
    total, non_embedding = count_params(model)
    assert total - non_embedding == 2 * model.model.embed_tokens.weight.numel()


def test_weight_bytes_counts_shared_tensors_once(llama_model):
    assert llama_model.lm_head.weight is llama_model.model.embed_tokens.weight
    assert weight_bytes(llama_model) == sum(p.numel() * p.element_size() for p in llama_model.parameters())


def test_manifest_carries_what_the_caller_gives(tmp_path, llama_model):
    out = compress.save(llama_model, tmp_path / "m", manifest={"source_model": "tiny", "passes": [{"pass": "x"}]})
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["source_model"] == "tiny"
    assert manifest["weight_bytes"] == weight_bytes(llama_model)
    assert manifest["weights_file_bytes"] == (out / WEIGHTS_NAME).stat().st_size
    assert "torch" in manifest["versions"]


def test_save_replaces_previous_output_and_leaves_no_debris(tmp_path, llama_model):
    out = compress.save(llama_model, tmp_path / "m", manifest={"n": 1})
    compress.save(llama_model, tmp_path / "m", manifest={"n": 2})
    assert json.loads((out / MANIFEST_NAME).read_text())["n"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_pickle_weights_are_refused(tmp_path, llama_model):
    llama_model.config.save_pretrained(tmp_path)
    torch.save(llama_model.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match="pickle files are never loaded"):
        compress.load(tmp_path)


def test_unreachable_hub_is_one_clear_error():
    from compress.errors import HubError  # exit 1: the id may be right; the hub is not there

    with pytest.raises(HubError, match="not a local folder") as error:
        compress.load("EleutherAI/pythia-70m")
    assert "\n" not in str(error.value)


def test_missing_local_folder_is_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        compress.load(str(tmp_path / "nope"))


@pytest.mark.slow
def test_sigkill_during_save_leaves_previous_output_or_none(tmp_path):
    script = textwrap.dedent(
        f"""
        import sys, torch
        from compress.checkpoint import save
        model = torch.nn.Sequential(*[torch.nn.Linear(1024, 1024) for _ in range(12)])
        save(model, {str(tmp_path / 'out')!r}, manifest={{"generation": 0}})
        print("saving", flush=True)
        generation = 1
        while True:
            save(model, {str(tmp_path / 'out')!r}, manifest={{"generation": generation}})
            generation += 1
        """
    )
    from safetensors.torch import load_file

    for delay in (0.0, 0.05, 0.15, 0.3):
        process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        assert process.stdout.readline().strip() == "saving"
        time.sleep(delay)
        process.kill()
        process.wait()
        out = tmp_path / "out"
        if out.exists():  # the previous (or the newest complete) output, never a partial one
            manifest = json.loads((out / MANIFEST_NAME).read_text())
            assert manifest["generation"] >= 0
            assert len(load_file(str(out / WEIGHTS_NAME))) == 24
        visible = [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")]
        assert visible in (["out"], [])
