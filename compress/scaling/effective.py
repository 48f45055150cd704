"""Effective parameters: the dense size that would score what a compressed model scores.

Inside the ladder the answer is read off a *monotone interpolation of the measured dense
points* in log-parameter space (PCHIP, Fritsch–Carlson: it passes through every point and never
overshoots between them), not off a fitted law: a compressed model that scores exactly what its
source scores gets exactly its source's size (ratio 1.00), whatever the law's residuals are.
Beyond the ladder's ends the fitted law extrapolates, anchored at the end point so the curve
stays continuous, and the value is flagged `extrapolated_below` / `extrapolated_above`.

Everything runs on the fitted quantity y (falls with N: bits per byte, loss, log perplexity,
1 − accuracy). If the dense points are not monotone in N (noise, or a mis-trained member),
they are first made monotone by isotonic regression (pool-adjacent-violators) and the curve
says so in `note`.

    >>> from compress.scaling.fit import METRICS
    >>> curve = DenseCurve([1e4, 1e5, 1e6], [3.0, 2.5, 2.2], METRICS["bits_per_byte"])
    >>> curve.invert(2.5)
    (100000.0, 'exact')
    >>> n, flag = curve.invert(2.4); flag, 1e5 < n < 1e6
    ('interpolated', True)
"""

from __future__ import annotations

import math

import numpy as np
from scipy.interpolate import PchipInterpolator
from scipy.optimize import brentq

from compress.scaling.fit import MetricSpec, ScalingFit


def isotonic_decreasing(y: np.ndarray) -> np.ndarray:
    """Least-squares non-increasing fit to y (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [mean, weight]
    for value in y:
        blocks.append([float(value), 1.0])
        while len(blocks) > 1 and blocks[-2][0] < blocks[-1][0]:
            mean, weight = blocks.pop()
            prev = blocks[-1]
            prev[0] = (prev[0] * prev[1] + mean * weight) / (prev[1] + weight)
            prev[1] += weight
    return np.concatenate([np.full(int(w), m) for m, w in blocks])


class DenseCurve:
    """The dense ladder as a monotone curve y(log N), invertible; the fit extends it past the ends."""

    def __init__(self, n, metric_values, spec: MetricSpec, fit: ScalingFit | None = None):
        order = np.argsort(np.asarray(n, dtype=float))
        self.n = np.asarray(n, dtype=float)[order]
        self.values = np.asarray(metric_values, dtype=float)[order]
        self.spec, self.fit = spec, fit
        with np.errstate(all="ignore"):
            y = np.asarray(spec.to_quantity(self.values), dtype=float)
        self.note = ""
        if np.any(np.diff(y) >= 0):
            self.note = ("the dense points do not improve strictly with size; effective parameters use their "
                         "isotonic (monotone) fit")
            y = isotonic_decreasing(y)
            keep = np.concatenate([[True], np.diff(y) < 0])  # a flat run keeps its smallest member
            self.n, y, self.values = self.n[keep], y[keep], self.values[keep]
        self.y = y
        self.x = np.log(self.n)
        self._pchip = PchipInterpolator(self.x, y) if self.n.size >= 2 else None

    def quantity(self, value: float) -> float:
        with np.errstate(all="ignore"):
            return float(self.spec.to_quantity(np.asarray(value, dtype=float)))

    def invert(self, metric_value: float) -> tuple[float | None, str]:
        """(N, flag): 'exact' (equals a dense point), 'interpolated', 'extrapolated_below' /
        'extrapolated_above' (from the anchored law), 'beyond_asymptote' (no dense size reaches
        it), 'outside_ladder' (outside and no law to extrapolate with), 'no_metric'."""
        y = self.quantity(metric_value)
        if not math.isfinite(y) or self.n.size == 0:
            return None, "no_metric"
        hits = np.nonzero(self.y == y)[0]
        if hits.size:
            return float(self.n[hits[0]]), "exact"
        if self._pchip is not None and self.y[-1] < y < self.y[0]:
            i = int(np.searchsorted(-self.y, -y))  # y[i-1] > y > y[i]
            root = brentq(lambda x: float(self._pchip(x)) - y, self.x[i - 1], self.x[i], xtol=1e-12)
            return float(math.exp(root)), "interpolated"
        return self._extrapolate(y)

    def _extrapolate(self, y: float) -> tuple[float | None, str]:
        better = y < self.y[-1]
        end = -1 if better else 0
        flag = "extrapolated_above" if better else "extrapolated_below"
        if self.fit is None:
            return None, "outside_ladder"
        anchor_n, anchor_y = self.n[end], self.y[end]
        target = y - anchor_y + float(self.fit.quantity_at(anchor_n))  # same offset from the law as the end point
        gap = target - self.fit.E
        if gap <= 0:
            return None, "beyond_asymptote"
        return float(math.exp((math.log(self.fit.A) - math.log(gap)) / self.fit.alpha)), flag

    def interval(self, metric_interval) -> tuple[float | None, float | None]:
        """(N low, N high) from a metric interval [a, b] (a monotone map: ends go to ends)."""
        if metric_interval is None or len(metric_interval) != 2:
            return None, None
        ends = [self.invert(v)[0] for v in metric_interval]
        if any(e is None for e in ends):
            known = [e for e in ends if e is not None]
            worse_end = min(known) if known else None
            # the better end is beyond the asymptote: unbounded above
            return (worse_end, math.inf) if known else (None, None)
        return min(ends), max(ends)
