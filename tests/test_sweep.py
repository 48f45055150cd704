"""The recipe runner end to end on a micro ladder: jobs, records, report, resume, shards, gate."""

import json

import pytest

from compress.recipe import Recipe
from compress.sweep import check_gate, parse_shard, plan_jobs, run_recipe
from compress.errors import UserError

MICRO_BENCH = {
    "tasks": ["perplexity", "choice", "latency"],
    "max_eval_tokens": 256,
    "window": 32,
    "choice_items": 8,
    "prompt_tokens": 8,
    "new_tokens": 4,
    "repeats": 1,
    "warmup": 0,
}


@pytest.fixture(scope="module")
def micro_recipe_text(tmp_path_factory):
    folder = tmp_path_factory.mktemp("micro")
    corpus = folder / "corpus.txt"
    from compress.data.plays import split_text

    corpus.write_text(split_text("validation")[:30_000])
    ladder = folder / "micro-ladder.yaml"
    ladder.write_text(
        "family: micro\nkind: trained\n"
        f"corpus: {corpus}\nseed: 0\nsizes: [d8-l1, d16-l1, d16-l2]\n"
        "recipe: {seq_len: 32, batch_size: 4, vocab_size: 300, steps: 3}\n"
    )
    return (
        f"version: 1\nladder: {ladder}\ncompress: 1\n"
        "variants:\n  - name: w8\n    passes: [{pass: rtn, bits: 8, group_size: null}]\n"
        "  - name: half\n    passes: [{pass: magnitude, sparsity: 0.5}]\n"
        f"bench: {json.dumps(MICRO_BENCH)}\n"
    )


@pytest.mark.slow
def test_sweep_records_every_job_writes_report_and_resumes(micro_recipe_text, tmp_path, monkeypatch):
    recipe = Recipe.from_yaml_text(micro_recipe_text, source="micro.yaml")
    out = tmp_path / "out"
    first = run_recipe(recipe, out=out, progress=False, log=lambda m: None)
    keys = sorted((r["model"], r["variant"]) for r in first.records)
    assert keys == sorted(
        [("pocket-d8-l1", "dense"), ("pocket-d16-l1", "dense"), ("pocket-d16-l2", "dense"), ("pocket-d16-l2", "w8"), ("pocket-d16-l2", "half")]
    )
    assert first.ran == 5 and first.skipped == 0
    compressed = {r["variant"]: r for r in first.records if r["variant"] != "dense"}
    assert compressed["w8"]["bits"] == 8 and compressed["half"]["sparsity"] == pytest.approx(0.5, abs=0.01)
    dense_largest = next(r for r in first.records if r["model"] == "pocket-d16-l2" and r["variant"] == "dense")
    assert compressed["w8"]["weight_bytes"] < dense_largest["weight_bytes"]
    assert (out / "report.md").is_file() and (out / "report.html").is_file()

    # Interrupt: drop the last two records as if the run had died there; the rerun only redoes them.
    lines = (out / "results.jsonl").read_text().splitlines()
    (out / "results.jsonl").write_text("\n".join(lines[:3]) + "\n")
    ran = []
    import compress.sweep as sweep

    original = sweep._run_job
    monkeypatch.setattr(sweep, "_run_job", lambda job, *a, **k: (ran.append((job.model, job.variant_name)), original(job, *a, **k))[1])
    second = run_recipe(recipe, out=out, progress=False, log=lambda m: None)
    assert second.skipped == 3 and second.ran == 2
    assert sorted(ran) == [("pocket-d16-l2", "half"), ("pocket-d16-l2", "w8")]
    assert len(second.records) == 5


def test_plan_jobs_and_shards_partition_the_work():
    recipe = Recipe.from_yaml_text("version: 1\nmodel: some/model\nvariants:\n  - passes: [{pass: rtn}]\n  - passes: [{pass: rtn, bits: 8}]\n")
    jobs = plan_jobs(recipe)
    assert [j.variant_name for j in jobs] == ["dense", "rtn-w4-g128", "rtn-w8-g128"]
    shards = [jobs[i::2] for i in range(2)]
    assert sorted(j.variant_name for s in shards for j in s) == sorted(j.variant_name for j in jobs)
    assert parse_shard("2/3") == (1, 3)
    for bad in ("0/2", "3/2", "x"):
        with pytest.raises(UserError):
            parse_shard(bad)


def test_accuracy_gate_names_the_variant():
    records = [
        {"model": "m", "variant": "dense", "device": "cpu", "perplexity": 10.0, "source_model": "m"},
        {"model": "m", "variant": "w4", "device": "cpu", "perplexity": 10.4, "source_model": "m"},
        {"model": "m", "variant": "w3", "device": "cpu", "perplexity": 12.0, "source_model": "m"},
    ]
    failures = check_gate(records, 0.05)
    assert len(failures) == 1 and "w3" in failures[0] and "+20.0%" in failures[0]
    assert check_gate(records, None) == []


def test_report_and_recommend_merge_shard_files(tmp_path, capsys):
    from compress.cli import main
    from tests.scaling.scaling_synthetic import synthetic_records

    records = synthetic_records()
    for index, part in enumerate((records[::2], records[1::2]), 1):
        with open(tmp_path / f"results.shard-{index}-of-2.jsonl", "w") as handle:
            handle.writelines(json.dumps(r) + "\n" for r in part)
    assert main(["recommend", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_candidates"] == len(records)
