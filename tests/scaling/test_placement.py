import json
import math

import numpy as np
import pytest
from tests.scaling.scaling_synthetic import SIZES, VARIANTS, bpb, dense_name, record, synthetic_records, total_params

from compress.errors import UserError
from compress.scaling.placement import ladders, place, read_records, versus_dense


def test_effective_params_and_ratio_are_the_known_ones():
    # Between dense points the monotone interpolation stands in for the law that made the data:
    # close to it (PCHIP in log N), exact at the points themselves.
    rows = place(synthetic_records())
    assert len(rows) == 2 * len(VARIANTS)
    for row in rows:
        ratio = VARIANTS[row["variant"]][4]
        source_n = row["params"]
        assert row["params_kind"] == "non_embedding"
        assert row["effective_params"] == pytest.approx(ratio * source_n, rel=1e-2)
        assert row["effective_ratio"] == pytest.approx(ratio, rel=1e-2)
        assert row["effective_flag"] in ("interpolated", "exact")  # a ratio landing on a dense size is exact


def test_a_variant_that_scores_what_its_source_scores_gets_exactly_its_size():
    records = synthetic_records()
    for r in records:
        if r["variant"] != "dense":
            source = next(d for d in records if d["variant"] == "dense" and d["model"] == r["source_model"])
            r["bits_per_byte"] = source["bits_per_byte"]
    for row in place(records):
        assert row["effective_ratio"] == 1.0 and row["effective_flag"] == "exact"


def test_effective_params_beyond_the_ladder_are_extrapolated_and_continuous():
    records = synthetic_records()
    largest = max((r for r in records if r["variant"] == "dense"), key=lambda r: r["non_embedding_params"])
    better = dict(largest, variant="magic", source_model=largest["model"], bits_per_byte=largest["bits_per_byte"] - 1e-9)
    row = [r for r in place(records + [better]) if r["variant"] == "magic"][0]
    assert row["effective_flag"] == "extrapolated_above"
    assert row["effective_ratio"] == pytest.approx(1.0, abs=1e-5)


def test_total_params_setting_uses_total_counts():
    rows = place(synthetic_records(), params="total")
    assert {row["params"] for row in rows} == {total_params(n) for n in SIZES[-2:]}
    assert all(row["params_kind"] == "total" for row in rows)


def test_verdicts_against_dense_at_equal_cost():
    rows = {(r["model"], r["variant"]): r for r in place(synthetic_records())}
    largest = dense_name(SIZES[-1])
    w4 = rows[(largest, "rtn-w4-g64")]["vs_dense"]["weight_bytes"]
    assert w4["verdict"] == "better" and w4["margin"] > 0 and w4["note"] == "interpolated"
    # By hand: the w4 model's bytes lie between two dense models; interpolate bpb in log-bytes.
    cost = 0.53 * total_params(SIZES[-1])
    below, above = SIZES[2], SIZES[3]
    xs = np.log([4 * total_params(below), 4 * total_params(above)])
    expected = float(np.interp(math.log(int(cost)), xs, [bpb(below), bpb(above)]))
    assert w4["dense_metric_at_cost"] == pytest.approx(expected, rel=1e-9)
    assert w4["margin"] == pytest.approx(expected - bpb(0.7 * SIZES[-1]), rel=1e-9)
    magnitude = rows[(largest, "magnitude-50%")]["vs_dense"]
    assert {magnitude[axis]["verdict"] for axis in magnitude} == {"worse"}
    assert all(magnitude[axis]["margin"] < 0 for axis in magnitude)


def test_outside_the_dense_cost_range():
    dense = [record("d1", "dense", 1e5, 3.0, 1000), record("d2", "dense", 1e6, 2.5, 10000)]
    cheap_good = record("d2", "q", 1e6, 2.9, 500, source="d2", method="rtn")
    cheap_bad = record("d2", "q2", 1e6, 3.2, 500, source="d2", method="rtn")
    dear_bad = record("d2", "q3", 1e6, 2.6, 20000, source="d2", method="rtn")
    assert versus_dense(dense, cheap_good, "bits_per_byte", "weight_bytes")["verdict"] == "better"
    unknown = versus_dense(dense, cheap_bad, "bits_per_byte", "weight_bytes")
    assert unknown["verdict"] == "unknown" and unknown["margin"] is None and "cheaper" in unknown["note"]
    assert versus_dense(dense, dear_bad, "bits_per_byte", "weight_bytes")["verdict"] == "worse"
    missing = dict(cheap_good, energy_j_per_token=None)
    assert versus_dense(dense, missing, "bits_per_byte", "energy_j_per_token")["verdict"] == "unknown"


def test_accuracy_margin_sign_means_better():
    dense = [record("d1", "dense", 1e5, 3.0, 1000), record("d2", "dense", 1e6, 2.5, 10000)]
    for r in dense:
        r["acc"] = 0.4 if r["model"] == "d1" else 0.6
    better = dict(record("d2", "q", 1e6, 2.6, 3000, source="d2", method="rtn"), acc=0.58)
    position = versus_dense(dense, better, "acc", "weight_bytes")
    assert position["verdict"] == "better" and position["margin"] > 0


def test_beyond_the_asymptote_and_no_fit_are_flagged():
    records = synthetic_records()
    records.append(record(dense_name(SIZES[-1]), "magic", SIZES[-1], 1.95, 1e6, source=dense_name(SIZES[-1]),
                          method="rtn"))
    rows = {r["variant"]: r for r in place(records) if r["model"] == dense_name(SIZES[-1])}
    assert rows["magic"]["effective_params"] is None and rows["magic"]["effective_flag"] == "beyond_asymptote"
    short = [r for r in synthetic_records() if r["variant"] != "dense" or r["model"] in map(dense_name, SIZES[-2:])]
    (ladder,) = ladders(short)
    assert ladder.fit is None and "at least 3" in ladder.fit_error
    # Two dense points still interpolate; without a law nothing is extrapolated.
    assert {r["effective_flag"] for r in place(short)} <= {"interpolated", "exact", "outside_ladder"}


def test_ladders_split_by_device_and_latest_record_wins():
    records = synthetic_records() + synthetic_records(device="cuda")
    stale = dict(records[0], bits_per_byte=9.9)
    groups = ladders([stale] + records)
    assert sorted(g.device for g in groups) == ["cpu", "cuda"]
    assert all(len(g.dense) == len(SIZES) and len(g.compressed) == 2 * len(VARIANTS) for g in groups)
    assert all(g.fit is not None and g.fit.r2 > 0.9999 for g in groups)


def test_read_records_tolerates_a_truncated_last_line(tmp_path, capsys):
    path = tmp_path / "results.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in synthetic_records()[:3]) + '\n{"model": "cut')
    with pytest.warns(UserWarning, match="results.jsonl:4: skipped a partial"):
        assert [r["model"] for r in read_records(path)] == [dense_name(n) for n in SIZES[:3]]


def test_read_records_errors(tmp_path):
    with pytest.raises(UserError, match="no results file"):
        read_records(tmp_path / "missing.jsonl")
    path = tmp_path / "bad.jsonl"
    path.write_text('{"model": "a"}\nnot json\n{"model": "b"}\n')
    with pytest.warns(UserWarning, match="bad.jsonl:2"):
        assert [r["model"] for r in read_records(path)] == ["a", "b"]
