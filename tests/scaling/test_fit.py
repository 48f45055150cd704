import math

import numpy as np
import pytest

from compress.errors import ScaleCompressError, UserError
from compress.scaling.fit import fit_scaling

SIZES = np.array([2e4, 5e4, 1.5e5, 4e5, 1e6, 2.5e6])


def law(n, E=2.0, A=40.0, alpha=0.45):
    return E + A * np.asarray(n, dtype=float) ** -alpha


def test_recovers_exact_parameters_and_r2_of_one():
    fit = fit_scaling(SIZES, law(SIZES), metric="bits_per_byte")
    assert fit.form == "saturating" and fit.note == ""
    assert fit.E == pytest.approx(2.0, abs=1e-6)
    assert fit.A == pytest.approx(40.0, rel=1e-4)
    assert fit.alpha == pytest.approx(0.45, abs=1e-6)
    assert fit.r2 == pytest.approx(1.0, abs=1e-9)
    assert fit.predict(3e5) == pytest.approx(float(law(3e5)), rel=1e-9)


def test_recovers_chinchilla_like_parameters_under_noise():
    rng = np.random.default_rng(0)
    noisy = law(SIZES, 1.69, 406.4, 0.34) * (1 + rng.normal(0, 0.002, SIZES.size))
    fit = fit_scaling(SIZES, noisy, metric="loss")
    assert fit.form == "saturating"
    assert fit.E == pytest.approx(1.69, abs=0.15)
    assert fit.alpha == pytest.approx(0.34, abs=0.03)
    assert fit.r2 > 0.999


def test_robust_to_one_undertrained_member():
    values = law(SIZES)
    values[-1] += 0.08  # the largest member is worse than the trend (under-trained)
    fit = fit_scaling(SIZES, values)
    # six points, three parameters: the outlier still pulls, but the soft-L1 loss bounds its pull
    assert fit.alpha == pytest.approx(0.45, abs=0.1)
    assert fit.E == pytest.approx(2.0, abs=0.05)


def test_effective_params_inverts_predict():
    fit = fit_scaling(SIZES, law(SIZES))
    for n in (3e4, 7e5, 2.5e6):
        value, flag = fit.invert(fit.predict(n))
        assert value == pytest.approx(n, rel=1e-6)
        assert flag == "interpolated"
    assert fit.effective_params(float(law(7e5))) == pytest.approx(7e5, rel=1e-6)
    assert fit.invert(float(law(1e8)))[1] == "extrapolated_above"
    assert fit.invert(float(law(1e3)))[1] == "extrapolated_below"
    assert fit.invert(1.99) == (None, "beyond_asymptote")  # better than the floor E = 2
    assert fit.effective_params(2.0) is None


def test_accuracy_is_fitted_as_error_rate():
    acc = 1.0 - law(SIZES, 0.2, 30.0, 0.4)
    fit = fit_scaling(SIZES, acc, metric="acc")
    assert fit.quantity == "1 - acc"
    assert fit.E == pytest.approx(0.2, abs=1e-5) and fit.alpha == pytest.approx(0.4, abs=1e-5)
    assert fit.predict(1e5) == pytest.approx(1.0 - float(law(1e5, 0.2, 30.0, 0.4)), rel=1e-8)
    assert fit.effective_params(1.0 - float(law(3e5, 0.2, 30.0, 0.4))) == pytest.approx(3e5, rel=1e-6)
    assert fit.invert(0.85)[1] == "beyond_asymptote"  # acc above 1 − E is out of reach


def test_perplexity_is_fitted_in_log_space():
    fit = fit_scaling(SIZES, np.exp(law(SIZES, 1.5, 30.0, 0.4)), metric="perplexity")
    assert fit.quantity == "log(perplexity)"
    assert fit.E == pytest.approx(1.5, abs=1e-5)
    assert fit.predict(2e5) == pytest.approx(math.exp(float(law(2e5, 1.5, 30.0, 0.4))), rel=1e-8)


def test_three_points_fall_back_to_power_law():
    sizes = np.array([1e4, 1e5, 1e6])
    fit = fit_scaling(sizes, 50.0 * sizes ** -0.3, metric="loss")
    assert fit.form == "power_law" and fit.E == 0.0
    assert "too few" in fit.note
    assert fit.A == pytest.approx(50.0, rel=1e-6) and fit.alpha == pytest.approx(0.3, abs=1e-8)
    assert fit.effective_params(50.0 * 3e5 ** -0.3) == pytest.approx(3e5, rel=1e-6)


def test_negative_floor_falls_back_to_power_law():
    values = law(SIZES, -0.5, 3.0, 0.1)  # a saturating fit would need E < 0
    fit = fit_scaling(SIZES, values, metric="loss")
    assert fit.form == "power_law"
    assert "below zero" in fit.note or "bound" in fit.note
    assert fit.r2 > 0.98


def test_forced_saturating_failure_is_an_error():
    with pytest.raises(ScaleCompressError, match="saturating"):
        fit_scaling([1e4, 1e5, 1e6], [3.0, 2.0, 1.5], form="saturating")


def test_bad_inputs_are_user_errors():
    with pytest.raises(UserError, match="at least 3"):
        fit_scaling([1e4, 1e5], [3.0, 2.0])
    with pytest.raises(UserError, match="at least 3"):
        fit_scaling([1e4, 1e4, 1e5], [3.0, 3.1, 2.0])
    with pytest.raises(UserError, match="bits_per_byte, loss"):
        fit_scaling(SIZES, law(SIZES), metric="bleu")
    with pytest.raises(UserError, match="non_embedding, total"):
        fit_scaling(SIZES, law(SIZES), params="all")
    with pytest.raises(UserError, match="positive"):
        fit_scaling([0, 1e5, 1e6], [3.0, 2.0, 1.5])


def test_ladder_that_does_not_improve_is_reported():
    with pytest.raises(ScaleCompressError, match="does not improve"):
        fit_scaling([1e4, 1e5, 1e6], [2.0, 2.1, 2.2], metric="loss")


def test_to_dict_names_form_metric_and_params():
    fit = fit_scaling(SIZES, law(SIZES), params="total")
    data = fit.to_dict()
    assert {"E", "A", "alpha", "r2", "form", "metric", "params", "quantity", "n_points"} <= set(data)
    assert data["params"] == "total" and data["n_points"] == 6
    assert "N = total params" in fit.describe()
