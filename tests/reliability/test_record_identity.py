"""Defect 8 and the `ls passes` help: checkpoints are named by full config and told apart by content."""

from __future__ import annotations

import json

import compress
from compress.passes import RTNConfig
from tests.reliability.conftest import cli

FLAGS = ["--tasks", "perplexity", "--max-eval-tokens", "32", "--window", "16", "--threads", "1", "--no-progress", "--json"]


def _compressed(source, folder, bits):
    model, tokenizer, _ = compress.load(source)
    model, reports = compress.apply(model, [RTNConfig(bits=bits, group_size=16)], progress=False)
    return compress.save(model, folder / "model", tokenizer=tokenizer, manifest={"source_model": str(source), "passes": [r.to_dict() for r in reports]})


def test_bench_skip_existing_never_returns_another_checkpoints_record(tiny_checkpoint, tmp_path, capsys):
    results = tmp_path / "results.jsonl"
    first = _compressed(tiny_checkpoint, tmp_path / "a", 4)
    code, out, _ = cli(capsys, "bench", first, "--results", results, "--skip-existing", *FLAGS)
    assert code == 0 and json.loads(out)["variant"] == "rtn-w4-g16"
    second = _compressed(tiny_checkpoint, tmp_path / "b", 4)  # same name 'model', same variant
    with open(second / "model.safetensors", "r+b") as handle:  # different content: retune one byte of the packed codes
        handle.seek(-1, 2)
        last = handle.read(1)
        handle.seek(-1, 2)
        handle.write(bytes([last[0] ^ 1]))
    manifest = json.loads((second / "compression.json").read_text())
    from compress.saving import file_sha256

    manifest["content_sha256"] = file_sha256(second / "model.safetensors")
    (second / "compression.json").write_text(json.dumps(manifest))
    code, out, err = cli(capsys, "bench", second, "--results", results, "--skip-existing", *FLAGS)
    assert code == 0 and "already in" not in err
    assert json.loads(out)["content_sha256"] == manifest["content_sha256"]
    code, out, err = cli(capsys, "bench", second, "--results", results, "--skip-existing", *FLAGS)
    assert code == 0 and "already in" in err  # the same checkpoint again is skipped


def test_ls_passes_shows_literal_choices(capsys):
    code, out, _ = cli(capsys, "ls", "passes")
    assert code == 0 and "Literal" not in out
    scope = next(line for line in out.splitlines() if line.strip().startswith("scope:"))
    assert "'layer'" in scope.split("=")[0] and "'global'" in scope.split("=")[0]  # the allowed values, not 'Literal'
