"""The block-wise engine sees exactly what the model computes, for every architecture."""

from typing import ClassVar

import pytest
import torch
import transformers

import compress
from compress.core import registry
from compress.core.config import PassConfig
from compress.core.context import DataConfig
from compress.engines.sequential import find_blocks


def build(arch):
    torch.manual_seed(0)
    common = {"vocab_size": 96, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4}
    configs = {
        "llama": lambda: transformers.LlamaConfig(**common, intermediate_size=64, num_key_value_heads=2),
        "qwen2": lambda: transformers.Qwen2Config(**common, intermediate_size=64, num_key_value_heads=2),
        "gpt2": lambda: transformers.GPT2Config(vocab_size=96, n_embd=32, n_layer=2, n_head=4),
        "opt": lambda: transformers.OPTConfig(vocab_size=96, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, ffn_dim=64, word_embed_proj_dim=32),
        "gpt_neox": lambda: transformers.GPTNeoXConfig(**common, intermediate_size=64),
        "bert": lambda: transformers.BertConfig(**common, intermediate_size=64),
    }
    config = configs[arch]()
    model_class = transformers.AutoModelForMaskedLM if arch == "bert" else transformers.AutoModelForCausalLM
    return model_class.from_config(config).eval()


class RecordConfig(PassConfig):
    pass_name: ClassVar[str] = "record_inputs"


class ZeroConfig(PassConfig):
    pass_name: ClassVar[str] = "zero_weights"


class Record:
    """Keeps every module's observed inputs; changes nothing."""

    seen: ClassVar[dict] = {}

    def __init__(self, config, context):
        Record.seen = {}

    def observe(self, name, module, inputs, stats):
        assert inputs.dtype == torch.float32 and inputs.dim() == 2
        Record.seen.setdefault(name, []).append(inputs.clone())
        stats.hessian(name, inputs.shape[1]).add(inputs)

    def compress(self, name, module, stats):
        assert stats.hessian(name).count == sum(x.shape[0] for x in Record.seen[name])


class Zero:
    """Scales the first block's MLP output weights by 0.5, so that what follows changes."""

    def __init__(self, config, context):
        pass

    def observe(self, name, module, inputs, stats):
        pass

    def compress(self, name, module, stats):
        module.weight.mul_(0.5)


@pytest.fixture(autouse=True)
def toy_passes(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    registry.register_pass(RecordConfig, engine="sequential", needs={"calibration"}, description="test")(Record)
    registry.register_pass(ZeroConfig, engine="sequential", needs={"calibration"}, description="test")(Zero)


def reference_inputs(model, tokens):
    """Inputs of every linear layer in a plain forward of the whole model."""
    seen, handles = {}, []
    for name, module in model.named_modules():
        if type(module).__name__ in ("Linear", "Conv1D") and name.startswith(find_blocks(model)[0] + "."):
            handles.append(module.register_forward_hook(lambda m, a, o, name=name: seen.setdefault(name, []).append(a[0].reshape(-1, a[0].shape[-1]).float())))
    with torch.no_grad():
        for chunk in tokens.split(2):
            model(input_ids=chunk)
    for handle in handles:
        handle.remove()
    return seen


TOKENS = torch.randint(0, 96, (5, 12), generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt2", "opt", "gpt_neox", "bert"])
def test_captured_block_inputs_equal_the_models_own(arch):
    model = build(arch)
    expected = reference_inputs(model, TOKENS)
    _, (report,) = compress.apply(model, [RecordConfig()], TOKENS, data_config=DataConfig(batch_size=2), progress=False)
    assert set(Record.seen) == set(expected) and len(report.modules) == len(expected)
    for name, batches in expected.items():
        assert len(Record.seen[name]) == 3  # 5 samples in batches of 2
        torch.testing.assert_close(torch.cat(Record.seen[name]), torch.cat(batches), atol=1e-5, rtol=1e-5)
    walk = report.details["walk"]
    assert walk["blocks"] == 2 and walk["peak_rss_bytes"] > 0 and walk["calibration_tokens"] == 60


@pytest.mark.parametrize("propagate", ["compressed", "dense"])
def test_next_block_sees_the_compressed_block_unless_asked_otherwise(propagate):
    model = build("llama")
    dense = reference_inputs(model, TOKENS)
    zero = ZeroConfig(targets=["layers.0.mlp.down_proj"])
    compress.apply(model, [zero, RecordConfig()], TOKENS, data_config=DataConfig(batch_size=2, propagate=propagate), progress=False)
    compressed = reference_inputs(model, TOKENS)  # the model as it is now
    name = "model.layers.1.self_attn.q_proj"
    target = compressed if propagate == "compressed" else dense
    torch.testing.assert_close(torch.cat(Record.seen[name]), torch.cat(target[name]), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(torch.cat(compressed[name]), torch.cat(dense[name]))


def test_consecutive_sequential_passes_share_one_walk():
    model = build("gpt2")
    calls = []
    model.transformer.wte.register_forward_hook(lambda *a: calls.append(1))
    _, reports = compress.apply(model, [ZeroConfig(), RecordConfig()], TOKENS, data_config=DataConfig(batch_size=5), progress=False)
    assert len(calls) == 1  # one capture for both passes
    assert reports[0].details["walk"]["passes"] == ["zero_weights", "record_inputs"]
    assert all(r.seconds > 0 for r in reports)


def test_modules_outside_the_blocks_are_refused_by_name():
    model = build("llama")
    with pytest.raises(compress.errors.UserError, match="lm_head lie outside: remove them from targets"):
        compress.apply(model, [RecordConfig(targets=["Linear", "lm_head"])], TOKENS, progress=False)


def test_a_disk_offloaded_model_is_onloaded_block_by_block_and_gives_the_same_result(tmp_path):
    """A model larger than memory: accelerate keeps its blocks on disk; the engine onloads one at a time."""
    from compress.passes import GPTQConfig

    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=96, hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False)
    transformers.AutoModelForCausalLM.from_config(config).save_pretrained(tmp_path / "dense")
    in_memory = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "dense").eval()
    device_map = {"model.embed_tokens": "cpu", "model.rotary_emb": "cpu", "model.norm": "cpu", "lm_head": "cpu", **{f"model.layers.{i}": "disk" for i in range(3)}}
    offloaded = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "dense", device_map=device_map, offload_folder=str(tmp_path / "offload")).eval()
    assert offloaded.model.layers[1].mlp.up_proj.weight.device.type == "meta"  # really not in memory
    results = []
    for model in (in_memory, offloaded):
        _, (report,) = compress.apply(model, [GPTQConfig(bits=4, group_size=32)], TOKENS, data_config=DataConfig(batch_size=2), progress=False)
        with torch.no_grad():
            results.append(model(TOKENS).logits)
        assert len(report.modules) == 21
    torch.testing.assert_close(results[0], results[1], atol=1e-5, rtol=1e-5)
