"""Effective parameters from the measured dense points; the Chinchilla law; the k-bit analysis."""

import math

import numpy as np
import pytest

from compress.scaling.chinchilla import fit_chinchilla, identifiability
from compress.scaling.effective import DenseCurve, isotonic_decreasing
from compress.scaling.fit import METRICS, fit_scaling
from compress.scaling.kbit import kbit_analysis

N = [1e4, 3e4, 1e5, 3e5, 1e6]


def law(n):
    return 2.0 + 40 * np.asarray(n, dtype=float) ** -0.45


def test_an_unchanged_model_gets_exactly_its_sources_size_at_every_member():
    values = law(N) + np.array([0.01, -0.01, 0.02, -0.02, 0.0])  # noisy, so the law misses the points
    curve = DenseCurve(N, values, METRICS["bits_per_byte"], fit_scaling(N, values))
    for n, value in zip(N, values):
        assert curve.invert(value) == (n, "exact")


def test_between_points_the_curve_is_monotone_and_beyond_it_is_flagged_extrapolated():
    values = law(N)
    curve = DenseCurve(N, values, METRICS["bits_per_byte"], fit_scaling(N, values))
    probes = np.linspace(values[0] - 1e-6, values[-1] + 1e-6, 40)
    found = [curve.invert(v)[0] for v in probes]
    assert all(a < b for a, b in zip(found, found[1:]))
    assert curve.invert(values[-1] - 0.01)[1] == "extrapolated_above"
    assert curve.invert(values[0] + 0.01)[1] == "extrapolated_below"
    n_low, n_high = curve.interval([values[2] - 0.005, values[2] + 0.005])
    assert n_low < N[2] < n_high


def test_non_monotone_ladders_use_the_isotonic_fit_and_say_so():
    assert isotonic_decreasing(np.array([3.0, 2.0, 2.2, 1.0])).tolist() == [3.0, 2.1, 2.1, 1.0]
    curve = DenseCurve(N, [3.0, 2.0, 2.2, 1.5, 1.0], METRICS["bits_per_byte"])
    assert "isotonic" in curve.note


def test_chinchilla_fit_recovers_a_known_law_from_noisy_data():
    rng = np.random.default_rng(0)
    n, d = np.meshgrid([1e5, 3e5, 1e6, 3e6, 1e7], [1e7, 1e8, 1e9])
    truth = dict(E=1.69, A=406.4, alpha=0.34, B=410.7, beta=0.28)
    loss = truth["E"] + truth["A"] * n ** -truth["alpha"] + truth["B"] * d ** -truth["beta"]
    fit = fit_chinchilla(n.ravel(), d.ravel(), (loss * np.exp(rng.normal(0, 5e-4, loss.shape))).ravel())
    assert fit.alpha == pytest.approx(truth["alpha"], abs=0.01) and fit.beta == pytest.approx(truth["beta"], abs=0.01)
    assert fit.E == pytest.approx(truth["E"], rel=0.03)
    assert fit.A == pytest.approx(truth["A"], rel=0.1) and fit.B == pytest.approx(truth["B"], rel=0.1)
    assert float(fit.predict(1e6, 1e8)) == pytest.approx(1.69 + 406.4 * 1e6 ** -0.34 + 410.7 * 1e8 ** -0.28, rel=2e-3)


def test_chinchilla_identifiability_on_fixed_and_rule_driven_budgets():
    n = np.array([1e4, 3e4, 1e5, 3e5, 1e6, 3e6])
    fixed, why = identifiability(n, np.full(6, 3e11))
    assert not fixed and "fixed D" in why
    ruled, why = identifiability(n, 1.2e6 * np.sqrt(n / 1.5e5))
    assert not ruled and "function of N" in why
    extra_n = np.concatenate([n, [1e5, 1e5]])
    extra_d = np.concatenate([1.2e6 * np.sqrt(n / 1.5e5), [0.5 * 1.2e6 * math.sqrt(1e5 / 1.5e5), 2 * 1.2e6 * math.sqrt(1e5 / 1.5e5)]])
    assert identifiability(extra_n, extra_d)[0]


def _kbit_records():
    out = []
    for n in (1e5, 3e5, 1e6, 3e6):
        out.append({"model": f"m{n:g}", "variant": "dense", "weight_bytes": 4 * n, "bits_per_byte": float(law(n))})
        for bits, penalty in ((8, 0.0), (4, 0.01), (3, 0.06), (2, 0.6)):
            out.append({"model": f"m{n:g}", "variant": f"w{bits}", "method": "rtn", "bits": bits, "group_size": 64,
                        "weight_bytes": n * (bits + 0.5) / 8, "bits_per_byte": float(law(n)) + penalty})
    return out


def test_kbit_analysis_names_the_precision_that_wins_most_bit_budgets():
    result = kbit_analysis(_kbit_records(), "bits_per_byte")
    assert result["optimal"] == "4-bit (g64)" and "4-bit (g64)" in result["evidence"]
    assert set(result["curves"]) == {"fp32 (dense)", "8-bit (g64)", "4-bit (g64)", "3-bit (g64)", "2-bit (g64)"}
