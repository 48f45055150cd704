"""The bad-input matrix: recipes, checkpoints, flags, paths and data that a user gets wrong.

For every case: the exit code, exactly one line on stderr, one JSON error object on stdout
(`--json`), and nothing lost (every file the case started from is unchanged afterwards).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.reliability.conftest import TINY_BENCH, cli, tree_digest

PASSES = "passes: [{pass: rtn}]\n"


def recipe(text: str):
    def build(tmp: Path, model: Path) -> list:
        path = tmp / "r.yaml"
        path.write_text(text.replace("MODEL", str(model)))
        return ["validate", path]
    return build


def recipe_bytes(data: bytes):
    def build(tmp: Path, model: Path) -> list:
        (tmp / "r.yaml").write_bytes(data)
        return ["validate", tmp / "r.yaml"]
    return build


def damaged(change):
    """`info` on a copy of the tiny checkpoint after `change(folder)`."""
    def build(tmp: Path, model: Path) -> list:
        folder = Path(shutil.copytree(model, tmp / "ckpt"))
        change(folder)
        return ["info", folder]
    return build


def _packed_without_manifest(folder: Path) -> None:
    import compress
    from compress.passes import RTNConfig

    loaded = compress.load(folder)
    model, _ = compress.apply(loaded.model, [RTNConfig(bits=4, group_size=16)], progress=False)
    shutil.rmtree(folder)
    compress.save(model, folder)
    (folder / "compression.json").unlink()


def _remote_code(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "evil.py").write_text("raise SystemExit('must never run')\n")


def _model_type(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "foozle"
    (folder / "config.json").write_text(json.dumps(config))


def _pickle_only(folder: Path) -> None:
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    (folder / "compression.json").unlink()


def command(*args):
    def build(tmp: Path, model: Path) -> list:
        return [a(tmp, model) if callable(a) else a for a in args]
    return build


def results_file(tmp: Path, model: Path) -> Path:
    path = tmp / "results.jsonl"
    path.write_text(json.dumps({"model": "m", "variant": "dense", "device": "cpu", "scenario": "s", "weight_bytes": 10, "bits_per_byte": 1.0}) + "\n")
    return path


def user_folder_at_target(tmp: Path, model: Path) -> list:
    (tmp / "out" / "model").mkdir(parents=True)
    (tmp / "out" / "model" / "mine.txt").write_text("user data")
    (tmp / "r.yaml").write_text(f"version: 1\nmodel: {model}\n{PASSES}bench: {json.dumps(TINY_BENCH)}\n")
    return ["run", tmp / "r.yaml", "--out", tmp / "out", "--no-progress"]


def out_is_a_file(tmp: Path, model: Path) -> list:
    (tmp / "taken").write_text("a file")
    (tmp / "r.yaml").write_text(f"version: 1\nmodel: {model}\n{PASSES}")
    return ["run", tmp / "r.yaml", "--out", tmp / "taken", "--no-progress"]


def missing_relative(tmp: Path, model: Path) -> list:
    (tmp / "out").mkdir()
    return ["bench", "out/model", "--no-progress"]


CASES = {
    # recipes
    "recipe: no such file": (command("validate", lambda t, m: t / "missing.yaml"), 2),
    "recipe: a folder": (command("validate", lambda t, m: t), 2),
    "recipe: empty": (recipe(""), 2),
    "recipe: YAML syntax": (recipe("version: 1\npasses: [{pass: rtn\n"), 2),
    "recipe: not UTF-8": (recipe_bytes("version: 1\n# caf\xe9\n".encode("latin-1")), 2),
    "recipe: duplicate key": (recipe("version: 1\nversion: 1\n" + PASSES), 2),
    "recipe: alias bomb": (recipe("a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(f"{c}: &{c} [{','.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")) + "version: 1\n" + PASSES), 2),
    "recipe: nested brackets": (recipe("version: 1\npasses: " + "[" * 5000 + "]" * 5000 + "\n"), 2),
    "recipe: larger than 1 MiB": (recipe("version: 1\n#" + "x" * (1 << 20) + "\n" + PASSES), 2),
    "recipe: python tag": (recipe("version: 1\nmodel: !!python/object/apply:os.system ['true']\n" + PASSES), 2),
    "recipe: a list, not a mapping": (recipe("- pass: rtn\n"), 2),
    "recipe: unknown top-level key": (recipe("version: 1\nmodle: x\n" + PASSES), 2),
    "recipe: wrong version": (recipe("version: 2\n" + PASSES), 2),
    "recipe: unknown pass": (recipe("version: 1\npasses: [{pass: rnt}]\n"), 2),
    "recipe: misspelt field": (recipe("version: 1\npasses: [{pass: rtn, bitz: 4}]\n"), 2),
    "recipe: value out of range": (recipe("version: 1\npasses: [{pass: rtn, bits: 99}]\n"), 2),
    "recipe: wrong type": (recipe("version: 1\npasses: [{pass: rtn, bits: four}]\n"), 2),
    "recipe: huge value": (recipe("version: 1\npasses: [{pass: rtn, group_size: " + "9" * 5000 + "}]\n"), 2),
    "recipe: trust_remote_code": (recipe("version: 1\ntrust_remote_code: true\n" + PASSES), 2),
    "recipe: passes and variants": (recipe("version: 1\n" + PASSES + "variants: [{passes: [{pass: rtn}]}]\n"), 2),
    "recipe: repeated variant names": (recipe("version: 1\nvariants: [{name: a, passes: [{pass: rtn}]}, {name: a, passes: [{pass: magnitude}]}]\n"), 2),
    "recipe: bad target regex": (recipe("version: 1\npasses: [{pass: rtn, targets: ['re:(']}]\n"), 2),
    "recipe: unknown bench field": (recipe("version: 1\n" + PASSES + "bench: {windw: 3}\n"), 2),
    "recipe: misspelt task": (recipe("version: 1\n" + PASSES + "bench: {tasks: [perplexty]}\n"), 2),
    "recipe: gate without perplexity": (recipe("version: 1\n" + PASSES + "bench: {tasks: [latency], max_ppl_increase: 0.1}\n"), 2),
    "recipe: data.samples 0": (recipe("version: 1\n" + PASSES + "data: {samples: 0}\n"), 2),
    "recipe: unknown report metric": (recipe("version: 1\n" + PASSES + "report: {metric: bleu}\n"), 2),
    # checkpoints and model paths
    "model: missing folder": (command("info", lambda t, m: t / "nope"), 2),
    "model: missing relative path": (missing_relative, 2),
    "model: a file": (command("info", lambda t, m: m / "config.json"), 2),
    "model: offline hub id": (command("info", "EleutherAI/pythia-70m"), 1),
    "checkpoint: no config.json": (damaged(lambda f: (f / "config.json").unlink()), 2),
    "checkpoint: config.json not JSON": (damaged(lambda f: (f / "config.json").write_text("{oops")), 2),
    "checkpoint: pickle weights only": (damaged(_pickle_only), 2),
    "checkpoint: compression.json not JSON": (damaged(lambda f: (f / "compression.json").write_text("{")), 2),
    "checkpoint: packed without compression.json": (damaged(_packed_without_manifest), 2),
    "checkpoint: remote code without the flag": (damaged(_remote_code), 2),
    "checkpoint: unknown model type": (damaged(_model_type), 2),
    "checkpoint: weights file truncated": (damaged(lambda f: (f / "model.safetensors").write_bytes((f / "model.safetensors").read_bytes()[:100])), 2),
    # flags
    "flag: unknown option": (command("validate", "--bogus", lambda t, m: t / "r.yaml"), 2),
    "flag: unknown command": (command("compresss"), 2),
    "flag: bad device name": (command("bench", lambda t, m: m, "--device", "gpu", "--no-progress"), 2),
    "flag: cuda without a GPU": (command("bench", lambda t, m: m, "--device", "cuda", "--no-progress"), 2),
    "flag: bad shard": (command("run", lambda t, m: (t / "r.yaml").write_text("version: 1\n" + PASSES) and t / "r.yaml", "--shard", "5/2"), 2),
    "flag: bad size": (command("recommend", results_file, "--max-weight-bytes", "2 megs"), 2),
    "flag: bad metric": (command("recommend", results_file, "--metric", "bleu"), 2),
    "flag: skip-existing without results": (command("bench", lambda t, m: m, "--skip-existing", "--no-progress"), 2),
    "flag: bad dtype": (command("bench", lambda t, m: m, "--dtype", "float13", "--no-progress"), 2),
    # output paths
    "path: --out is a file": (out_is_a_file, 2),
    "path: a user folder where the model is saved": (user_folder_at_target, 2),
    "path: report on missing results": (command("report", lambda t, m: t / "none.jsonl", "--out", lambda t, m: t / "rep"), 2),
    "path: recommend on a folder without results": (command("recommend", lambda t, m: t), 2),
    # data
    "data: missing eval text": (command("bench", lambda t, m: m, "--text", lambda t, m: t / "missing.txt", "--no-progress"), 2),
    "data: bench config not a mapping": (command("bench", lambda t, m: m, "--config", lambda t, m: (t / "c.yaml").write_text("- 1\n") and t / "c.yaml", "--no-progress"), 2),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name, tiny_checkpoint, tmp_path, capsys, monkeypatch):
    build, expected = CASES[name]
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    monkeypatch.chdir(inputs)
    (inputs / "precious.txt").write_text("never touched")
    args = [str(a) for a in build(inputs, tiny_checkpoint)] + ["--json"]
    before, source = tree_digest(inputs), tree_digest(tiny_checkpoint)
    code, out, err = cli(capsys, *args)
    assert code == expected, (args, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("scalecompress: error: ") and "Traceback" not in err, err
    assert json.loads(out) == {"error": lines[0].removeprefix("scalecompress: error: "), "kind": json.loads(out)["kind"], "exit_code": expected}
    after = tree_digest(inputs)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing lost or changed
    assert tree_digest(tiny_checkpoint) == source


def test_the_matrix_is_large_enough():
    assert len(CASES) >= 40
