import json

import pytest
import torch
import transformers
from pydantic import ValidationError

import compress
from compress.algorithms.quantization.rtn import RTNConfig, plan_rtn
from compress.checkpoint import weight_bytes
from compress.core.context import PassContext
from compress.core.registry import get_pass
from compress.errors import UserError
from compress.formats import QuantizedLinear


def llama(dtype=torch.float32, tie=False):
    # linears dominate: 2 layers of 256/1024 against a 128-token vocabulary
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=128, hidden_size=256, intermediate_size=1024, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, tie_word_embeddings=tie,
    )
    return transformers.AutoModelForCausalLM.from_config(config, dtype=dtype).eval()


def gpt2():
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=128, n_embd=256, n_inner=1024, n_layer=2, n_head=4, n_positions=64, bos_token_id=0, eos_token_id=0)
    return transformers.AutoModelForCausalLM.from_config(config).eval()


MODELS = {"llama": llama, "gpt2": gpt2}
TOKENS = torch.randint(0, 128, (2, 12), generator=torch.Generator().manual_seed(0))


def logits(model, tokens=TOKENS):
    with torch.no_grad():
        return model(tokens).logits


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
@pytest.mark.parametrize(("bits", "max_ratio"), [(4, 0.20), (8, 0.30)])
def test_saved_file_shrinks_and_reloads_to_the_same_logits(arch, bits, max_ratio, tmp_path):
    model = MODELS[arch]()
    dense_file = compress.save(model, tmp_path / "dense") / "model.safetensors"
    model, reports = compress.apply(model, [RTNConfig(bits=bits, group_size=128)], progress=False)
    decode_before = logits(model, TOKENS[:1, :1])  # one row: the CPU kernel path
    prefill_before = logits(model)
    saved = compress.save(model, tmp_path / "rtn", manifest={"passes": [r.to_dict() for r in reports]})
    ratio = (saved / "model.safetensors").stat().st_size / dense_file.stat().st_size
    assert ratio <= max_ratio
    manifest = json.loads((saved / "compression.json").read_text())
    assert {spec["format"] for spec in manifest["modules"].values()} == {"packed_int"}
    loaded = compress.load(saved)
    assert (logits(loaded.model, TOKENS[:1, :1]) - decode_before).abs().max() <= 1e-5
    assert (logits(loaded.model) - prefill_before).abs().max() <= 1e-5
    assert loaded.info.weight_bytes == weight_bytes(model) == manifest["weight_bytes"]


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_every_linear_but_the_head_is_packed_and_close_to_the_original(arch):
    model = MODELS[arch]()
    originals = {name: module.weight.detach().clone() for name, module in model.named_modules() if type(module).__name__ in ("Linear", "Conv1D")}
    transposed = arch == "gpt2"  # Conv1D keeps (in, out)
    dense_logits = logits(model)
    report = get_pass("rtn").run(model, RTNConfig(bits=8, group_size=None), PassContext(progress=False))
    modules = dict(model.named_modules())
    assert "lm_head" not in report.modules and type(modules["lm_head"]).__name__ == "Linear"
    assert all(isinstance(m, torch.nn.Embedding) for n, m in modules.items() if "embed" in n or n.endswith(("wte", "wpe")))
    assert set(report.modules) == set(originals) - {"lm_head"}
    for name in report.modules:
        layer = modules[name]
        assert isinstance(layer, QuantizedLinear)
        original = originals[name].t() if transposed else originals[name]
        assert layer.dequantize().shape == original.shape
        assert float((layer.dequantize() - original).norm() / original.norm()) < 0.01
    assert float((logits(model) - dense_logits).norm() / dense_logits.norm()) < 0.02


def test_4_bit_error_of_the_module_on_gaussian_weights():
    model = llama()
    report = get_pass("rtn").run(model, RTNConfig(bits=4, group_size=128), PassContext(progress=False))
    # HF initialises linears with N(0, 0.02): Gaussian weights
    assert 0 < report.details["mean_relative_error"] < 0.12
    assert max(report.details["relative_error"].values()) < 0.12


def test_bf16_model_and_report_bytes():
    model = llama(dtype=torch.bfloat16)
    planned = plan_rtn(model, RTNConfig(bits=4, group_size=64))
    model, (report,) = compress.apply(model, [RTNConfig(bits=4, group_size=64)], progress=False)
    assert report.bytes_before == sum(row[1] for row in planned)
    assert report.bytes_after == sum(row[2] for row in planned)
    assert report.bytes_after < report.bytes_before / 3  # 0.5625 bytes/weight against 2
    out = logits(model)
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()
    assert report.details["bits"] == 4 and report.details["ragged_last_group"] == []


def test_group_size_that_does_not_divide_leaves_a_short_last_group():
    model = torch.nn.Sequential(torch.nn.Linear(200, 32))
    report = get_pass("rtn").run(model, RTNConfig(bits=4, group_size=64), PassContext(progress=False))
    assert report.details["ragged_last_group"] == ["0"]
    assert model[0].scales.shape == (32, 4)
    assert model[0](torch.randn(3, 200)).shape == (3, 32)


def test_a_tied_head_cannot_be_quantized():
    model = llama(tie=True)
    with pytest.raises(UserError, match="tied to the input embeddings"):
        get_pass("rtn").run(model, RTNConfig(targets=["Linear", "lm_head"]), PassContext(progress=False))


def test_config_validation_and_tags():
    assert RTNConfig().tag() == "rtn-w4-g128"
    assert RTNConfig(bits=8, group_size=None).tag() == "rtn-w8-pc"
    assert RTNConfig(bits=3, group_size=64, symmetric=True).tag() == "rtn-w3-g64-sym"
    for bad in ({"bits": 1}, {"bits": 9}, {"group_size": 4}, {"bitz": 4}):
        with pytest.raises(ValidationError):
            RTNConfig(**bad)
    assert all(field.description for field in RTNConfig.model_fields.values())


@pytest.mark.parametrize("pattern", ["2:4", None])
def test_prune_then_quantize_stores_sparse_k_bit_and_reloads(tmp_path, pattern):
    """The README's library example: magnitude (stored sparse) then rtn composes into sparse + 4-bit."""
    from compress.algorithms.pruning.magnitude import MagnitudeConfig
    from compress.formats import SparseLinear

    model = llama()
    dense_bytes = weight_bytes(model)
    prune = MagnitudeConfig(pattern=pattern) if pattern else MagnitudeConfig(sparsity=0.5)
    model, (_, quantize) = compress.apply(model, [prune, RTNConfig(bits=4, group_size=32)], progress=False)
    layer = model.model.layers[0].mlp.up_proj
    assert isinstance(layer, SparseLinear) and layer.bits == 4 and len(quantize.modules) == 14
    assert (layer.dequantize() == 0).float().mean() >= 0.5  # pruned zeros stay exact zeros on the grid
    assert quantize.bytes_after < 0.25 * quantize.bytes_before
    tokens = torch.randint(0, 100, (1, 12))
    compress.save(model, tmp_path / "out")
    reloaded, _, _ = compress.load(tmp_path / "out")
    with torch.no_grad():
        torch.testing.assert_close(reloaded(tokens).logits, model(tokens).logits, rtol=0, atol=0)
    assert weight_bytes(reloaded) < dense_bytes
