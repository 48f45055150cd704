"""Defects 7, 10, 13 (non-UTF-8) and 15: recipes are small, plain, unambiguous data."""

from __future__ import annotations

import time

import pytest

from compress.errors import RecipeError
from compress.recipe import Recipe
from tests.reliability.conftest import cli


def alias_bomb(depth: int, width: int = 9) -> str:
    lines = ["a0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    for level in range(1, depth + 1):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * width) + "]")
    return "version: 1\n" + "\n".join(lines) + "\npasses: [{pass: rtn}]\n"


@pytest.mark.parametrize("depth", [7, 9])
def test_an_alias_bomb_is_refused_fast_in_one_short_line(depth, tmp_path, capsys):
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb(depth))
    assert path.stat().st_size < 1000
    started = time.perf_counter()
    code, _, err = cli(capsys, "validate", path)
    assert time.perf_counter() - started < 2
    assert code == 2 and err.count("\n") == 1 and len(err) < 300 and "expands to more than" in err


def test_a_huge_bad_value_is_echoed_as_a_short_preview(tmp_path, capsys):
    path = tmp_path / "big.yaml"
    path.write_text("version: 1\npasses:\n  - pass: rtn\n    bits: [" + ", ".join(["123456789"] * 20000) + "]\n")
    code, _, err = cli(capsys, "validate", path)
    assert code == 2 and err.count("\n") == 1 and len(err) < 600 and "bits" in err


def test_a_recipe_larger_than_the_cap_is_refused(tmp_path, capsys):
    path = tmp_path / "huge.yaml"
    path.write_text("version: 1\n# " + "x" * (1 << 20) + "\npasses: [{pass: rtn}]\n")
    code, _, err = cli(capsys, "validate", path)
    assert code == 2 and "too large" in err


def test_duplicate_keys_are_an_error_naming_the_key_and_both_lines():
    with pytest.raises(RecipeError, match=r"r.yaml: line 4: key 'bits' appears twice \(lines 3 and 4\)"):
        Recipe.from_yaml_text("version: 1\npasses:\n  - {pass: rtn, bits: 4,\n     bits: 8}\n", "r.yaml")
    with pytest.raises(RecipeError, match="key 'passes' appears twice"):
        Recipe.from_yaml_text("version: 1\npasses: [{pass: rtn}]\npasses: [{pass: magnitude}]\n", "r.yaml")


def test_a_yaml_merge_still_overrides_keys():
    recipe = Recipe.from_yaml_text("version: 1\nvariants:\n  - passes: [&p {pass: rtn, bits: 4}]\n  - passes: [{<<: *p, bits: 8}]\n")
    assert [v.passes[0].bits for v in recipe.variants] == [4, 8]


def test_a_non_utf8_recipe_is_bad_input(tmp_path, capsys):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("version: 1\n# café\npasses: [{pass: rtn}]\n".encode("latin-1"))
    code, _, err = cli(capsys, "validate", path)
    assert code == 2 and err.count("\n") == 1 and "line 2: not UTF-8" in err


def test_a_misspelt_builtin_task_gets_a_did_you_mean(tmp_path, capsys):
    path = tmp_path / "r.yaml"
    path.write_text("version: 1\npasses: [{pass: rtn}]\nbench: {tasks: [perplexty, latency]}\n")
    code, _, err = cli(capsys, "validate", path)
    assert code == 2 and "did you mean 'perplexity'" in err
    path.write_text("version: 1\npasses: [{pass: rtn}]\nbench: {tasks: [perplexity, hellaswag]}\n")
    assert cli(capsys, "validate", path)[0] == 0  # an lm-eval task name is still fine


def test_python_tags_never_construct_objects(tmp_path, capsys):
    path = tmp_path / "evil.yaml"
    marker = tmp_path / "ran"
    path.write_text(f"version: 1\nmodel: !!python/object/apply:os.system ['touch {marker}']\npasses: [{{pass: rtn}}]\n")
    code, _, err = cli(capsys, "validate", path)
    assert code == 2 and "not valid YAML" in err and not marker.exists()
