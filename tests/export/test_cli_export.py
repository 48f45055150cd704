"""`scalecompress export`: refusals are one line with exit 2; a recipe's `export:` section."""

from __future__ import annotations

import pytest
import transformers

import compress
from compress.cli import main
from compress.passes import RTNConfig
from compress.recipe import Recipe
from tests.conftest import tiny_gpt2, tiny_llama

pytest.importorskip("compressed_tensors")


@pytest.mark.parametrize(
    ("build", "fields", "reason"),
    [
        (tiny_llama, {"bits": 3, "group_size": 32}, "3-bit codes"),
        (tiny_llama, {"bits": 4, "group_size": 48}, "ragged last group"),
        (tiny_gpt2, {"bits": 4, "group_size": 32}, "Conv1D"),
    ],
)
def test_compressed_tensors_refuses_in_one_line(tmp_path, capsys, build, fields, reason):
    model, _ = compress.apply(build(), [RTNConfig(**fields)], progress=False)
    source = compress.save(model, tmp_path / "model")
    code = main(["export", str(source), "--format", "compressed-tensors", "--out", str(tmp_path / "ct")])
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(error) == 1 and reason in error[0] and "--format gguf" in error[0] and "--format hf" in error[0]
    assert not (tmp_path / "ct").exists()


def test_export_json_reports_sizes(tmp_path, capsys):
    import json

    model, _ = compress.apply(tiny_llama(), [RTNConfig(bits=4, group_size=32)], progress=False)
    source = compress.save(model, tmp_path / "model")
    assert main(["export", str(source), "--format", "gguf", "--out", str(tmp_path / "m.gguf"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["format"] == "gguf" and summary["bytes"] == (tmp_path / "m.gguf").stat().st_size
    assert summary["details"]["reencoded_exactly"] and not summary["details"]["requantized"]
    assert main(["export", str(source), "--format", "gguf", "--out", str(tmp_path / "m.bin")]) == 2


def test_recipe_export_section(tmp_path):
    from compress.export.recipe_section import export_saved

    recipe = Recipe.from_yaml_text("version: 1\npasses:\n  - pass: rtn\n    bits: 4\n    group_size: 32\nexport:\n  format: gguf\n  gguf_type: Q4_1\n")
    assert recipe.export.format == "gguf" and Recipe.from_yaml_text(recipe.to_yaml()) == recipe
    with pytest.raises(Exception, match="format"):
        Recipe.from_yaml_text("version: 1\nexport:\n  format: onnx\n")
    model, _ = compress.apply(tiny_llama(), recipe.variants[0].passes, progress=False)
    saved = compress.save(model, tmp_path / "model")
    summary = export_saved(recipe.export, saved, tmp_path)
    assert summary["path"] == str(tmp_path / "model.gguf") and (tmp_path / "model.gguf").is_file()


def test_hf_export_of_gpt2_keeps_conv1d_layout(tmp_path):
    model, _ = compress.apply(tiny_gpt2(), [RTNConfig(bits=4, group_size=32)], progress=False)
    compress.export(model, "hf", tmp_path / "hf")
    again = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf")
    weight = again.transformer.h[0].attn.c_attn.weight
    assert tuple(weight.shape) == (64, 192)
    assert (weight.t() - model.transformer.h[0].attn.c_attn.dequantize()).abs().max() == 0


def test_bench_of_a_gguf_file_says_what_it_needs(tmp_path, capsys):
    pytest.importorskip("gguf")
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("llama-cpp-python is installed: the note is not shown")
    compress.export(tiny_llama(), "gguf", tmp_path / "m.gguf")
    assert main(["bench", str(tmp_path / "m.gguf")]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "llama-cpp-python" in error[0]
