"""The bnb pass: transformers reloads its folders alone, with the same logits; bytes are the real ones."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest
import torch

import compress
from compress.errors import UserError
from compress.formats.dense import module_bytes
from compress.passes import BnbConfig, RTNConfig
from tests.conftest import tiny_gpt2, tiny_llama

pytest.importorskip("bitsandbytes")

RELOAD = """
import sys, torch, transformers
model = transformers.AutoModelForCausalLM.from_pretrained(sys.argv[1])
assert not any(name == "compress" or name.startswith("compress.") for name in sys.modules), "scalecompress was imported"
with torch.no_grad():
    logits = model(torch.load(sys.argv[2])).logits
torch.save(logits, sys.argv[3])
"""


def _saved(tmp_path, kind):
    model, [report] = compress.apply(tiny_llama(), [BnbConfig(kind=kind)], progress=False)
    tokens = torch.randint(0, 128, (2, 12), generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        expected = model(tokens).logits
    compress.save(model, tmp_path / "out")
    return report, tokens, expected


def test_int8_reloads_with_transformers_from_pretrained(tmp_path):
    import transformers

    report, tokens, expected = _saved(tmp_path, "int8")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        reloaded = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "out")
        torch.testing.assert_close(reloaded(tokens).logits, expected, rtol=0, atol=0)
    assert report.bytes_after < report.bytes_before / 3


@pytest.mark.slow
def test_nf4_reloads_in_a_process_without_scalecompress(tmp_path):
    report, tokens, expected = _saved(tmp_path, "nf4")
    torch.save(tokens, tmp_path / "tokens.pt")
    subprocess.run([sys.executable, "-c", RELOAD, str(tmp_path / "out"), str(tmp_path / "tokens.pt"), str(tmp_path / "logits.pt")], check=True, capture_output=True)
    torch.testing.assert_close(torch.load(tmp_path / "logits.pt"), expected, rtol=0, atol=0)
    assert report.bytes_after < report.bytes_before / 5  # tiny layers: ~1.3 kB of quant tables each; the 0.3x bound is in tests/formats/test_bnb.py


@pytest.mark.parametrize("kind", ["nf4", "fp4", "int8"])
def test_plan_predicts_the_real_bytes(kind):
    from compress.algorithms.quantization.bnb import plan_bnb

    model = tiny_gpt2()  # Conv1D layers, biases
    planned = {name: after for name, _, after in plan_bnb(model, BnbConfig(kind=kind))}
    model, _ = compress.apply(model, [BnbConfig(kind=kind)], progress=False)
    assert planned and all(abs(module_bytes(model.get_submodule(name)) - after) <= 16 for name, after in planned.items())


def test_bnb_refuses_a_model_already_quantized():
    model, _ = compress.apply(tiny_llama(), [RTNConfig(bits=4, group_size=32)], progress=False)
    with pytest.raises(UserError, match="only quantization pass"):
        compress.apply(model, [BnbConfig()], progress=False)


@pytest.mark.parametrize("build", [tiny_llama, tiny_gpt2])
def test_bnb_refuses_a_tied_head_like_rtn(build):
    model = build()  # tied embeddings: quantizing lm_head would store the embedding twice
    assert model.lm_head.weight is model.get_input_embeddings().weight
    for config in (RTNConfig(targets=["Linear", "lm_head"]), BnbConfig(targets=["Linear", "lm_head"])):
        with pytest.raises(UserError, match="tied to the input embeddings"):
            compress.apply(build(), [config], progress=False)


def test_layers_already_in_bitsandbytes_are_not_selected_again():
    from compress.core.targets import select_linears

    model, _ = compress.apply(tiny_llama(), [BnbConfig(kind="int8", targets=["mlp"])], progress=False)
    names = [name for name, _ in select_linears(model, ["Linear"])]
    assert names and not any(".mlp." in name for name in names)  # the bnb layers are packed, not dense linears
    before = {k: v.clone() for k, v in model.state_dict().items() if ".mlp." in k}
    model, [report] = compress.apply(model, [RTNConfig(bits=4, group_size=32, targets=["self_attn"])], progress=False)
    assert all(".mlp." not in name for name in report.modules)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
    with pytest.raises(UserError, match="no module|none of them|already holds"):
        compress.apply(model, [RTNConfig(bits=4, group_size=32, targets=["mlp"])], progress=False)
