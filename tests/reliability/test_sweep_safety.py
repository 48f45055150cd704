"""Defects 4, 5, 6, 16, 18: resume after a crash, a gate that cannot pass NaN, no compressed 'dense',
shards honoured by an unsharded rerun, one writer per output folder."""

from __future__ import annotations

import json
import math
import threading

import pytest

import compress
import compress.sweep as sweep
from compress.bench.results import ResultsStore
from compress.errors import UserError
from compress.recipe import Recipe
from compress.sweep import check_gate, run_recipe
from tests.reliability.conftest import TINY_BENCH, cli


def _fake_jobs(monkeypatch, ran: list, perplexity=lambda job: 10.0):
    def fake(job, recipe, bench_config, *args, **kwargs):
        ran.append((job.model, job.variant_name))
        record = {"model": job.model, "variant": job.variant_name, "device": bench_config.device, "scenario": bench_config.scenario_id(),
                  "source_model": job.model, "perplexity": perplexity(job)}
        return record, None

    monkeypatch.setattr(sweep, "_run_job", fake)


RECIPE = "version: 1\nmodel: some/model\nvariants:\n  - passes: [{pass: rtn}]\n  - passes: [{pass: rtn, bits: 8}]\n  - passes: [{pass: magnitude}]\n"


def test_partial_line_mid_file_then_resume_then_report(tmp_path, monkeypatch):
    # Defect 4: a kill left half a line; the next append went after it; every later read failed.
    recipe = Recipe.from_yaml_text(RECIPE)
    ran: list = []
    _fake_jobs(monkeypatch, ran)
    out = tmp_path / "out"
    run_recipe(recipe, out=out, shard=(0, 1), progress=False, log=lambda m: None)
    lines = (out / "results.jsonl").read_text().splitlines()
    (out / "results.jsonl").write_text("\n".join(lines[:2]) + "\n" + lines[2][: len(lines[2]) // 2])  # killed mid-append
    ResultsStore(out / "results.jsonl").append(json.loads(lines[3]))  # a later run's append lands after it
    ran.clear()
    with pytest.warns(UserWarning, match=r"results.jsonl:3: skipped a partial"):
        result = run_recipe(recipe, out=out, progress=False, log=lambda m: None)
    assert ran == [("some/model", "rtn-w8-g128")] and result.skipped == 3
    from compress.scaling.placement import read_records

    with pytest.warns(UserWarning):
        keys = [(r["model"], r["variant"]) for r in read_records(out)]
    assert sorted(keys) == sorted(set(keys)) and len(keys) == 4


def test_an_unsharded_rerun_skips_what_the_shards_recorded(tmp_path, monkeypatch):
    recipe = Recipe.from_yaml_text(RECIPE)
    ran: list = []
    _fake_jobs(monkeypatch, ran)
    out = tmp_path / "out"
    for index in range(2):
        run_recipe(recipe, out=out, shard=(index, 2), progress=False, log=lambda m: None)
    assert len(ran) == 4
    ran.clear()
    result = run_recipe(recipe, out=out, progress=False, log=lambda m: None)
    assert ran == [] and result.skipped == 4 and len(result.records) == 4


@pytest.mark.parametrize("value", [float("nan"), None, float("inf")])
def test_the_gate_fails_when_it_cannot_evaluate_perplexity(value, tmp_path, monkeypatch, capsys):
    recipe_file = tmp_path / "r.yaml"
    recipe_file.write_text("version: 1\nmodel: some/model\npasses: [{pass: rtn}]\nbench: {max_ppl_increase: 0.05}\n")
    ran: list = []
    _fake_jobs(monkeypatch, ran, perplexity=lambda job: 10.0 if job.variant is None else value)
    code, out, err = cli(capsys, "run", recipe_file, "--out", tmp_path / "out", "--json", "--no-progress")
    assert code == 3
    assert "perplexity is missing or not finite" in err
    assert json.loads(out)["gate_failures"]
    if value is not None:
        assert "NaN or infinite" in err
        assert "NaN" not in (tmp_path / "out" / "results.jsonl").read_text()


def test_the_gate_without_a_dense_record_fails_too():
    record = {"model": "m", "variant": "w4", "source_model": "m", "device": "cpu", "perplexity": 5.0}
    assert check_gate([record], 0.05) == ["m / w4: no dense record of m to compare with; the gate cannot be evaluated"]
    assert check_gate([record], None) == []


def test_a_gate_on_a_recipe_without_perplexity_is_refused_at_validation():
    with pytest.raises(UserError, match="max_ppl_increase gates on perplexity.*add 'perplexity'"):
        Recipe.from_yaml_text("version: 1\npasses: [{pass: rtn}]\nbench: {max_ppl_increase: 0.1, tasks: [latency]}\n")


def test_a_compressed_checkpoint_is_never_recorded_as_dense(tmp_path, tiny_checkpoint):
    # Defect 6: rtn on an already-compressed source recorded the source as the dense baseline.
    from compress.passes import RTNConfig

    model, tokenizer, _ = compress.load(tiny_checkpoint)
    model, reports = compress.apply(model, [RTNConfig(bits=4, group_size=16)], progress=False)
    packed = compress.save(model, tmp_path / "packed", tokenizer=tokenizer,
                           manifest={"source_model": str(tiny_checkpoint), "passes": [r.to_dict() for r in reports]})
    recipe = Recipe.from_yaml_text(f"version: 1\nmodel: {packed}\npasses: [{{pass: rtn, bits: 8}}]\nbench: {json.dumps(TINY_BENCH)}\n")
    with pytest.raises(UserError, match=r"already a compressed checkpoint \(rtn-w4-g16\).*recorded as dense.*" + str(tiny_checkpoint)):
        run_recipe(recipe, out=tmp_path / "out", progress=False, log=lambda m: None)
    assert not (tmp_path / "out" / "results.jsonl").exists()
    with pytest.raises(UserError, match="cannot be recorded as 'dense'"):
        compress.bench(model, tokenizer, TINY_BENCH, model_name="packed", progress=False)
    record = compress.bench(model, tokenizer, TINY_BENCH, model_name="packed", variant="rtn-w4-g16", progress=False)
    assert record["variant"] == "rtn-w4-g16" and math.isfinite(record["perplexity"])


def test_a_second_run_into_a_locked_folder_names_the_holder(tmp_path, monkeypatch, capsys):
    from compress.outdir import OutputLock

    recipe_file = tmp_path / "r.yaml"
    recipe_file.write_text(RECIPE)
    ran: list = []
    _fake_jobs(monkeypatch, ran)
    out = tmp_path / "out"
    holding, release = threading.Event(), threading.Event()

    def hold():
        with OutputLock(out):
            holding.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    holding.wait(30)
    try:
        code, _, err = cli(capsys, "run", recipe_file, "--out", out, "--no-progress")
    finally:
        release.set()
        thread.join()
    assert code == 2 and err.count("\n") == 1 and "in use by another run (pid" in err and ran == []
    code, _, _ = cli(capsys, "run", recipe_file, "--out", out, "--no-progress")
    assert code == 0 and len(ran) == 4
