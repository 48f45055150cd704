"""Which law the dense ladder supports, and how well the fit meets every dense point.

- D recorded and the same for every member (Pythia: 300B): L(N) *at fixed D*.
- D varies and is a function of N (the pocket ladder's token rule): L(N) along that rule; the
  Chinchilla form L(N, D) is not identifiable and the report says so.
- D varies independently of N (sizes trained at several budgets): L(N, D), Hoffmann approach 3.

Then every dense point gets its residual in units of its own standard error, and a leave-one-
out check (fit without the point, predict it). A fit that misses a dense point by more than
twice that point's standard error is flagged, never reported as good.

    >>> check = check_fit(fit, dense_records, "bits_per_byte", "non_embedding_params")  # doctest: +SKIP
    >>> check["flagged"]  # doctest: +SKIP
    []
"""

from __future__ import annotations

import numpy as np

from compress.errors import ScaleCompressError
from compress.scaling.chinchilla import fit_chinchilla, identifiability
from compress.scaling.evidence import metric_se
from compress.scaling.fit import fit_scaling
from compress.units import is_number

TOLERANCE_SE = 2.0


def describe_law(dense: list[dict], key: str, metric: str) -> dict:
    """{"kind": "fixed_D" | "D_of_N" | "chinchilla" | "unknown_D", "text", "chinchilla": fit dict or None}."""
    points = [r for r in dense if is_number(r.get(key)) and is_number(r.get(metric))]
    tokens = [r.get("train_tokens") for r in points]
    n = np.array([r[key] for r in points], dtype=float)
    if not points or not all(is_number(t) and t > 0 for t in tokens):
        return {"kind": "unknown_D", "chinchilla": None,
                "text": "Training tokens D are not recorded for every dense member: the fit is L(N) on the ladder as "
                        "trained, not a fixed-data curve, and L(N, D) cannot be fitted."}
    d = np.array(tokens, dtype=float)
    ok, why = identifiability(n, d)
    if not ok and np.ptp(np.log(d)) < 1e-9:
        return {"kind": "fixed_D", "chinchilla": None, "text": f"L(N) at fixed D = {d[0]:.3g} training tokens ({why})."}
    if not ok:
        slope = float(np.polyfit(np.log(n), np.log(d), 1)[0]) if np.unique(n).size > 1 else float("nan")
        return {"kind": "D_of_N", "chinchilla": None,
                "text": f"L(N) along the ladder's token rule (D ∝ N^{slope:.2f}), not a fixed-data curve. The "
                        f"Chinchilla form L(N, D) = E + A·N^-α + B·D^-β cannot be identified from this ladder: {why}."}
    values = np.array([r[metric] for r in points], dtype=float)
    if metric not in ("loss", "bits_per_byte", "perplexity"):
        return {"kind": "D_varies", "chinchilla": None,
                "text": f"D varies independently of N, but L(N, D) is fitted on loss-like metrics only, not {metric}."}
    loss = np.log(values) if metric == "perplexity" else values
    fit = fit_chinchilla(n, d, loss)
    return {"kind": "chinchilla", "chinchilla": fit.to_dict(), "text": fit.describe()}


def check_fit(fit, dense: list[dict], metric: str, key: str) -> dict:
    """Residual of each dense point (metric units and in its standard errors) and leave-one-out."""
    points = [r for r in dense if is_number(r.get(key)) and is_number(r.get(metric))]
    rows, flagged = [], []
    for i, r in enumerate(points):
        predicted = float(fit.predict(r[key]))
        residual = r[metric] - predicted
        se = metric_se(r, metric)
        if metric == "perplexity" and se is not None:
            se = se * r[metric]  # the loss's se, carried to perplexity (delta method)
        others = points[:i] + points[i + 1:]
        loo = None
        try:
            loo_fit = fit_scaling([o[key] for o in others], [o[metric] for o in others], metric=metric,
                                  params=fit.params)
            loo = r[metric] - float(loo_fit.predict(r[key]))
        except ScaleCompressError:
            pass
        z = residual / se if se else None
        row = {"model": r.get("model"), "n": r[key], "value": r[metric], "predicted": predicted,
               "residual": residual, "se": se, "z": z, "loo_residual": loo,
               "loo_z": loo / se if se and loo is not None else None}
        if z is not None and abs(z) > TOLERANCE_SE:
            flagged.append(r.get("model"))
        rows.append(row)
    return {"rows": rows, "flagged": flagged, "tolerance_se": TOLERANCE_SE,
            "has_noise": all(row["se"] is not None for row in rows)}
