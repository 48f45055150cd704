"""Every export is loaded back by the consumer's own reader in a fresh process (no `compress`
import) and its logits match our model dequantized in fp32. One reader process serves the whole
module: the fixture writes every artifact first."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import transformers

import compress
from compress.export import export
from compress.passes import RTNConfig
from tests.conftest import tiny_llama
from tests.export.helpers import read_back, reference

pytest.importorskip("compressed_tensors")
gguf = pytest.importorskip("gguf")

TOLERANCE = 1e-3  # max |logit difference| relative to the logit scale


def quantized(model, **fields):
    compress.apply(model, [RTNConfig(**fields)], progress=False)
    return model


def tiny_gpt2_1024():
    # transformers' GGUF reader takes GPT-2's position count from n_ctx, which GPT2Config no
    # longer reads: only the default 1024 positions round-trip through it.
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=128, n_embd=64, n_layer=2, n_head=4, bos_token_id=0, eos_token_id=0)
    return transformers.AutoModelForCausalLM.from_config(config).eval()


@pytest.fixture(scope="module")
def round_trips(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    cases: dict[str, dict] = {}

    def add(name, model, artifact, summary=None, ref_model=None):
        cases[name] = {"artifact": artifact, "reference": reference(ref_model or model, tmp / f"{name}.pt"), "summary": summary, "model": model}

    # compressed-tensors: pocket-like widths at g32 (asymmetric), a 256-wide LLaMA at g128 (symmetric), 8-bit per channel
    llama = quantized(tiny_llama(tie=False), bits=4, group_size=32)
    saved = compress.save(llama, tmp / "llama-w4g32-native")
    add("ct_w4g32", llama, tmp / "ct-w4g32", export(saved, "compressed-tensors", tmp / "ct-w4g32"))
    cases["ct_w4g32"]["native"] = saved
    wide = quantized(tiny_llama(hidden=256, intermediate=512, layers=1), bits=4, group_size=128, symmetric=True)
    wide_saved = compress.save(wide, tmp / "llama256-w4g128-native")
    add("ct_w4g128", wide, tmp / "ct-w4g128", export(wide_saved, "compressed-tensors", tmp / "ct-w4g128"))
    cases["ct_w4g128"]["native"] = wide_saved
    w8 = quantized(tiny_llama(), bits=8, group_size=None)
    add("ct_w8pc", w8, tmp / "ct-w8pc", export(w8, "compressed-tensors", tmp / "ct-w8pc"))

    # GGUF: asymmetric 4-bit g32 re-encoded as Q4_1; GPT-2 (Conv1D) too
    add("gguf_q41", llama, tmp / "q41" / "model.gguf", export(llama, "gguf", tmp / "q41" / "model.gguf"))
    gpt2 = quantized(tiny_gpt2_1024(), bits=4, group_size=32)
    add("gguf_gpt2", gpt2, tmp / "gpt2" / "model.gguf", export(gpt2, "gguf", tmp / "gpt2" / "model.gguf"))
    # GGUF F16 / Q8_0 of a dense model: reference = our weights through the same rounding
    dense = tiny_llama(tie=False)
    for qtype in ("F16", "Q8_0"):
        path = tmp / qtype / "model.gguf"
        add(f"gguf_{qtype}", dense, path, export(dense, "gguf", path, gguf_type=qtype), ref_model=rounded(dense, qtype))
    # plain transformers (dense) of a quantized model
    add("hf_w4g32", llama, tmp / "hf-w4g32", export(llama, "hf", tmp / "hf-w4g32"))
    results = read_back([(c["artifact"], c["reference"]) for c in cases.values()], cwd=tmp)
    for case, result in zip(cases.values(), results):
        case["result"] = result
    return cases


def rounded(model, qtype: str):
    """A copy of the dense model whose matrices went through `qtype` and back (gguf's own code)."""
    import copy

    clone = copy.deepcopy(model)
    with torch.no_grad():
        for _, parameter in clone.named_parameters():
            if parameter.dim() == 2:
                if qtype == "F16" or parameter.shape[1] % 32:
                    parameter.copy_(parameter.half().float())
                else:
                    kind = gguf.GGMLQuantizationType[qtype]
                    restored = gguf.quants.dequantize(gguf.quants.quantize(parameter.numpy(), kind), kind)
                    parameter.copy_(torch.from_numpy(np.asarray(restored, dtype=np.float32)).reshape(parameter.shape))
    return clone


@pytest.mark.parametrize("name", ["ct_w4g32", "ct_w4g128", "ct_w8pc", "gguf_q41", "gguf_gpt2", "gguf_F16", "gguf_Q8_0", "hf_w4g32"])
def test_reader_reproduces_our_logits(round_trips, name):
    result = round_trips[name]["result"]
    assert "error" not in result, result
    assert result["relative"] <= TOLERANCE, result


@pytest.mark.parametrize("name", ["ct_w4g32", "ct_w4g128"])
def test_compressed_tensors_is_no_bigger_than_our_checkpoint(round_trips, name):
    case = round_trips[name]
    ours = (case["native"] / "model.safetensors").stat().st_size
    exported = (case["artifact"] / "model.safetensors").stat().st_size
    assert exported <= 1.05 * ours, (exported, ours)
    config = json.loads((case["artifact"] / "config.json").read_text())["quantization_config"]
    assert config["quant_method"] == "compressed-tensors" and config["format"] == "pack-quantized"
    weights = next(iter(config["config_groups"].values()))["weights"]
    assert weights["num_bits"] == 4 and weights["strategy"] == "group"


def test_q4_1_holds_our_codes_within_reported_fp16_rounding(round_trips):
    case = round_trips["gguf_q41"]
    details = case["summary"]["details"]
    model = case["model"]
    reader = gguf.GGUFReader(str(case["artifact"]))
    tensors = {t.name: t for t in reader.tensors}
    layer = model.model.layers[0]
    for gguf_name, module in (("blk.0.ffn_down.weight", layer.mlp.down_proj), ("blk.0.attn_v.weight", layer.self_attn.v_proj)):
        tensor = tensors[gguf_name]
        assert tensor.tensor_type == gguf.GGMLQuantizationType.Q4_1
        restored = torch.from_numpy(np.asarray(gguf.quants.dequantize(tensor.data, tensor.tensor_type), dtype=np.float32))
        difference = float((restored.reshape(module.out_features, module.in_features) - module.dequantize()).abs().max())
        assert difference <= details["max_reencode_weight_difference"] + 1e-9
    assert details["max_reencode_weight_difference"] > 0  # fp16 rounding of m = -zero * scale, reported
    assert not details["requantized"]


def test_gguf_q8_reports_its_requantization_error(round_trips):
    details = round_trips["gguf_Q8_0"]["summary"]["details"]
    assert set(details["requantized"]) >= {"blk.0.attn_q.weight", "token_embd.weight"}
    assert 0 < details["max_requantization_relative_error"] < 0.01
