"""The project's own metrics as local `evaluate` modules, loaded by path (no Hub access).

The benchmark computes the same numbers with `compress.bench.accuracy.scores` directly (no
`datasets`/`evaluate` import on the hot path); these modules let `evaluate` users combine them
with other metrics.

    >>> from compress.bench.accuracy.metrics import load_metric, METRICS
    >>> METRICS
    ('token_perplexity', 'multiple_choice')
    >>> # load_metric("multiple_choice").compute(loglikelihoods=..., byte_lengths=..., labels=...)
"""

from __future__ import annotations

from pathlib import Path

from compress.errors import UserError

METRICS = ("token_perplexity", "multiple_choice")


def metric_path(name: str) -> Path:
    """Path of the metric script that `evaluate.load` takes."""
    if name not in METRICS:
        raise UserError(f"unknown metric {name!r}; allowed: {', '.join(METRICS)}")
    return Path(__file__).with_name(f"{name}.py")


def load_metric(name: str, **kwargs):
    """`evaluate.load` of one of our metrics by its local path."""
    import evaluate

    return evaluate.load(str(metric_path(name)), **kwargs)
