import pytest

from compress.errors import RecipeError
from compress.recipe import Recipe

GOOD = """\
version: 1
model: gpt2
passes:
  - pass: magnitude
    pattern: "2:4"
  - pass: rtn
    bits: 4
    group_size: 64
data: {samples: 16, seq_len: 64}
out: out/x
"""


def write(tmp_path, text, name="r.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_round_trip_yaml(tmp_path):
    recipe = Recipe.from_yaml(write(tmp_path, GOOD))
    assert [p.pass_name for p in recipe.variants[0].passes] == ["magnitude", "rtn"]
    assert recipe.variants[0].passes[1].group_size == 64
    again = Recipe.from_yaml_text(recipe.to_yaml())
    assert again == recipe
    assert again.to_yaml() == recipe.to_yaml()


def test_sweep_recipe_round_trip():
    text = """\
version: 1
ladder: pocket
compress: 2
variants:
  - name: w8
    passes: [{pass: rtn, bits: 8}]
  - passes: [{pass: magnitude, sparsity: 0.5}]
"""
    recipe = Recipe.from_yaml_text(text)
    assert [v.name for v in recipe.variants][0] == "w8"
    assert Recipe.from_yaml_text(recipe.to_yaml()) == recipe


@pytest.mark.parametrize(
    "text, expected",
    [
        ("version: 1\npasses: [{pass: rnt}]\n", r"r\.yaml: passes\[0\]: unknown pass 'rnt'; did you mean 'rtn'\?"),
        ("version: 1\npasses: [{pass: rtn, bitz: 4}]\n", r"r\.yaml: passes\[0\] \(rtn\): unknown field 'bitz'; did you mean 'bits'\? \(allowed fields: .*bits"),
        ("version: 1\npasses: [{pass: rtn, bits: 9}]\n", r"passes\[0\] \(rtn\): field 'bits'=9: .*8"),
        ("version: 1\npasses: [{pass: rtn}, {pass: magnitude, sparsity: 1.5}]\n", r"passes\[1\] \(magnitude\): field 'sparsity'=1.5"),
        ("version: 2\npasses: [{pass: rtn}]\n", r"version=2 is not supported; allowed: 1"),
        ("version: 1\npases: [{pass: rtn}]\n", r"unknown key 'pases'; did you mean 'passes'\?"),
        ("version: 1\npasses: [{pass: rtn}]\ndata: {samples: 0}\n", r"data: field 'samples'=0"),
        ("version: 1\npasses: [{pass: rtn, targets: ['re:(']}]\n", r"bad regex"),
        ("version: 1\npasses: [{pass: rtn}]\nvariants: []\n", r"either 'passes'"),
        ("version: 1\npasses: [{pass: rtn}\n", r"not valid YAML"),
    ],
)
def test_errors_name_file_pass_field_and_allowed_values(tmp_path, text, expected):
    with pytest.raises(RecipeError, match=expected) as error:
        Recipe.from_yaml(write(tmp_path, text))
    assert "\n" not in str(error.value)
    assert str(tmp_path / "r.yaml") in str(error.value)


def test_missing_file():
    with pytest.raises(RecipeError, match="no such recipe file"):
        Recipe.from_yaml("does/not/exist.yaml")
