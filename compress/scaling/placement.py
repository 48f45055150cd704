"""Place compressed models against the scaling curve of their dense family.

A *ladder* is the dense records (variant == "dense") of one (family, device, scenario); the
compressed records of that group are placed on it:

- **effective parameters**: the dense size at which the fitted curve reaches the compressed
  model's metric, and its ratio to the source's parameter count (1.0 = as good as its source,
  0.5 = as good as a dense model half the size);
- **position on each cost axis** (weight bytes, decode ms/token, energy J/token): the dense
  metric at equal cost, interpolated in log-cost along the dense models' Pareto frontier, and
  the margin. Margins are signed so that a positive margin means *better than dense* for every
  metric (lower-is-better metrics: dense − compressed; accuracy: compressed − dense).

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
from compress.scaling.fit import ScalingFit, fit_scaling, metric_spec, params_key
from compress.units import is_number as _number
from compress.scaling.frontier import latest, pareto

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
        effective, flag = None, "no_fit" if ladder.fit is None else "no_metric"
        if ladder.fit is not None and _number(value):
            effective, flag = ladder.fit.invert(value)
        ratio = effective / own_params if effective is not None and _number(own_params) and own_params else None
        rows.append({
            "model": record.get("model"), "variant": record.get("variant"), "device": record.get("device"),
            "scenario": record.get("scenario"), "family": ladder.family, "source_model": record.get("source_model"),
            "method": record.get("method"), "bits": record.get("bits"), "group_size": record.get("group_size"),
            "sparsity": record.get("sparsity"), "params_kind": params, "params": own_params,
            "metric": metric, "metric_value": value, "source_metric_value": source.get(metric),
            "effective_params": effective, "effective_ratio": ratio, "effective_flag": flag,
            "vs_dense": {cost: versus_dense(ladder.dense, record, metric, cost) for cost in COST_AXES},
        })
    return rows


def versus_dense(dense: list[dict], record: dict, metric: str, cost: str) -> dict:
    """The dense metric at the record's cost (log-cost interpolation on the dense frontier) and the margin.

    verdict: 'better' | 'worse' | 'equal' | 'unknown' (cheaper than every dense model yet worse
    than the cheapest, or dearer than every one yet better than the best: no dense model to compare).
    """
    higher = metric_spec(metric).higher_is_better
    value, spent = record.get(metric), record.get(cost)
    out = {"cost": spent, "dense_metric_at_cost": None, "margin": None, "verdict": "unknown", "note": ""}
    if not (_number(value) and _number(spent) and spent > 0):
        out["note"] = f"no {metric} measurement" if not _number(value) else f"no {cost} measurement"
        return out
    frontier = [(r[cost], r[metric]) for r in pareto(dense, metric, cost) if r[cost] > 0]
    if not frontier:
        out["note"] = f"no dense model has both {metric} and {cost}"
        return out
    costs = np.log([c for c, _ in frontier])
    metrics = np.array([m for _, m in frontier], dtype=float)
    sign = 1.0 if higher else -1.0  # sign·(compressed − dense) > 0 means better
    here = math.log(spent)
    if costs[0] - 1e-12 <= here <= costs[-1] + 1e-12:
        at = float(np.interp(here, costs, metrics))
        margin = sign * (value - at)
        scale = max(abs(at), 1e-12)
        verdict = "equal" if abs(margin) <= 1e-9 * scale else ("better" if margin > 0 else "worse")
        out.update(dense_metric_at_cost=at, margin=margin, verdict=verdict, note="interpolated")
        return out
    end = 0 if here < costs[0] else -1
    at = float(metrics[end])
    margin = sign * (value - at)
    cheaper = end == 0
    out.update(dense_metric_at_cost=at,
               note="cheaper than every dense model" if cheaper else "dearer than every dense model")
    if cheaper and margin >= 0:
        out.update(margin=margin, verdict="better")  # cheaper and at least as good: dominates
    elif not cheaper and margin <= 0:
        out.update(margin=margin, verdict="worse")  # dearer and no better: dominated
    return out
