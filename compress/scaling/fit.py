"""Fit the dense ladder: L(N) = E + A·N^(−α), with a plain power law L = A·N^(−α) as fallback.

What is fitted depends on the metric, so that the fitted quantity always falls with size toward
an irreducible floor E ≥ 0:

- ``loss``, ``bits_per_byte``: the metric itself.
- ``perplexity``: log(perplexity), i.e. the loss in nats, the scale on which the law is stated
  (Kaplan, Chinchilla). ``predict`` returns perplexity again.
- ``acc``, ``acc_norm`` (higher is better): the error rate 1 − acc. ``predict`` returns acc.

The saturating form is fitted with robust least squares (soft-L1) in a well-conditioned
parametrisation: N is divided by the geometric mean of the ladder's sizes and A is fitted as a
logarithm. It needs at least 4 points (3 points fit 3 parameters exactly, so R² says nothing);
with 3 points, or when it fails (no convergence, E < 0, α at its bound), the plain power law is
fitted in log-log space and ``ScalingFit.note`` says why.

    >>> fit = fit_scaling([1e4, 1e5, 1e6, 1e7], [4.0 + 30 * n ** -0.5 for n in (1e4, 1e5, 1e6, 1e7)])
    >>> fit.form, round(fit.E, 3), round(fit.alpha, 3)
    ('saturating', 4.0, 0.5)
    >>> round(fit.effective_params(4.0 + 30 * 3e5 ** -0.5))
    300000
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
from scipy.optimize import least_squares

from compress.errors import ScaleCompressError, UserError

PARAM_KINDS = ("non_embedding", "total")
_ALPHA_MAX = 5.0  # exponents seen in practice are 0.05–1; hitting 5 means the fit ran away
_SOFT_L1_SCALE = 0.02  # residuals beyond 2% of the metric's spread count linearly (robust)


@dataclass(frozen=True)
class MetricSpec:
    """How one metric maps to the fitted quantity y (which falls with N) and back."""

    name: str
    label: str
    higher_is_better: bool
    quantity: str
    to_quantity: Callable[[np.ndarray], np.ndarray]
    from_quantity: Callable[[np.ndarray], np.ndarray]


def _identity(values):
    return values


METRICS: dict[str, MetricSpec] = {
    "bits_per_byte": MetricSpec("bits_per_byte", "bits per byte", False, "bits_per_byte", _identity, _identity),
    "loss": MetricSpec("loss", "loss (nats/token)", False, "loss", _identity, _identity),
    "perplexity": MetricSpec("perplexity", "token perplexity", False, "log(perplexity)", np.log, np.exp),
    "acc": MetricSpec("acc", "accuracy", True, "1 - acc", lambda v: 1.0 - v, lambda y: 1.0 - y),
    "acc_norm": MetricSpec("acc_norm", "accuracy (length-normalised)", True, "1 - acc_norm",
                           lambda v: 1.0 - v, lambda y: 1.0 - y),
}


def metric_spec(metric: str) -> MetricSpec:
    """The spec of `metric`, or a UserError listing the metrics that can be fitted."""
    if metric not in METRICS:
        raise UserError(f"metric: '{metric}' is not supported; use one of {', '.join(METRICS)}")
    return METRICS[metric]


def params_key(params: str) -> str:
    """The record key holding the chosen parameter count ('non_embedding' or 'total')."""
    if params not in PARAM_KINDS:
        raise UserError(f"params: '{params}' is not a parameter count; use one of {', '.join(PARAM_KINDS)}")
    return "non_embedding_params" if params == "non_embedding" else "params"


@dataclass(frozen=True)
class ScalingFit:
    """A fitted curve y(N) = E + A·N^(−α) on the fitted quantity of `metric` (E = 0 for a power law)."""

    metric: str
    params: str
    form: str
    E: float
    A: float
    alpha: float
    r2: float
    n_points: int
    n_min: float
    n_max: float
    quantity: str
    note: str = ""

    def quantity_at(self, n):
        """The fitted quantity (e.g. 1 − acc) at parameter count(s) n."""
        n = np.asarray(n, dtype=float)
        return self.E + np.exp(math.log(self.A) - self.alpha * np.log(n))

    def predict(self, n):
        """The metric predicted at parameter count(s) n (a float for a scalar n)."""
        values = METRICS[self.metric].from_quantity(self.quantity_at(n))
        return float(values) if np.ndim(values) == 0 else values

    def invert(self, metric_value: float) -> tuple[float | None, str]:
        """(N at which the curve reaches `metric_value`, flag).

        Flags: 'interpolated' (inside the ladder's range), 'extrapolated_below' /
        'extrapolated_above' (outside it), 'beyond_asymptote' (better than the curve's limit E:
        no dense size reaches it; N is None).
        """
        with np.errstate(all="ignore"):
            y = float(METRICS[self.metric].to_quantity(np.asarray(metric_value, dtype=float)))
        gap = y - self.E
        if not math.isfinite(y) or gap <= 0:
            return None, "beyond_asymptote"
        n = math.exp((math.log(self.A) - math.log(gap)) / self.alpha)
        if n < self.n_min * (1 - 1e-9):
            return n, "extrapolated_below"
        if n > self.n_max * (1 + 1e-9):
            return n, "extrapolated_above"
        return n, "interpolated"

    def effective_params(self, metric_value: float) -> float | None:
        """The dense size whose predicted metric equals `metric_value`; None beyond the asymptote."""
        return self.invert(metric_value)[0]

    def to_dict(self) -> dict:
        """Plain JSON-able dict of the fit (parameters in original N units)."""
        return asdict(self)

    def describe(self) -> str:
        """One line: the law with its numbers, e.g. 'bits_per_byte = 2.1 + 30·N^-0.5 (R² 0.998)'."""
        core = f"{self.A:.4g}·N^(−{self.alpha:.3f})"
        law = f"{core}" if self.form == "power_law" else f"{self.E:.4g} + {core}"
        return f"{self.quantity} = {law}  (R² {self.r2:.4f}, {self.form}, N = {self.params} params)"


def fit_scaling(points_n, points_metric, *, metric: str = "bits_per_byte", params: str = "non_embedding",
                form: str = "auto") -> ScalingFit:
    """Fit the dense ladder's metric against its parameter count.

    `form`: 'auto' (saturating, falling back to a power law), 'saturating' or 'power_law'.
    `params` only labels the fit (which count the caller passed as N).

        >>> fit = fit_scaling([1e4, 1e5, 1e6], [3.0, 2.0, 1.5], metric="loss")
        >>> fit.form
        'power_law'
    """
    spec = metric_spec(metric)
    params_key(params)
    if form not in ("auto", "saturating", "power_law"):
        raise UserError(f"form: '{form}' is not a curve form; use one of auto, saturating, power_law")
    n = np.asarray(points_n, dtype=float)
    values = np.asarray(points_metric, dtype=float)
    if n.shape != values.shape or n.ndim != 1:
        raise UserError(f"fit: got {n.size} sizes and {values.size} metric values; pass one value per size")
    if not (np.all(np.isfinite(n)) and np.all(n > 0)):
        raise UserError("fit: parameter counts must be positive numbers; check the ladder's records")
    with np.errstate(all="ignore"):
        y = spec.to_quantity(values)
    if not np.all(np.isfinite(y)):
        raise UserError(f"fit: {metric} values must be finite (got {values.tolist()}); check the ladder's records")
    if np.unique(n).size < 3:
        raise UserError(f"fit: need at least 3 dense models of different sizes to fit a curve, got "
                        f"{np.unique(n).size}; add ladder members (scalecompress ladder) and benchmark them")

    note = ""
    if form in ("auto", "saturating"):
        saturating, note = _fit_saturating(n, y)
        if saturating is not None:
            return _result(spec, params, "saturating", *saturating, n, y, "")
        if form == "saturating":
            raise ScaleCompressError(f"fit: the saturating form E + A·N^-α failed: {note}; use form='auto' "
                                     "to fall back to a plain power law")
    E, A, alpha = _fit_power_law(n, y, metric)
    return _result(spec, params, "power_law", E, A, alpha, n, y, note)


def _result(spec, params, form, E, A, alpha, n, y, note) -> ScalingFit:
    predicted = E + np.exp(math.log(A) - alpha * np.log(n))
    total = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum((y - predicted) ** 2)) / total if total > 0 else float("nan")
    return ScalingFit(metric=spec.name, params=params, form=form, E=float(E), A=float(A), alpha=float(alpha),
                      r2=r2, n_points=int(n.size), n_min=float(n.min()), n_max=float(n.max()),
                      quantity=spec.quantity, note=note)


def _fit_saturating(n: np.ndarray, y: np.ndarray):
    """((E, A, α), '') or (None, why it is ill-posed)."""
    if n.size < 4:
        return None, f"{n.size} points are too few for the 3-parameter saturating form (need 4)"
    if np.any(y <= 0):
        return None, "the fitted quantity has values ≤ 0"
    n_ref = float(np.exp(np.mean(np.log(n))))
    x = np.log(n / n_ref)
    spread = float(np.ptp(y)) or float(np.abs(y).mean())

    def residuals(theta):
        E, log_a, alpha = theta
        return (E + np.exp(log_a - alpha * x) - y) / spread

    best = None
    # Several starts: for each guess of E, log(y − E) vs log N is a line giving α and log A.
    for fraction in (0.02, 0.2, 0.5, 0.9, 0.99):
        E0 = float(y.min()) * (1 - fraction)
        slope, intercept = np.polyfit(x, np.log(y - E0), 1)
        theta0 = [E0, intercept, float(np.clip(-slope, 1e-3, _ALPHA_MAX - 0.1))]
        try:
            result = least_squares(residuals, theta0, loss="soft_l1", f_scale=_SOFT_L1_SCALE,
                                   bounds=([-np.inf, -50.0, 0.0], [np.inf, 50.0, _ALPHA_MAX]), max_nfev=2000)
        except (ValueError, FloatingPointError):
            continue
        if result.success and np.all(np.isfinite(result.x)) and (best is None or result.cost < best.cost):
            best = result
    if best is None:
        return None, "the robust least-squares fit did not converge"
    E, log_a, alpha = (float(v) for v in best.x)
    if E < 0:
        return None, f"the saturating fit put the floor E below zero ({E:.3g})"
    if alpha >= _ALPHA_MAX * 0.999 or alpha <= 1e-6:
        return None, f"the exponent ran to its bound (α = {alpha:.3g})"
    # log_a was fitted at N/n_ref; in original units A = exp(log_a)·n_ref^α.
    return (E, math.exp(log_a + alpha * math.log(n_ref)), alpha), ""


def _fit_power_law(n: np.ndarray, y: np.ndarray, metric: str):
    """(0, A, α) from a robust line fit of log y against log N."""
    if np.any(y <= 0):
        raise ScaleCompressError(f"fit: a power law needs a positive fitted quantity, but some {metric} values "
                                 "map to ≤ 0 (e.g. acc = 1); fit another metric with --metric")
    log_n, log_y = np.log(n), np.log(y)
    center = float(log_n.mean())
    slope, intercept = np.polyfit(log_n - center, log_y, 1)

    def residuals(theta):
        return theta[0] + theta[1] * (log_n - center) - log_y

    result = least_squares(residuals, [intercept, slope], loss="soft_l1", f_scale=0.01)
    intercept, slope = (float(v) for v in result.x) if result.success else (intercept, slope)
    alpha = -slope
    if alpha <= 0:
        raise ScaleCompressError(f"fit: the dense ladder's {metric} does not improve with size (power-law "
                                 f"α = {alpha:.3g}); check that the ladder members are trained and benchmarked alike")
    return 0.0, math.exp(intercept - slope * center), alpha
