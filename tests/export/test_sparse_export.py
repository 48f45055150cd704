"""Pruned layers exported in compressed-tensors' own sparse layouts (`sparse-bitmask`,
`sparse-24-bitmask`): a copy of our tensors, read back by the compressed-tensors package itself
(0.14.0.1, the last release with the sparse compressors) in a fresh process — weights equal ours
bit for bit, logits equal — refused by transformers 5.x (which reads no sparse layout) instead
of loading random weights, and no bigger than our checkpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import compress
from compress.cli import main
from compress.export import export
from compress.export.common import dense_copy, folder_bytes
from compress.formats.sparse_linear import SparseLinear
from compress.passes import MagnitudeConfig, RTNConfig
from tests.conftest import tiny_llama
from tests.export.helpers import read_back

pytest.importorskip("compressed_tensors")

ROOT = Path(__file__).resolve().parents[2]
LEGACY_CT = Path(os.environ.get("SCALECOMPRESS_CT_LEGACY", ROOT / "benchmarks" / ".peers" / "compressed-tensors-0.14"))
LEGACY_READER = Path(__file__).with_name("reader_ct_legacy.py")
INSTALL = f'python -m pip install --no-deps --target {LEGACY_CT} "compressed-tensors==0.14.0.1"'
CASES = {
    "unstructured": [MagnitudeConfig(sparsity=0.5)],
    "two_four": [MagnitudeConfig(pattern="2:4")],
    "mixed_layouts": [MagnitudeConfig(sparsity=0.5, targets=["mlp"]), MagnitudeConfig(pattern="2:4", targets=["self_attn"])],
}


def sparse_reference(model, path: Path) -> Path:
    ids = torch.randint(0, model.config.vocab_size, (2, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = dense_copy(model)(ids).logits.float()
    weights = {name: m.dequantize().float() for name, m in model.named_modules() if isinstance(m, SparseLinear)}
    torch.save({"ids": ids, "logits": logits, "weights": weights}, path)
    return path


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sparse-export")
    cases = {}
    for name, passes in CASES.items():
        model, _ = compress.apply(tiny_llama(), passes, progress=False)
        saved = compress.save(model, tmp / f"{name}-native")
        summary = export(saved, "compressed-tensors", tmp / f"{name}-ct")
        cases[name] = {"model": model, "saved": saved, "summary": summary, "reference": sparse_reference(model, tmp / f"{name}.pt")}
    return cases


@pytest.mark.parametrize("name", list(CASES))
def test_sparse_layout_is_a_copy_with_the_package_config(exports, name):
    from compressed_tensors.config import SparsityCompressionConfig
    from safetensors.torch import load_file

    case = exports[name]
    folder = Path(case["summary"]["path"])
    document = json.loads((folder / "config.json").read_text())["quantization_config"]
    sparsity = SparsityCompressionConfig.load_from_registry(document["sparsity_config"]["format"], **document["sparsity_config"])
    expected = "sparse-24-bitmask" if name == "two_four" else "sparse-bitmask"
    assert sparsity.format == expected == case["summary"]["details"]["sparse_format"]
    assert "quant_method" not in document  # transformers must refuse (see compress/export/ct_sparse.py)
    state = load_file(folder / "model.safetensors")
    for layer_name, layer in case["model"].named_modules():
        if isinstance(layer, SparseLinear):
            assert f"{layer_name}.weight" not in state
            assert torch.equal(state[f"{layer_name}.bitmask"], layer.bitmask)
            assert torch.equal(state[f"{layer_name}.compressed"].reshape(-1), layer.compressed.reshape(-1))
    if name == "mixed_layouts":
        assert case["summary"]["details"]["sparse_converted_24_to_bitmask"]


@pytest.mark.parametrize("name", list(CASES))
def test_export_is_no_bigger_than_our_checkpoint(exports, name):
    case = exports[name]
    assert case["summary"]["bytes"] <= 1.05 * folder_bytes(case["saved"])


@pytest.mark.skipif(not (LEGACY_CT / "compressed_tensors").is_dir(), reason=f"compressed-tensors 0.14.0.1 (the sparse reader) not installed: {INSTALL}")
def test_compressed_tensors_package_decompresses_our_weights_exactly(exports, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(LEGACY_CT), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    arguments = [str(p) for case in exports.values() for p in (case["summary"]["path"], case["reference"])]
    done = subprocess.run([sys.executable, str(LEGACY_READER), *arguments], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(results) == len(CASES), f"legacy reader failed (rc {done.returncode}): {done.stderr[-3000:]}"
    for result in results:
        assert result["package"] == "0.14.0.1" and result["compress_imported"] is False
        assert result["weights_equal"], result
        assert result["relative"] <= 1e-6, result


def test_transformers_refuses_instead_of_random_weights(exports, tmp_path):
    case = exports["unstructured"]
    (result,) = read_back([(Path(case["summary"]["path"]), case["reference"])], cwd=tmp_path)
    assert "quant_method" in result.get("error", ""), result


def sparse_4bit():
    """Pruned with 4-bit codes (what SparseGPT's joint quantization stores): zeros in place, RTN, then sparse storage."""
    from compress.formats.quantized_linear import QuantizedLinear

    model, _ = compress.apply(tiny_llama(), [MagnitudeConfig(pattern="2:4", storage="dense"), RTNConfig(bits=4, group_size=32)], progress=False)
    for name, module in [(n, m) for n, m in model.named_modules() if isinstance(m, QuantizedLinear)]:
        model.set_submodule(name, SparseLinear.from_quantized(module))
    return model


def pruned_and_quantized():
    passes = [MagnitudeConfig(sparsity=0.5, targets=["mlp"]), RTNConfig(bits=4, group_size=32, targets=["self_attn"])]
    return compress.apply(tiny_llama(), passes, progress=False)[0]


@pytest.mark.parametrize(("build", "reason"), [(sparse_4bit, "4-bit codes (sparse + quantized)"), (pruned_and_quantized, "mixes pruned layers")])
def test_sparse_combinations_the_format_cannot_hold_are_refused_in_one_line(tmp_path, capsys, build, reason):
    source = compress.save(build(), tmp_path / "model")
    code = main(["export", str(source), "--format", "compressed-tensors", "--out", str(tmp_path / "ct")])
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(error) == 1 and reason in error[0] and "--format gguf" in error[0] and "--format hf" in error[0]
    assert not (tmp_path / "ct").exists()
