"""Place compressed models against the scaling curve of their dense family.

A *ladder* is the dense records (variant == "dense") of one (family, device, scenario); the
compressed records of that group are placed on it:

- **effective parameters**: the dense size that scores what the compressed model scores, read
  off a monotone interpolation of the measured dense points (the fitted law only beyond the
  ladder's ends, flagged extrapolated; see effective.py), its ratio to the source's parameter
  count (1.00 exactly for a model that scores what its source scores) and the interval that
  follows from the metric's 95% interval;
- **against its source**: a paired block bootstrap of per-window differences; "indistinguishable"
  when its 95% interval includes zero;
- **position on each cost axis** (weight bytes, decode ms/token, energy J/token): the dense
  metric at equal cost, interpolated in log-cost along the dense models' Pareto frontier, and
  the margin with its paired interval. Margins are signed so that a positive margin means
  *better than dense* for every metric (lower-is-better metrics: dense − compressed; accuracy:
  compressed − dense).

    >>> records = read_records("results.jsonl")  # doctest: +SKIP
    >>> for row in place(records):  # doctest: +SKIP
    ...     print(row["model"], row["variant"], row["effective_params"], row["vs_dense"]["weight_bytes"]["verdict"])
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from compress.errors import ScaleCompressError, UserError
from compress.scaling.effective import DenseCurve
from compress.scaling.evidence import metric_ci, paired_vs
from compress.scaling.fit import ScalingFit, fit_scaling, metric_spec, params_key
from compress.scaling.frontier import latest, pareto
from compress.scaling.law import describe_law
from compress.units import is_number as _number

COST_AXES = ("weight_bytes", "decode_ms_per_token", "energy_j_per_token")


def read_records(path) -> list[dict]:
    """Records of a results JSONL file, or of every `results*.jsonl` in a folder (sweep shards
    merge by concatenation); partial or damaged lines are skipped with a warning (one reader:
`compress.bench.results.read_jsonl`).

        >>> records = read_records("out/results.jsonl")  # doctest: +SKIP
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("results*.jsonl"))
        if not files:
            raise UserError(f"RESULTS: no results*.jsonl in folder '{path}'; run `scalecompress run RECIPE` there first")
        return [record for file in files for record in read_records(file)]
    if not path.is_file():
        raise UserError(f"RESULTS: no results file at '{path}'; run `scalecompress run RECIPE` or "
                        "`scalecompress demo` first, or pass the path of a results.jsonl")
    from compress.bench.results import read_jsonl

    return read_jsonl(path)


def is_dense(record: dict) -> bool:
    return record.get("variant") == "dense"


@dataclass
class Ladder:
    """The dense records of one (family, device, scenario), its compressed records and its fit."""

    family: str | None
    device: str | None
    scenario: str | None
    dense: list[dict] = field(default_factory=list)
    compressed: list[dict] = field(default_factory=list)
    fit: ScalingFit | None = None
    fit_error: str = ""
    curve: DenseCurve | None = None
    law: dict = field(default_factory=dict)

    @property
    def slug(self) -> str:
        raw = f"{self.family or 'models'}-{self.device or 'any'}-{self.scenario or 'any'}"
        return "".join(c if c.isalnum() or c in "-_." else "-" for c in raw)


def ladders(records: list[dict], *, params: str = "non_embedding", metric: str = "bits_per_byte") -> list[Ladder]:
    """Group records into ladders and fit each dense family (a failed fit is kept as `fit_error`)."""
    key = params_key(params)
    metric_spec(metric)
    records = latest(records)
    dense_family = {(r.get("model"), r.get("device"), r.get("scenario")): r.get("family")
                    for r in records if is_dense(r)}
    groups: dict[tuple, Ladder] = {}
    for record in records:
        where = (record.get("device"), record.get("scenario"))
        family = record.get("family")
        if not is_dense(record):
            family = dense_family.get((record.get("source_model"), *where), family)
        ladder = groups.setdefault((family, *where), Ladder(family, *where))
        (ladder.dense if is_dense(record) else ladder.compressed).append(record)
    for ladder in groups.values():
        ladder.dense.sort(key=lambda r: (r.get(key) or 0, r.get("model") or ""))
        points = [(r[key], r[metric]) for r in ladder.dense if _number(r.get(key)) and _number(r.get(metric))]
        try:
            ladder.fit = fit_scaling([p[0] for p in points], [p[1] for p in points], metric=metric, params=params)
        except ScaleCompressError as error:  # UserError included: too few points is a finding, not a crash
            ladder.fit_error = str(error)
        if points:
            ladder.curve = DenseCurve([p[0] for p in points], [p[1] for p in points], metric_spec(metric), ladder.fit)
        if ladder.dense:
            ladder.law = describe_law(ladder.dense, key, metric)
    return sorted(groups.values(), key=lambda g: (-len(g.dense), str(g.family), str(g.device), str(g.scenario)))


def place(records: list[dict], *, params: str = "non_embedding", metric: str = "bits_per_byte") -> list[dict]:
    """One row per compressed record: effective params, their ratio to the source, and vs-dense per cost axis.

        >>> rows = place(records, params="non_embedding", metric="bits_per_byte")  # doctest: +SKIP
        >>> rows[0]["effective_ratio"]  # doctest: +SKIP
        0.81
    """
    rows = []
    for ladder in ladders(records, params=params, metric=metric):
        rows.extend(place_on(ladder, params=params, metric=metric))
    return rows


def place_on(ladder: Ladder, *, params: str, metric: str) -> list[dict]:
    """Placement rows for the compressed records of one ladder (see `place`)."""
    key = params_key(params)
    sources = {r.get("model"): r for r in ladder.dense}
    rows = []
    for record in ladder.compressed:
        value = record.get(metric)
        source = sources.get(record.get("source_model"), {})
        own_params = record.get(key) if _number(record.get(key)) else source.get(key)
        effective, flag = None, "no_dense" if ladder.curve is None else "no_metric"
        low = high = None
        if ladder.curve is not None and _number(value):
            effective, flag = ladder.curve.invert(value)
            low, high = ladder.curve.interval(metric_ci(record, metric))
        sized = _number(own_params) and own_params
        ratio = effective / own_params if effective is not None and sized else None
        ratio_ci = [low / own_params if low is not None else None, high / own_params if high is not None else None] \
            if sized and (low is not None or high is not None) else None
        rows.append({
            "model": record.get("model"), "variant": record.get("variant"), "device": record.get("device"),
            "scenario": record.get("scenario"), "family": ladder.family, "source_model": record.get("source_model"),
            "method": record.get("method"), "bits": record.get("bits"), "group_size": record.get("group_size"),
            "sparsity": record.get("sparsity"), "params_kind": params, "params": own_params,
            "metric": metric, "metric_value": value, "source_metric_value": source.get(metric),
            "effective_params": effective, "effective_ratio": ratio, "effective_flag": flag,
            "effective_params_ci": [low, high] if low is not None or high is not None else None,
            "effective_ratio_ci": ratio_ci, "metric_ci": metric_ci(record, metric),
            "kl_mean": record.get("kl_mean"), "kl_p99": record.get("kl_p99"),
            "top1_agreement": record.get("top1_agreement"),
            "vs_source": paired_vs(record, [(1.0, source)], metric) if source else None,
            "vs_dense": {cost: versus_dense(ladder.dense, record, metric, cost) for cost in COST_AXES},
        })
    return rows


def versus_dense(dense: list[dict], record: dict, metric: str, cost: str) -> dict:
    """The dense metric at the record's cost (log-cost interpolation on the dense frontier), the margin
    and its paired 95% interval.

    verdict: 'better' | 'worse' (the interval excludes zero) | 'indistinguishable' (it includes zero)
    | 'unknown' (cheaper than every dense model yet worse than the cheapest, or dearer than every
    one yet better than the best: no dense model to compare).
    """
    higher = metric_spec(metric).higher_is_better
    value, spent = record.get(metric), record.get(cost)
    out = {"cost": spent, "dense_metric_at_cost": None, "margin": None, "low": None, "high": None,
           "verdict": "unknown", "note": ""}
    if not (_number(value) and _number(spent) and spent > 0):
        out["note"] = f"no {metric} measurement" if not _number(value) else f"no {cost} measurement"
        return out
    front = [r for r in pareto(dense, metric, cost) if r[cost] > 0]
    if not front:
        out["note"] = f"no dense model has both {metric} and {cost}"
        return out
    costs = np.log([r[cost] for r in front])
    sign = 1.0 if higher else -1.0  # sign·(compressed − dense) > 0 means better
    here = math.log(spent)
    if costs[0] - 1e-12 <= here <= costs[-1] + 1e-12:
        i = int(min(max(np.searchsorted(costs, here) - 1, 0), max(len(front) - 2, 0)))
        if len(front) == 1:
            mix = [(1.0, front[0])]
        else:
            w = float((here - costs[i]) / (costs[i + 1] - costs[i])) if costs[i + 1] > costs[i] else 0.0
            w = min(max(w, 0.0), 1.0)
            mix = [(1 - w, front[i]), (w, front[i + 1])]
        note = "interpolated"
    else:
        cheaper = here < costs[0]
        mix = [(1.0, front[0] if cheaper else front[-1])]
        note = "cheaper than every dense model" if cheaper else "dearer than every dense model"
    at = sum(w * r[metric] for w, r in mix)
    margin = sign * (value - at)
    paired = paired_vs(record, mix, metric)
    out.update(dense_metric_at_cost=at, margin=margin, low=paired["low"], high=paired["high"], note=note,
               method=paired["method"])
    if paired["indistinguishable"] is True or (paired["indistinguishable"] is None and margin == 0):
        verdict = "indistinguishable"
    else:
        verdict = "better" if margin > 0 else "worse"
    if note.startswith("cheaper") and verdict == "worse" or note.startswith("dearer") and verdict == "better":
        verdict = "unknown"  # outside the dense range, the comparison would need a dense model that was not measured
        out["margin"] = out["low"] = out["high"] = None
    out["verdict"] = verdict
    return out
