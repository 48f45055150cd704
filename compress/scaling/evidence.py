"""Uncertainty of one record's metric and of its difference from dense models, from per-window values.

Records benchmarked on the same windows (same text, tokenizer and scenario) are compared with a
*paired* block bootstrap: per window, the compressed model's NLL against the dense one's, or
against a mix of two dense neighbours when the comparison is at a cost between two dense sizes
(the dense metric at that cost is interpolated, so its per-window NLL is interpolated the same
way). Without per-window values (older records), intervals fall back to the record's stored
standard errors combined in quadrature, and say so.

    >>> diff = paired_vs(compressed_record, [(1.0, dense_record)], "bits_per_byte")  # doctest: +SKIP
    >>> diff["indistinguishable"]  # doctest: +SKIP
    True
"""

from __future__ import annotations

import math

import numpy as np

from compress.bench.accuracy.uncertainty import paired_difference
from compress.scaling.fit import metric_spec
from compress.units import is_number

Z95 = 1.959964


def metric_se(record: dict, metric: str) -> float | None:
    """The standard error of a record's metric (perplexity: of the loss, the log scale)."""
    key = {"perplexity": "loss_se"}.get(metric, f"{metric}_se")
    value = record.get(key)
    return float(value) if is_number(value) else None


def metric_ci(record: dict, metric: str) -> list[float] | None:
    value = record.get(f"{metric}_ci")
    return [float(v) for v in value] if isinstance(value, (list, tuple)) and len(value) == 2 else None


def _per_unit(record: dict, metric: str):
    """(numerators, denominators, scale) whose ratio of sums is the metric (loss-like), or None."""
    windows = record.get("windows") or {}
    if metric in ("bits_per_byte", "loss", "perplexity") and windows.get("nll"):
        den = windows["bytes"] if metric == "bits_per_byte" else windows["tokens"]
        return np.asarray(windows["nll"], float), np.asarray(den, float), (1 / math.log(2) if metric == "bits_per_byte" else 1.0)
    if metric in ("acc", "acc_norm") and record.get("choice_correct") is not None and metric == "acc":
        correct = np.asarray(record["choice_correct"], float)
        return 1.0 - correct, np.ones_like(correct), 1.0  # error rate: lower is better, like a loss
    return None


def paired_vs(record: dict, dense_mix: list[tuple[float, dict]], metric: str) -> dict:
    """Signed difference (positive = `record` better) from a weighted mix of dense records, with a 95% interval.

    `dense_mix`: [(weight, dense record)], weights summing to 1 (one record, or two neighbours).
    Returns {"margin", "low", "high", "indistinguishable", "method"}.
    """
    spec = metric_spec(metric)
    mine = _per_unit(record, metric)
    theirs = [(w, _per_unit(r, metric)) for w, r in dense_mix]
    if mine is not None and all(t is not None and t[0].shape == mine[0].shape and np.array_equal(t[1], mine[1])
                                for _, t in theirs):
        mixed = sum(w * t[0] for w, t in theirs)
        diff = paired_difference(mixed, mine[0], mine[1], scale=mine[2])  # dense − compressed: > 0 = better
        return {"margin": diff.value, "low": diff.low, "high": diff.high,
                "indistinguishable": diff.includes(0.0), "method": "paired block bootstrap over windows",
                "scale": "loss" if metric == "perplexity" else metric}
    sign = 1.0 if spec.higher_is_better else -1.0
    value = record.get(metric)
    at = sum(w * r.get(metric) for w, r in dense_mix) if all(is_number(r.get(metric)) for _, r in dense_mix) else None
    ses = [metric_se(record, metric)] + [metric_se(r, metric) for _, r in dense_mix]
    if not (is_number(value) and is_number(at)) or any(s is None for s in ses) or metric == "perplexity":
        return {"margin": None if not (is_number(value) and is_number(at)) else sign * (value - at), "low": None,
                "high": None, "indistinguishable": None, "method": "no per-window values: no interval"}
    margin = sign * (value - at)
    se = math.sqrt(ses[0] ** 2 + sum((w * s) ** 2 for (w, _), s in zip(dense_mix, ses[1:])))
    return {"margin": margin, "low": margin - Z95 * se, "high": margin + Z95 * se,
            "indistinguishable": abs(margin) <= Z95 * se, "method": "unpaired: standard errors in quadrature",
            "scale": metric}
