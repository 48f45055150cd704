"""Error bars from per-window values: bootstrap intervals of ratio metrics, paired differences.

The perplexity windows are contiguous, non-overlapping spans of the text, so resampling whole
windows is a block bootstrap over tokens (Künsch 1989): the dependence between neighbouring
tokens stays inside a block. A ratio metric such as bits per byte (Σ NLL / Σ bytes) is
re-estimated on each resample as the ratio of the resampled sums, which is what the metric
itself is (not a mean of per-window ratios).

*Paired* differences resample the same windows for both models, so the noise they share (a
hard passage is hard for both) cancels: two models whose separate intervals overlap widely can
still differ clearly, and this is the test that says so. Overlapping intervals are the wrong
test.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> nll = rng.normal(100, 10, 64); nbytes = np.full(64, 50.0)
    >>> est = ratio_interval(nll, nbytes)
    >>> round(est.value, 3) == round(nll.sum() / nbytes.sum(), 3), est.low < est.value < est.high
    (True, True)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

N_BOOT = 2000
SEED = 12345
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """An estimate with its bootstrap standard error and percentile interval."""

    value: float
    se: float
    low: float
    high: float
    level: float = LEVEL
    n: int = 0  # resampled units (windows or items)

    def includes(self, x: float) -> bool:
        return self.low <= x <= self.high

    def to_dict(self) -> dict:
        return asdict(self)


def _indices(n: int, n_boot: int, seed: int, block: int) -> np.ndarray:
    """[n_boot, n] resampled unit indices; with block > 1, moving blocks of `block` units."""
    rng = np.random.default_rng(seed)
    if block <= 1 or n <= block:
        return rng.integers(0, n, size=(n_boot, n))
    starts = rng.integers(0, n - block + 1, size=(n_boot, math.ceil(n / block)))
    rows = (starts[:, :, None] + np.arange(block)[None, None, :]).reshape(n_boot, -1)
    return rows[:, :n]


def _interval(value: float, draws: np.ndarray, level: float, n: int) -> Interval:
    draws = draws[np.isfinite(draws)]
    if draws.size < 2:
        return Interval(value, float("nan"), float("nan"), float("nan"), level, n)
    tail = (1 - level) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    return Interval(float(value), float(draws.std(ddof=1)), float(low), float(high), level, n)


def ratio_interval(numerator, denominator, *, scale: float = 1.0, transform=None, n_boot: int = N_BOOT,
                   seed: int = SEED, block: int = 1, level: float = LEVEL) -> Interval:
    """Bootstrap interval of transform(scale · Σ numerator / Σ denominator) over resampled units.

        >>> ratio_interval([1.0, 1.0], [1.0, 1.0]).value
        1.0
    """
    num = np.asarray(numerator, dtype=float)
    den = np.asarray(denominator, dtype=float)
    if num.shape != den.shape or num.ndim != 1 or num.size == 0:
        raise ValueError(f"ratio_interval: need two equal 1-D arrays, got {num.shape} and {den.shape}")
    f = transform or (lambda v: v)
    value = float(f(scale * num.sum() / den.sum()))
    idx = _indices(num.size, n_boot, seed, block)
    with np.errstate(all="ignore"):
        draws = f(scale * num[idx].sum(axis=1) / den[idx].sum(axis=1))
    return _interval(value, np.asarray(draws, dtype=float), level, num.size)


def mean_interval(values, **kwargs) -> Interval:
    """Bootstrap interval of a mean (e.g. accuracy over items: values 0/1)."""
    values = np.asarray(values, dtype=float)
    return ratio_interval(values, np.ones_like(values), **kwargs)


def paired_difference(numerator_a, numerator_b, denominator, *, scale: float = 1.0, n_boot: int = N_BOOT,
                      seed: int = SEED, block: int = 1, level: float = LEVEL) -> Interval:
    """Interval of scale·(Σa − Σb)/Σden with a and b resampled on the same units (a paired bootstrap).

    For bits per byte of a compressed model (a) against its dense source (b) on the same windows:
    positive = the compressed model is worse. `includes(0)` = indistinguishable at this level.
    """
    a = np.asarray(numerator_a, dtype=float)
    b = np.asarray(numerator_b, dtype=float)
    den = np.asarray(denominator, dtype=float)
    if not (a.shape == b.shape == den.shape) or a.ndim != 1 or a.size == 0:
        raise ValueError(f"paired_difference: the two models were scored on different windows "
                         f"({a.shape}, {b.shape}, {den.shape}); bench both on the same text and scenario")
    value = float(scale * (a.sum() - b.sum()) / den.sum())
    idx = _indices(a.size, n_boot, seed, block)
    draws = scale * (a[idx].sum(axis=1) - b[idx].sum(axis=1)) / den[idx].sum(axis=1)
    return _interval(value, draws, level, a.size)


def quantile_spread(samples, low: float = 0.1, high: float = 0.9) -> tuple[float, float] | None:
    """(p10, p90) of timing samples, or None without samples."""
    values = np.asarray([s for s in samples if s is not None], dtype=float)
    if values.size == 0:
        return None
    return float(np.quantile(values, low)), float(np.quantile(values, high))


def perplexity_intervals(windows: dict) -> dict:
    """Record fields with the error bars of loss, perplexity and bits per byte from per-window sums."""
    nll, tokens, nbytes = windows["nll"], windows["tokens"], windows["bytes"]
    if len(nll) < 2:
        return {}
    loss = ratio_interval(nll, tokens)
    ppl = ratio_interval(nll, tokens, transform=np.exp)
    bpb = ratio_interval(nll, nbytes, scale=1 / math.log(2))
    return {"loss_se": loss.se, "loss_ci": [loss.low, loss.high], "perplexity_ci": [ppl.low, ppl.high],
            "bits_per_byte_se": bpb.se, "bits_per_byte_ci": [bpb.low, bpb.high], "eval_windows": len(nll)}


def fidelity_intervals(windows: dict) -> dict:
    """Error bars of the mean KL and top-1 agreement (per-window sums over predicted positions)."""
    if len(windows["kl"]) < 2:
        return {}
    kl = ratio_interval(windows["kl"], windows["tokens"])
    top1 = ratio_interval(windows["top1"], windows["tokens"])
    return {"kl_mean_ci": [kl.low, kl.high], "top1_agreement_ci": [top1.low, top1.high]}
