import pytest
from tests.scaling.scaling_synthetic import SIZES, dense_name, synthetic_records, total_params

from compress.errors import UserError
from compress.scaling.frontier import NothingFits, make_budget, pareto, recommend
from compress.units import format_bytes, format_count, parse_size


def test_pareto_of_a_small_known_set():
    rows = [
        {"name": "a", "bits_per_byte": 3.0, "weight_bytes": 10},
        {"name": "b", "bits_per_byte": 3.5, "weight_bytes": 20},  # dominated by a
        {"name": "c", "bits_per_byte": 2.0, "weight_bytes": 40},
        {"name": "d", "bits_per_byte": 2.0, "weight_bytes": 50},  # same metric, dearer
        {"name": "e", "bits_per_byte": 2.5, "weight_bytes": 30},
        {"name": "f", "bits_per_byte": None, "weight_bytes": 1},  # not measured: ignored
    ]
    assert [r["name"] for r in pareto(rows, "bits_per_byte", "weight_bytes")] == ["a", "e", "c"]


def test_pareto_for_higher_is_better():
    rows = [{"acc": 0.5, "weight_bytes": 10}, {"acc": 0.4, "weight_bytes": 20}, {"acc": 0.7, "weight_bytes": 30}]
    assert [r["acc"] for r in pareto(rows, "acc", "weight_bytes")] == [0.5, 0.7]


def test_recommend_returns_the_known_best_and_binding_constraint():
    rec = recommend(synthetic_records(), max_weight_bytes=parse_size("2MB"))
    assert (rec.pick["model"], rec.pick["variant"]) == (dense_name(SIZES[-1]), "rtn-w4-g64")
    assert rec.binding == ["max_weight_bytes"]
    assert (rec.blocked["model"], rec.blocked["variant"]) == (dense_name(SIZES[-1]), "rtn-w8")
    assert rec.blocked["exceeds"]["max_weight_bytes"]["limit"] == 2e6
    assert [r["variant"] for r in rec.runner_ups] == ["rtn-w8", "rtn-w3-g64", "rtn-w4-g64"]
    assert rec.n_candidates == 16 and rec.n_within_budget == 8
    assert "max_weight_bytes" in rec.reason and "1.62 MB of 2 MB" in rec.reason


@pytest.mark.parametrize("cost", ["weight_bytes", "decode_ms_per_token", "energy_j_per_token"])
def test_recommend_agrees_with_the_pareto_set(cost):
    records = synthetic_records()
    front = pareto(records, "bits_per_byte", cost)
    argument = {"weight_bytes": "max_weight_bytes", "decode_ms_per_token": "max_decode_ms",
                "energy_j_per_token": "max_energy_j_per_token"}[cost]
    for member in front:
        # A budget just above a frontier member's cost must pick exactly that member.
        rec = recommend(records, **{argument: member[cost] * 1.0001})
        assert (rec.pick["model"], rec.pick["variant"]) == (member["model"], member["variant"])


def test_two_constraints_pick_and_binding():
    rec = recommend(synthetic_records(), max_weight_bytes=2e6, max_decode_ms=0.5)
    assert (rec.pick["model"], rec.pick["variant"]) == (dense_name(SIZES[-2]), "rtn-w4-g64")
    assert rec.binding == ["max_decode_ms"]


def test_unmeasured_cost_cannot_be_shown_to_fit():
    records = synthetic_records()
    for r in records:
        if r["variant"] == "rtn-w4-g64" and r["model"] == dense_name(SIZES[-1]):
            r["decode_ms_per_token"] = None
    rec = recommend(records, max_weight_bytes=2e6, max_decode_ms=10.0)
    assert (rec.pick["model"], rec.pick["variant"]) == (dense_name(SIZES[-2]), "rtn-w8")
    rec = recommend(records, max_weight_bytes=2e6)  # latency not limited: the record competes again
    assert (rec.pick["model"], rec.pick["variant"]) == (dense_name(SIZES[-1]), "rtn-w4-g64")


def test_no_limits_picks_the_best_overall_and_nothing_binds():
    rec = recommend(synthetic_records())
    assert (rec.pick["model"], rec.pick["variant"]) == (dense_name(SIZES[-1]), "dense")
    assert rec.binding == [] and rec.blocked is None


def test_accuracy_ranks_highest_first():
    rec = recommend(synthetic_records(), max_weight_bytes=1e6, metric="acc")
    assert rec.higher_is_better
    assert (rec.pick["model"], rec.pick["variant"]) == (dense_name(SIZES[-2]), "rtn-w4-g64")


def test_nothing_fits_names_what_the_smallest_model_needs():
    with pytest.raises(NothingFits) as caught:
        recommend(synthetic_records(), max_weight_bytes=parse_size("100k"))
    smallest = format_bytes(4 * total_params(SIZES[0]))
    assert str(caught.value).startswith(f"nothing fits: the smallest model, {dense_name(SIZES[0])} dense on cpu, "
                                        f"needs {smallest} > --max-weight-bytes 100 kB")
    assert caught.value.exit_code == 1 and "\n" not in str(caught.value)


def test_unmeasured_metric_and_bad_limits_are_user_errors():
    with pytest.raises(UserError, match="measured metrics: .*bits_per_byte"):
        recommend(synthetic_records(), metric="acc_norm")
    with pytest.raises(UserError, match="--max-decode-ms"):
        recommend(synthetic_records(), max_decode_ms=-1)
    with pytest.raises(UserError, match="--max-weight-bytes"):
        make_budget(max_weight_bytes=0)


def test_parse_size():
    assert parse_size("2MB") == 2_000_000
    assert parse_size("1.5GiB") == 1_610_612_736
    assert parse_size("500k") == 500_000
    assert parse_size("2e6") == 2_000_000
    assert parse_size("1_000") == 1000
    assert parse_size(" 64 KiB ") == 65536
    assert parse_size(3.0) == 3
    for bad in ("2 megs", "MB", "-1MB", "0"):
        with pytest.raises(UserError, match="--max-weight-bytes"):
            parse_size(bad)


def test_human_formats():
    assert format_bytes(1_616_500) == "1.62 MB" and format_bytes(512) == "512 B" and format_bytes(None) == "—"
    assert format_count(779_000) == "779K" and format_count(1.77e6) == "1.77M"


def test_recommend_says_when_the_smaller_dense_model_is_as_good_within_noise():
    from compress.scaling.frontier import recommend

    windows = {"nll": [100.0, 120.0, 90.0, 110.0], "tokens": [50] * 4, "bytes": [200] * 4}
    dense = {"model": "small", "variant": "dense", "device": "cpu", "scenario": "s", "weight_bytes": 100,
             "bits_per_byte": 0.6, "windows": windows}
    noisy = {"nll": [101.0, 118.0, 92.0, 109.5], "tokens": [50] * 4, "bytes": [200] * 4}
    compressed = {"model": "big", "variant": "rtn-w4", "device": "cpu", "scenario": "s", "weight_bytes": 90,
                  "bits_per_byte": 0.599, "windows": noisy}
    rec = recommend([dense, compressed], max_weight_bytes=150)
    assert rec.pick["model"] == "big" and rec.dense_alternative["model"] == "small"
    assert rec.dense_alternative["indistinguishable"] and "smaller dense model" in rec.reason
