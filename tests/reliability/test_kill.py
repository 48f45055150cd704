"""Kill a small sweep at 11 points spread over every stage, through the fault hook (not timing).

Stages: load, the pass, save, bench, results append, report. After each kill: the results
files parse and hold no job twice, a saved checkpoint is whole or absent, and no user file
outside the output folder changed. Then a rerun finishes with every job exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from tests.reliability.conftest import TINY_BENCH, tree_digest

FAULTS = [
    "load#1", "load#5", "pass:rtn", "save", "bench#1", "bench#5",
    "results-append#1", "results-append#3", "results-append#5", "report",
]
JOBS = 5  # three ladder members (dense), the model dense, the model compressed


def _ladder(folder: Path) -> Path:
    from compress.data.plays import split_text

    corpus = folder / "corpus.txt"
    corpus.write_text(split_text("validation")[:20_000])
    ladder = folder / "micro-ladder.yaml"
    ladder.write_text(
        f"family: micro\nkind: trained\ncorpus: {corpus}\nseed: 0\nsizes: [d8-l1, d16-l1, d16-l2]\n"
        "recipe: {seq_len: 32, batch_size: 4, vocab_size: 300, steps: 2}\n"
    )
    return ladder


@pytest.mark.slow
def test_a_sweep_killed_anywhere_resumes_and_loses_nothing(tiny_checkpoint, tmp_path):
    from compress.saving import written_by_us
    from compress.scaling.placement import read_records

    user = tmp_path / "user"
    user.mkdir()
    (user / "notes.txt").write_text("the user's own file, beside the outputs")
    ladder = _ladder(user)
    recipe = user / "recipe.yaml"
    recipe.write_text(
        f"version: 1\nladder: {ladder}\nmodel: {tiny_checkpoint}\n"
        "passes: [{pass: rtn, bits: 8, group_size: null}]\n"
        f"bench: {json.dumps({**TINY_BENCH, 'max_ppl_increase': 10.0})}\n"
    )
    cases = []
    for number, fault in enumerate(FAULTS):
        out = tmp_path / "runs" / f"{number:02d}"
        cases.append({"fault": fault, "cwd": str(user), "out": str(out), "snapshot": str(tmp_path / "killed" / f"{number:02d}"),
                      "log": str(tmp_path / f"log-{number:02d}.txt"),
                      "args": ["run", str(recipe), "--out", str(out), "--no-progress"]})
    spec, result = tmp_path / "spec.json", tmp_path / "result.json"
    spec.write_text(json.dumps({"ladder": str(ladder), "cases": cases}))
    before_user, before_source = tree_digest(user), tree_digest(tiny_checkpoint)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    env.pop("SCALECOMPRESS_FAULT", None)
    done = subprocess.run([sys.executable, str(Path(__file__).with_name("zygote.py")), str(spec), str(result)],
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    outcomes = json.loads(result.read_text())
    for case, outcome in zip(cases, outcomes):
        log = Path(case["log"]).read_text()[-1500:]
        assert outcome["killed"]["signal"] == signal.SIGKILL, (case["fault"], "the fault point was never reached", log)
        snapshot = Path(case["snapshot"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a half-written last line is expected right after a kill
            killed_keys = [(r["model"], r["variant"]) for r in read_records(snapshot)] if any(snapshot.glob("results*.jsonl")) else []
        assert len(killed_keys) == len(set(killed_keys)) < JOBS or case["fault"] == "report", (case["fault"], killed_keys)
        saved = snapshot / "model"
        assert not saved.exists() or written_by_us(saved), case["fault"]  # whole, or not there at all
        assert outcome["rerun"] == {"signal": None, "code": 0}, (case["fault"], log)
        out = Path(case["out"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            keys = [(r["model"], r["variant"]) for r in read_records(out)]
        assert len(keys) == JOBS and len(set(keys)) == JOBS, (case["fault"], keys)
        assert written_by_us(out / "model") and (out / "report.md").is_file(), case["fault"]
        assert not [p.name for p in out.iterdir() if p.name.startswith(".model.tmp-")], case["fault"]
    assert tree_digest(user) == before_user  # nothing outside the output folders changed
    assert tree_digest(tiny_checkpoint) == before_source
