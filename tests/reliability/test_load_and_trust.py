"""Defects 2, 3 and 14: no code runs unless the command line asks; a checkpoint loads whole or not at all."""

from __future__ import annotations

import json
import shutil

import pytest

import compress
from compress.errors import ModelLoadError, RecipeError
from compress.recipe import Recipe
from tests.reliability.conftest import cli

REMOTE_CODE = "open({marker!r}, 'w').write('ran')\nfrom transformers import PretrainedConfig\nclass EvilConfig(PretrainedConfig):\n    model_type = 'evil'\n"


@pytest.fixture
def remote_code_checkpoint(tiny_copy, tmp_path):
    marker = tmp_path / "code-ran"
    config = json.loads((tiny_copy / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig"}
    (tiny_copy / "config.json").write_text(json.dumps(config))
    (tiny_copy / "evil.py").write_text(REMOTE_CODE.format(marker=str(marker)))
    return tiny_copy, marker


def test_a_recipe_cannot_grant_code_execution(tmp_path):
    with pytest.raises(RecipeError, match="cannot be set in a recipe.*--trust-remote-code") as caught:
        Recipe.from_yaml_text("version: 1\nmodel: x\ntrust_remote_code: true\npasses: [{pass: rtn}]\n", "shared.yaml")
    assert "\n" not in str(caught.value)


def test_remote_code_never_runs_without_the_flag(remote_code_checkpoint, tmp_path, capsys):
    folder, marker = remote_code_checkpoint
    with pytest.raises(ModelLoadError, match="--trust-remote-code"):
        compress.load(folder)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"version: 1\nmodel: {folder}\npasses: [{{pass: rtn}}]\nbench: {{tasks: [perplexity], max_eval_tokens: 32, window: 16}}\n")
    for args in (["run", recipe, "--out", tmp_path / "out", "--no-progress"], ["info", folder], ["bench", folder, "--no-progress"], ["run", recipe, "--dry-run"]):
        code, _, err = cli(capsys, *args)
        assert code == 2 and err.count("\n") == 1, (args, err)
        assert "--trust-remote-code" in err and "trust_remote_code=True`" not in err
    assert not marker.exists()


def test_every_command_that_loads_a_model_has_the_flag(capsys):
    for command in (["run"], ["info"], ["bench"]):
        code, out, _ = cli(capsys, *command, "--help")
        assert code == 0 and "--trust-remote-code" in out, command


def test_packed_checkpoint_without_its_manifest_is_an_error_not_random_weights(tmp_path, capsys):
    from compress.passes import RTNConfig
    from tests.conftest import tiny_gpt2

    model, _ = compress.apply(tiny_gpt2(hidden=32, layers=1), [RTNConfig(bits=4, group_size=16)], progress=False)
    out = compress.save(model, tmp_path / "packed")
    (out / "compression.json").unlink()
    with pytest.raises(ModelLoadError, match=r"missing .*c_attn.weight.*unexpected .*compression.json is missing or was edited"):
        compress.load(out)
    code, stdout, err = cli(capsys, "info", out, "--json")
    assert code == 2 and err.count("\n") == 1 and "compression.json" in err
    assert json.loads(stdout) == {"error": err.split("error: ", 1)[1].strip(), "kind": "bad_checkpoint", "exit_code": 2}
    code, _, err = cli(capsys, "bench", out, "--no-progress")
    assert code == 2 and err.count("\n") == 1 and "compression.json" in err


def test_an_extra_or_missing_tensor_in_a_plain_checkpoint_is_named(tiny_copy):
    from safetensors.torch import load_file, save_file

    weights = load_file(str(tiny_copy / "model.safetensors"))
    name = sorted(weights)[0]
    weights["surprise.weight"] = weights.pop(name)
    save_file(weights, str(tiny_copy / "model.safetensors"), metadata={"format": "pt"})
    (tiny_copy / "compression.json").unlink()
    with pytest.raises(ModelLoadError, match=rf"missing 1 \({name}\); unexpected 1 \(surprise.weight\)"):
        compress.load(tiny_copy)


def test_unknown_model_type_is_one_line_saying_what_to_do(tiny_copy, capsys):
    config = json.loads((tiny_copy / "config.json").read_text())
    config["model_type"] = "foozle"
    (tiny_copy / "config.json").write_text(json.dumps(config))
    code, _, err = cli(capsys, "info", tiny_copy)
    assert code == 2 and err.count("\n") == 1 and "model_type 'foozle'" in err and "upgrade transformers" in err


def test_info_reads_headers_and_matches_a_full_load(tiny_checkpoint, capsys):
    code, out, err = cli(capsys, "info", tiny_checkpoint, "--json")
    assert code == 0 and "Loading" not in err
    header = json.loads(out)
    full = compress.load(tiny_checkpoint).info.to_dict()
    assert {k: header[k] for k in ("params", "non_embedding_params", "weight_bytes", "architecture")} == {k: full[k] for k in ("params", "non_embedding_params", "weight_bytes", "architecture")}


def test_a_copy_without_weights_is_refused(tiny_copy):
    shutil.move(tiny_copy / "model.safetensors", tiny_copy.parent / "moved")
    with pytest.raises(ModelLoadError, match="no safetensors"):
        compress.load(tiny_copy)
