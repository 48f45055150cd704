"""The accuracy gate of a recipe (`bench.max_ppl_increase`): exit 3 when a variant loses too much.

A gate that cannot evaluate its metric fails too: a NaN or missing perplexity never passes.

    >>> dense = {"model": "m", "variant": "dense", "device": "cpu", "perplexity": 10.0}
    >>> check_gate([dense, {"model": "m", "variant": "w4", "source_model": "m", "device": "cpu", "perplexity": None}], 0.05)
    ["m / w4: perplexity is missing or not finite (not measured: add 'perplexity' to bench.tasks); the gate cannot pass it"]
"""

from __future__ import annotations

import math
from typing import Any

DENSE = "dense"


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def check_gate(records: list[dict[str, Any]], max_increase: float | None) -> list[str]:
    """Variants whose perplexity rose by more than `max_increase` over their dense source, and
    variants the gate cannot judge (perplexity missing or not finite, or no dense record):
    a gate that cannot evaluate its metric fails, saying why."""
    if max_increase is None:
        return []
    dense = {(r.get("model"), r.get("device")): r for r in records if r.get("variant") == DENSE}
    failures = []
    for record in records:
        if record.get("variant") == DENSE:
            continue
        name = f"{record.get('model')} / {record.get('variant')}"
        base = dense.get((record.get("source_model"), record.get("device")))
        if base is None:
            failures.append(f"{name}: no dense record of {record.get('source_model')} to compare with; the gate cannot be evaluated")
            continue
        if not _finite(record.get("perplexity")):
            failures.append(f"{name}: perplexity is missing or not finite ({_why_missing(record)}); the gate cannot pass it")
            continue
        if not _finite(base.get("perplexity")):
            failures.append(f"{name}: the dense perplexity is missing or not finite ({_why_missing(base)}); the gate cannot be evaluated")
            continue
        increase = record["perplexity"] / base["perplexity"] - 1
        if increase > max_increase:
            failures.append(
                f"{record['model']} / {record['variant']}: perplexity {record['perplexity']:.3f} is "
                f"{increase:+.1%} over dense {base['perplexity']:.3f} (gate: +{max_increase:.1%})"
            )
    return failures


def _why_missing(record: dict[str, Any]) -> str:
    if "perplexity" in (record.get("non_finite") or []):
        return "it was NaN or infinite: the model's weights or outputs diverged"
    return "not measured: add 'perplexity' to bench.tasks"
