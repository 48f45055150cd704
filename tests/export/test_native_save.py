"""No silent random weights: `AutoModelForCausalLM.from_pretrained` on what `compress.save` (or
`save_pretrained` on a compressed model) wrote reproduces our logits or raises."""

from __future__ import annotations

import json

import pytest
import torch

import compress
from compress.formats.quantized_linear import QuantizedLinear
from compress.passes import MagnitudeConfig, RTNConfig
from tests.conftest import tiny_llama
from tests.export.helpers import read_back, reference

pytest.importorskip("compressed_tensors")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("native")
    cases = {}

    def add(name, model, save_pretrained=False):
        folder = tmp / name
        if save_pretrained:
            model.save_pretrained(folder)
        else:
            compress.save(model, folder)
        cases[name] = {"folder": folder, "reference": reference(model, tmp / f"{name}.pt"), "model": model}

    add("rtn4_g32", compress.apply(tiny_llama(tie=False), [RTNConfig(bits=4, group_size=32)], progress=False)[0])
    add("rtn3_g32", compress.apply(tiny_llama(), [RTNConfig(bits=3, group_size=32)], progress=False)[0])
    add("rtn4_ragged", compress.apply(tiny_llama(), [RTNConfig(bits=4, group_size=48)], progress=False)[0])
    add("pruned", compress.apply(tiny_llama(), [MagnitudeConfig(sparsity=0.5, storage="dense")], progress=False)[0])  # zeros in place: plain transformers reads it
    add("pruned_sparse", compress.apply(tiny_llama(), [MagnitudeConfig(sparsity=0.5)], progress=False)[0])  # values + bitmask: refused
    add("rtn4_save_pretrained", compress.apply(tiny_llama(), [RTNConfig(bits=4, group_size=32)], progress=False)[0], save_pretrained=True)
    results = read_back([(c["folder"], c["reference"]) for c in cases.values()], cwd=tmp)
    for case, result in zip(cases.values(), results):
        case["result"] = result
    return cases


@pytest.mark.parametrize("name", ["rtn4_g32"])
def test_plain_transformers_reproduces_what_save_wrote(folders, name):
    result = folders[name]["result"]
    assert "error" not in result, result
    assert result["relative"] <= 1e-3, result


# magnitude pruning now stores SparseLinear (sparse_bitmask), which this compressed-tensors
# release no longer reads: the save is refused by transformers (export --format hf is the dense form).
@pytest.mark.parametrize("name", ["rtn3_g32", "rtn4_ragged", "rtn4_save_pretrained", "pruned_sparse"])
def test_plain_transformers_refuses_what_it_cannot_read(folders, name):
    result = folders[name]["result"]
    assert "error" in result, f"{name} loaded without error: {result}"
    assert "scalecompress" in result["error"]


def test_native_save_is_compressed_tensors_and_reloads_exactly(folders):
    case = folders["rtn4_g32"]
    config = json.loads((case["folder"] / "config.json").read_text())["quantization_config"]
    assert config["format"] == "pack-quantized"
    assert json.loads((case["folder"] / "compression.json").read_text())["layout"] == "compressed-tensors"
    loaded, _, _ = compress.load(case["folder"])
    for name, module in case["model"].named_modules():
        if isinstance(module, QuantizedLinear):
            again = loaded.get_submodule(name)
            assert torch.equal(again.codes(), module.codes()) and torch.equal(again.scales, module.scales) and torch.equal(again.zeros, module.zeros)


def test_unexpressible_save_keeps_native_layout_and_reloads(folders):
    case = folders["rtn3_g32"]
    assert json.loads((case["folder"] / "compression.json").read_text())["layout"] == "native"
    loaded, _, _ = compress.load(case["folder"])
    ids = torch.randint(0, 128, (1, 8))
    with torch.no_grad():
        assert torch.allclose(loaded(ids).logits, case["model"](ids).logits, atol=1e-5)
