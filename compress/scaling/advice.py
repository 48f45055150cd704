"""What `recommend` adds to its pick, with error bars: every (model size x method) option, and
whether a smaller dense model is the better choice.

`options`: for every source model size and method in the results (dense counts as a method), the
best configuration within the budget (or, when none fits, the cheapest over it), with its
metric's 95% interval and its paired difference from the pick. `dense_vs_compressed`: the pick
against the best configuration of the other kind within budget — a compressed pick against the
best dense model that fits, a dense pick against the best compressed one — by a paired block
bootstrap over evaluation windows (`evidence.paired_vs`). A dense model is the better pick when
it wins outright, or when the best compressed model's edge over it is within noise (the same
quality without a compression step to trust, maintain and export).

    >>> rows = options(records, fits=lambda r: True, pick=records[0], metric="bits_per_byte")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable

from compress.scaling.evidence import metric_ci, paired_vs


def _summary(record: dict, metric: str) -> dict:
    from compress.scaling.frontier import summarize

    return summarize(record, metric)


def label(record: dict) -> str:
    return f"{record.get('model')} {record.get('variant')} on {record.get('device')}"


def method_of(record: dict) -> str:
    return "dense" if record.get("variant") == "dense" else str(record.get("method") or record.get("variant"))


def _size(record: dict, sizes: dict) -> float:
    source = record.get("source_model") or record.get("model")
    return sizes.get(source) or record.get("non_embedding_params") or record.get("params") or 0


def options(ranked: list[dict], fits: Callable[[dict], bool], pick: dict, metric: str) -> list[dict]:
    """One row per (source model, method): its best configuration that fits, else its cheapest.

    `ranked`: every candidate, best metric first. Rows are ordered by model size, then method.
    """
    sizes = {r.get("model"): r.get("non_embedding_params") or r.get("params") for r in ranked if r.get("variant") == "dense"}
    groups: dict[tuple, list[dict]] = {}
    for record in ranked:
        groups.setdefault((record.get("source_model") or record.get("model"), method_of(record)), []).append(record)
    rows = []
    for (source, method), members in groups.items():
        fitting = [r for r in members if fits(r)]
        chosen = fitting[0] if fitting else min(members, key=lambda r: r.get("weight_bytes") or float("inf"))
        test = paired_vs(pick, [(1.0, chosen)], metric) if chosen is not pick else None
        rows.append({**_summary(chosen, metric), "source_model": source, "size_params": _size(chosen, sizes),
                     "method": method, "configurations": len(members), "configurations_within_budget": len(fitting),
                     "fits": bool(fitting), "metric_ci": metric_ci(chosen, metric), "is_pick": chosen is pick,
                     "pick_margin": None if test is None else test["margin"],  # > 0: the pick is better
                     "pick_margin_ci": None if test is None or test["low"] is None else [test["low"], test["high"]],
                     "indistinguishable_from_pick": None if test is None else test["indistinguishable"]})
    rows.sort(key=lambda row: (row["size_params"] or 0, row["method"] != "dense", row["method"]))
    return rows


def dense_vs_compressed(pick: dict, within: list[dict], metric: str) -> tuple[dict | None, dict | None, str]:
    """(dense alternative, compressed alternative, sentence): the pick against the best of the
    other kind within budget (`within`: ranked best first), with the paired 95% interval."""
    other_kind = [r for r in within[1:] if (r.get("variant") == "dense") != (pick.get("variant") == "dense")]
    if not other_kind:
        if pick.get("variant") == "dense":
            return None, None, " No compressed configuration fits this budget."
        return None, None, " No dense model fits this budget."
    best = other_kind[0]
    test = paired_vs(pick, [(1.0, best)], metric)
    entry = {**_summary(best, metric), "margin": test["margin"], "low": test["low"], "high": test["high"],
             "indistinguishable": test["indistinguishable"], "method": test["method"]}
    interval = (f" [{test['low']:+.3g}, {test['high']:+.3g}] (95%, {test['method']})" if test["low"] is not None
                else " (no interval: the records carry neither per-window values nor standard errors)")
    margin = f"{test['margin']:+.3g} {metric}{interval}" if test["margin"] is not None else "an unknown margin"
    if pick.get("variant") == "dense":
        if test["indistinguishable"]:
            text = (f" The best compressed configuration that fits, {label(best)}, is within noise of it ({margin}): "
                    "the dense model stays the better pick, with no compression step.")
        else:
            text = (f" A smaller dense model is the better pick: the best compressed configuration that fits, {label(best)}, "
                    f"is worse by {margin}.")
        return None, entry, text
    if test["indistinguishable"]:
        text = (f" The smaller dense model {label(best)} is the better pick: it is indistinguishable from the compressed pick "
                f"within noise (margin {margin}) and needs no compression step.")
    else:
        text = f" It beats the best dense model that fits, {label(best)}, by {margin}."
    return entry, None, text


def better_pick(pick: dict, dense_alternative: dict | None) -> dict:
    """The configuration to deploy: the pick, or the dense model that ties with it."""
    return dense_alternative if dense_alternative and dense_alternative.get("indistinguishable") else pick


OPTION_HEADERS = ["size", "model", "method", "best configuration", "{metric} [95%]", "weight bytes", "fits", "pick − this"]


def option_cells(option: dict) -> list[str]:
    """A row of the options table (CLI and report): size, model, method, configuration, metric with
    its 95% interval, bytes, fits (configurations within budget / all), paired margin of the pick."""
    from compress.units import format_bytes, format_count

    ci, margin = option.get("metric_ci"), option.get("pick_margin_ci")
    value = f"{option['metric_value']:.4g}" + (f" [{ci[0]:.4g}, {ci[1]:.4g}]" if ci else "")
    if option.get("is_pick"):
        versus = "pick"
    elif option.get("pick_margin") is None:
        versus = "—"
    else:
        versus = f"{option['pick_margin']:+.3g}" + (f" [{margin[0]:+.3g}, {margin[1]:+.3g}]" if margin else "")
        versus += " (tie)" if option.get("indistinguishable_from_pick") else ""
    fits = f"{'yes' if option['fits'] else 'no'} {option['configurations_within_budget']}/{option['configurations']}"
    return [format_count(option.get("size_params")), str(option["source_model"]), option["method"], str(option["variant"]),
            value, format_bytes(option.get("weight_bytes")), fits, versus]
