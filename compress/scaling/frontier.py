"""Pareto sets over measured models and the answer to "which configuration fits my budget?".

Dense and compressed records compete alike. A record is on the (metric, cost) Pareto set when no
other record is at most as costly and at least as good with one of the two strictly better.
`recommend` picks the best metric among records within every given limit, names runner-ups,
the constraint that binds (the one whose relaxation alone would admit a better model) and why;
`compress.scaling.advice` adds every (model size x method) option and says, with paired error
bars, when a smaller dense model is the better pick.

    >>> rec = recommend(records, max_weight_bytes=parse_size("2MB"))  # doctest: +SKIP
    >>> rec.pick["model"], rec.binding  # doctest: +SKIP
    ('pocket-d192-l4', ['max_weight_bytes'])
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from compress.errors import ScaleCompressError, UserError
from compress.scaling.advice import better_pick, dense_vs_compressed, label, options
from compress.scaling.evidence import metric_ci, paired_vs
from compress.scaling.fit import metric_spec
from compress.units import format_bytes, is_number

# constraint -> (record key, CLI flag, unit formatter)
CONSTRAINTS = {
    "max_weight_bytes": ("weight_bytes", "--max-weight-bytes", lambda v: format_bytes(v)),
    "max_decode_ms": ("decode_ms_per_token", "--max-decode-ms", lambda v: f"{v:.3g} ms/token"),
    "max_energy_j_per_token": ("energy_j_per_token", "--max-energy-j-per-token", lambda v: f"{v:.3g} J/token"),
}
_SUMMARY_KEYS = ("model", "variant", "device", "scenario", "method", "bits", "group_size", "sparsity", "params",
                 "non_embedding_params", "weight_bytes", "decode_ms_per_token", "energy_j_per_token",
                 "energy_source", "bits_per_byte", "loss", "perplexity", "acc", "path")


class NothingFits(ScaleCompressError):
    """No measured configuration meets the budget (exit code 1)."""


class Budget(BaseModel):
    """Upper limits on the cost axes; None leaves an axis free."""

    model_config = ConfigDict(extra="forbid")

    max_weight_bytes: float | None = Field(None, gt=0, description="Largest weight size in bytes, as stored.")
    max_decode_ms: float | None = Field(None, gt=0, description="Largest decode latency, ms per token (median).")
    max_energy_j_per_token: float | None = Field(None, gt=0, description="Largest energy per generated token, J.")

    def active(self) -> dict[str, float]:
        return {name: value for name, value in self.model_dump().items() if value is not None}

    def describe(self) -> str:
        parts = [f"{CONSTRAINTS[name][0]} ≤ {CONSTRAINTS[name][2](value)}" for name, value in self.active().items()]
        return ", ".join(parts) or "no limits"


class Recommendation(BaseModel):
    """The best measured configuration within a budget, with the reasons."""

    model_config = ConfigDict(extra="forbid")

    metric: str = Field("bits_per_byte", description="The metric ranked on.")
    higher_is_better: bool = Field(False, description="True for accuracy metrics.")
    budget: dict = Field(default_factory=dict, description="The limits applied (constraint -> value).")
    pick: dict = Field(default_factory=dict, description="The chosen record (identity, metric and costs).")
    runner_ups: list[dict] = Field(default_factory=list, description="Next best records within budget.")
    binding: list[str] = Field(default_factory=list, description="Constraints that exclude a better model.")
    blocked: dict | None = Field(None, description="The best excluded better model and what it exceeds.")
    reason: str = Field("", description="One paragraph saying why.")
    n_candidates: int = Field(0, description="Records with the metric measured.")
    n_within_budget: int = Field(0, description="Records meeting every limit.")
    pick_ci: list[float] | None = Field(None, description="95% interval of the pick's metric.")
    dense_alternative: dict | None = Field(None, description="Best dense model within budget when the pick is "
                                           "compressed, with the paired margin of the pick over it.")
    compressed_alternative: dict | None = Field(None, description="Best compressed configuration within budget when the pick "
                                                "is dense, with the paired margin of the pick over it.")
    better_pick: dict = Field(default_factory=dict, description="What to deploy: the pick, or the smaller dense model "
                              "indistinguishable from it within noise (no compression step).")
    ties: list[dict] = Field(default_factory=list, description="Runner-ups indistinguishable from the pick (paired 95%).")
    options: list[dict] = Field(default_factory=list, description="Every (model size x method) in the results: its best "
                                "configuration within budget (else its cheapest), 95% interval, paired margin of the pick.")

    def to_dict(self) -> dict:
        return self.model_dump()


def latest(records: list[dict]) -> list[dict]:
    """One record per (model, variant, device, scenario): the last one written wins (a rerun replaces)."""
    keyed = {}
    for record in records:
        key = (record.get("model"), record.get("variant"), record.get("device"), record.get("scenario"))
        keyed.pop(key, None)
        keyed[key] = record
    return list(keyed.values())


def pareto(records: list[dict], metric: str, cost: str) -> list[dict]:
    """Records on the (metric, cost) Pareto set, cheapest first; records missing either are ignored.

        >>> rows = [{"bits_per_byte": 3.0, "weight_bytes": 10}, {"bits_per_byte": 3.5, "weight_bytes": 20},
        ...         {"bits_per_byte": 2.0, "weight_bytes": 40}]
        >>> [r["weight_bytes"] for r in pareto(rows, "bits_per_byte", "weight_bytes")]
        [10, 40]
    """
    sign = -1.0 if metric_spec(metric).higher_is_better else 1.0  # sign·metric: lower is better
    usable = sorted((r for r in records if is_number(r.get(metric)) and is_number(r.get(cost))),
                    key=lambda r: (r[cost], sign * r[metric]))
    front, best = [], math.inf
    for record in usable:
        if sign * record[metric] < best:
            front.append(record)
            best = sign * record[metric]
    return front


def make_budget(**limits) -> Budget:
    """A Budget from keyword limits, with a UserError naming the flag for a bad value.

        >>> make_budget(max_weight_bytes=2e6).describe()
        'weight_bytes ≤ 2 MB'
    """
    try:
        return Budget(**limits)
    except ValidationError as error:
        from compress.errors import describe_validation_error

        field = str(error.errors()[0]["loc"][0]) if error.errors()[0]["loc"] else "budget"
        flag = CONSTRAINTS[field][1] if field in CONSTRAINTS else field
        raise UserError(f"{flag}: {describe_validation_error(error, Budget)}; give a positive number, or "
                        f"leave it out for no limit (limits: {', '.join(CONSTRAINTS)})") from None


def recommend(records: list[dict], max_weight_bytes: float | None = None, max_decode_ms: float | None = None,
              max_energy_j_per_token: float | None = None, metric: str = "bits_per_byte", *,
              device: str | None = None, n_runner_ups: int = 3) -> Recommendation:
    """The best `metric` among measured records within every given limit.

    Records without a measurement on a limited axis cannot be shown to fit and are left out.
    Raises NothingFits (exit 1) naming what the cheapest model needs when nothing fits.

        >>> rec = recommend(records, max_weight_bytes=2e6, max_decode_ms=5.0)  # doctest: +SKIP
        >>> print(rec.reason)  # doctest: +SKIP
    """
    spec = metric_spec(metric)
    budget = make_budget(max_weight_bytes=max_weight_bytes, max_decode_ms=max_decode_ms,
                         max_energy_j_per_token=max_energy_j_per_token)
    pool = [r for r in latest(records) if device is None or r.get("device") == device]
    candidates = [r for r in pool if is_number(r.get(metric))]
    if not candidates:
        present = sorted({k for r in pool for k in ("bits_per_byte", "loss", "perplexity", "acc", "acc_norm")
                          if is_number(r.get(k))})
        where = f" on device '{device}'" if device else ""
        raise UserError(f"--metric: no record{where} has a '{metric}' value; measured metrics: "
                        f"{', '.join(present) or 'none'}; pass one of them with --metric")
    limits = budget.active()
    sign = -1.0 if spec.higher_is_better else 1.0

    def rank(r):  # best metric first; ties go to the smaller, then the faster model
        return sign * r[metric], r.get("weight_bytes") or math.inf, r.get("decode_ms_per_token") or math.inf

    candidates.sort(key=rank)
    misses = {id(r): _misses(r, limits) for r in candidates}
    within = [r for r in candidates if not misses[id(r)]]
    if not within:
        raise NothingFits(_nothing_fits(candidates, limits))

    pick = within[0]
    better = [r for r in candidates if sign * r[metric] < sign * pick[metric]]
    binding = sorted({next(iter(misses[id(r)])) for r in better if len(misses[id(r)]) == 1})
    blocked = None
    if better:
        # The better model nearest to the budget: what relaxing the binding limit least would buy.
        closest = min(better, key=lambda r: (len(misses[id(r)]), _excess(r, limits), rank(r)))
        if not binding:
            binding = sorted(misses[id(closest)])
        blocked = {**summarize(closest, metric), "exceeds": {name: {"value": closest.get(CONSTRAINTS[name][0]),
                                                                    "limit": limits[name]}
                                                             for name in misses[id(closest)]}}
    reason = _reason(pick, better, blocked, binding, limits, metric, len(within), len(candidates))
    ties, tied = _ties(pick, within[1:1 + max(n_runner_ups, 5)], metric)
    dense_alternative, compressed_alternative, versus = dense_vs_compressed(pick, within, metric)
    fitting = {id(r) for r in within}
    return Recommendation(metric=metric, higher_is_better=spec.higher_is_better, budget=limits,
                          pick=summarize(pick, metric),
                          runner_ups=[summarize(r, metric) for r in within[1:1 + n_runner_ups]],
                          binding=binding, blocked=blocked, reason=reason + tied + versus, n_candidates=len(candidates),
                          n_within_budget=len(within), pick_ci=metric_ci(pick, metric),
                          dense_alternative=dense_alternative, compressed_alternative=compressed_alternative,
                          better_pick=better_pick(summarize(pick, metric), dense_alternative), ties=ties,
                          options=options(candidates, lambda r: id(r) in fitting, pick, metric))


def _ties(pick: dict, runner_ups: list[dict], metric: str) -> tuple[list[dict], str]:
    """Runner-ups indistinguishable from the pick (paired 95%), and the sentence saying so."""
    ties = []
    for other in runner_ups:
        test = paired_vs(pick, [(1.0, other)], metric)
        if test["indistinguishable"]:
            ties.append({**summarize(other, metric), "margin": test["margin"], "low": test["low"], "high": test["high"]})
    if not ties:
        return ties, ""
    return ties, (" Within noise (paired 95%), the pick ties with " +
                  ", ".join(f"{label(t)} ({t['margin']:+.3g} [{t['low']:+.3g}, {t['high']:+.3g}])" for t in ties) + ".")


def summarize(record: dict, metric: str) -> dict:
    """The identity, the ranked metric and the costs of a record."""
    out = {key: record.get(key) for key in _SUMMARY_KEYS}
    out["metric"], out["metric_value"] = metric, record.get(metric)
    return out


def _misses(record: dict, limits: dict[str, float]) -> dict[str, str]:
    out = {}
    for name, limit in limits.items():
        value = record.get(CONSTRAINTS[name][0])
        if not is_number(value):
            out[name] = "not measured"
        elif value > limit:
            out[name] = "over"
    return out


def _excess(record: dict, limits: dict[str, float]) -> float:
    """Sum of value/limit over the limits a record exceeds (an unmeasured value counts as far)."""
    total = 0.0
    for name, limit in limits.items():
        value = record.get(CONSTRAINTS[name][0])
        total += (value / limit if value > limit else 0.0) if is_number(value) else 1e9
    return total


def _nothing_fits(candidates: list[dict], limits: dict[str, float]) -> str:
    parts = []
    for name, limit in limits.items():
        key, flag, fmt = CONSTRAINTS[name]
        measured = [r for r in candidates if is_number(r.get(key))]
        if not measured:
            parts.append(f"no model has {key} measured for {flag}")
            continue
        cheapest = min(measured, key=lambda r: r[key])
        if cheapest[key] > limit:
            parts.append(f"the smallest model, {label(cheapest)}, needs {fmt(cheapest[key])} > {flag} {fmt(limit)}")
    if not parts:
        parts.append("each limit alone is met by some model, but no model meets all of "
                     + ", ".join(f"{CONSTRAINTS[n][1]} {CONSTRAINTS[n][2](v)}" for n, v in limits.items()))
    return "nothing fits: " + "; ".join(parts) + "; raise a limit or measure smaller configurations"


def _reason(pick, better, blocked, binding, limits, metric, n_within, n_candidates) -> str:
    text = (f"{label(pick)} has the best {metric} ({pick[metric]:.4g}) of the {n_within} of {n_candidates} "
            f"measured configurations within the budget ({Budget(**limits).describe()}).")
    if not better:
        text += " No measured configuration is better, so no constraint binds."
    elif blocked is not None:
        over = ", ".join(f"{CONSTRAINTS[n][0]} {_fmt(n, d['value'])} > {_fmt(n, d['limit'])}"
                         if is_number(d["value"]) else f"{CONSTRAINTS[n][0]} not measured"
                         for n, d in blocked["exceeds"].items())
        text += (f" Binding: {', '.join(binding)} — the nearest better model, {label(blocked)} "
                 f"({metric} {blocked['metric_value']:.4g}), is excluded by {over}.")
    used = [f"{CONSTRAINTS[n][0]} {_fmt(n, pick.get(CONSTRAINTS[n][0]))} of {_fmt(n, v)}" for n, v in limits.items()]
    if used:
        text += " It uses " + ", ".join(used) + "."
    return text


def _fmt(name: str, value) -> str:
    return CONSTRAINTS[name][2](value) if is_number(value) else "not measured"


