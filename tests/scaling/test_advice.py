"""`recommend` across sizes, methods and bit widths, on a synthetic results file with per-window
values: every (size x method) option, the binding budget, and when a smaller dense model is the
better pick — each with its paired interval."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from compress.bench.accuracy.uncertainty import perplexity_intervals
from compress.cli import main
from compress.scaling.frontier import recommend

WINDOWS, BYTES = 40, 200
SHARED = np.random.default_rng(0).normal(0, 6.0, WINDOWS)  # hard passages are hard for every model


def record(model, variant, bpb, weight_bytes, seed, *, source=None, bits=None, params=None):
    own = np.random.default_rng(seed).normal(0, 0.3, WINDOWS)
    nll = bpb * math.log(2) * BYTES + SHARED + own
    windows = {"nll": nll.tolist(), "tokens": [50] * WINDOWS, "bytes": [BYTES] * WINDOWS}
    measured = float(nll.sum() / math.log(2) / (BYTES * WINDOWS))
    source = source or model
    return {"model": model, "variant": variant, "device": "cpu", "scenario": "s", "source_model": source,
            "method": "dense" if variant == "dense" else "rtn", "bits": bits, "weight_bytes": weight_bytes,
            "non_embedding_params": params or {"small": 1000, "large": 4000}[source], "bits_per_byte": measured,
            "decode_ms_per_token": weight_bytes / 100, "windows": windows, **perplexity_intervals(windows)}


RECORDS = [
    record("small", "dense", 2.00, 100, 1),
    record("large", "dense", 1.80, 400, 2),
    record("small", "rtn-w4-g64", 2.05, 40, 3, bits=4),
    record("large", "rtn-w2-g64", 2.30, 90, 4, bits=2),
    record("large", "rtn-w4-g64", 1.85, 150, 5, bits=4),
]


def test_a_smaller_dense_model_beats_every_compressed_one_that_fits():
    rec = recommend(RECORDS, max_weight_bytes=120)
    assert (rec.pick["model"], rec.pick["variant"]) == ("small", "dense")
    assert rec.binding == ["max_weight_bytes"] and rec.blocked["variant"] == "rtn-w4-g64"  # large w4 needs 150 B
    alt = rec.compressed_alternative
    assert (alt["model"], alt["variant"]) == ("small", "rtn-w4-g64")
    assert 0 < alt["low"] < alt["margin"] < alt["high"] and not alt["indistinguishable"]  # paired interval above 0
    assert "A smaller dense model is the better pick" in rec.reason and "paired block bootstrap" in rec.reason
    assert rec.better_pick["variant"] == "dense" and rec.pick_ci[0] < rec.pick["metric_value"] < rec.pick_ci[1]


def test_compressed_pick_with_its_margin_over_the_best_dense_that_fits():
    rec = recommend(RECORDS, max_weight_bytes=200)
    assert (rec.pick["model"], rec.pick["variant"]) == ("large", "rtn-w4-g64")
    dense = rec.dense_alternative
    assert dense["model"] == "small" and dense["low"] > 0 and not dense["indistinguishable"]
    assert "It beats the best dense model that fits, small dense on cpu" in rec.reason
    assert rec.better_pick["variant"] == "rtn-w4-g64" and rec.binding == ["max_weight_bytes"]


def test_a_dense_model_within_noise_of_the_compressed_pick_is_the_better_pick():
    tied = [*RECORDS[:1], record("large", "rtn-w3-g64", 1.999, 95, 6, bits=3)]
    rec = recommend(tied, max_weight_bytes=120)
    assert rec.pick["variant"] == "rtn-w3-g64" and rec.dense_alternative["indistinguishable"]
    assert rec.dense_alternative["low"] < 0 < rec.dense_alternative["high"]
    assert (rec.better_pick["model"], rec.better_pick["variant"]) == ("small", "dense")
    assert "The smaller dense model small dense on cpu is the better pick" in rec.reason


def test_options_cover_every_size_and_method_with_intervals():
    rec = recommend(RECORDS, max_weight_bytes=120)
    rows = [(o["source_model"], o["method"], o["variant"], o["fits"]) for o in rec.options]
    assert rows == [("small", "dense", "dense", True), ("small", "rtn", "rtn-w4-g64", True),
                    ("large", "dense", "dense", False), ("large", "rtn", "rtn-w2-g64", True)]
    large_rtn = rec.options[3]
    assert large_rtn["configurations"] == 2 and large_rtn["configurations_within_budget"] == 1
    assert all(o["metric_ci"] and (o["is_pick"] or o["pick_margin_ci"]) for o in rec.options)
    assert rec.options[2]["pick_margin"] < 0  # the large dense model is better, but does not fit


@pytest.mark.parametrize("budget,expected", [("120", "A smaller dense model is the better pick"), ("200", "It beats the best dense")])
def test_cli_prints_the_options_table_and_the_verdict(tmp_path, capsys, budget, expected):
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    assert main(["recommend", str(path), "--max-weight-bytes", budget]) == 0
    out = capsys.readouterr().out
    assert expected in out and "Every model size x method (4)" in out and "pick − this" in out
    assert main(["recommend", str(path), "--max-weight-bytes", budget, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert len(document["options"]) == 4 and document["better_pick"]
