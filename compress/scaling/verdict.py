"""The verdict card: the report's first screen.

Per cost axis (equal weight bytes, equal decode latency, equal energy): how many compressed
models beat the dense curve (their paired 95% interval of the margin excludes zero on the good
side), how many are indistinguishable from it, how many are worse, and the best one with its
margin and interval. An energy figure that is only an estimate proportional to time is not a
separate axis: it ranks exactly as latency does, so the card says so instead of counting it.

    >>> card = verdict_card(rows, records, "bits_per_byte")  # doctest: +SKIP
    >>> card["axes"]["weight_bytes"]["better"]  # doctest: +SKIP
    4
"""

from __future__ import annotations

from compress.scaling.placement import COST_AXES

AXIS_LABEL = {"weight_bytes": "equal weight bytes", "decode_ms_per_token": "equal decode latency",
              "energy_j_per_token": "equal energy"}


def energy_is_estimate(records: list[dict]) -> bool:
    sources = {r.get("energy_source") for r in records if r.get("energy_j_per_token") is not None}
    return bool(sources) and sources <= {"estimate"}


def verdict_card(rows: list[dict], records: list[dict], metric: str) -> dict:
    """{"axes": {axis: {...}}, "n": compressed models, "vs_source": counts, "lines": [one sentence per axis]}."""
    estimate = energy_is_estimate(records)
    axes, lines = {}, []
    for axis in COST_AXES:
        if axis == "energy_j_per_token" and estimate:
            axes[axis] = {"ranked": False, "note": "energy is an estimate proportional to time (no power counter): "
                                                   "it ranks as decode latency does, so it is not a separate axis"}
            lines.append(f"At {AXIS_LABEL[axis]}: not ranked — {axes[axis]['note']}.")
            continue
        if not any(r.get(axis) is not None for r in records):
            axes[axis] = {"ranked": False, "note": "not measured"}
            lines.append(f"At {AXIS_LABEL[axis]}: not measured in these results.")
            continue
        counts = {"better": 0, "indistinguishable": 0, "worse": 0, "unknown": 0}
        best = None
        for row in rows:
            position = row["vs_dense"][axis]
            counts[position["verdict"] if position["verdict"] in counts else "unknown"] += 1
            if position["verdict"] in ("better", "indistinguishable") and position["margin"] is not None:
                if best is None or position["margin"] > best[1]["margin"]:
                    best = (row, position)
        measured = sum(counts.values()) - counts["unknown"]
        entry = {"ranked": True, **counts, "measured": measured, "best": None}
        text = f"At {AXIS_LABEL[axis]}: {counts['better']} of {len(rows)} compressed models beat the dense curve"
        text += f", {counts['indistinguishable']} indistinguishable, {counts['worse']} worse"
        if counts["unknown"]:
            text += f", {counts['unknown']} outside the dense range or not measured"
        if best is not None:
            row, position = best
            interval = (f" [{position['low']:+.3g}, {position['high']:+.3g}]"
                        if position.get("low") is not None else " (no interval)")
            entry["best"] = {"model": row["model"], "variant": row["variant"], "margin": position["margin"],
                             "low": position.get("low"), "high": position.get("high"),
                             "verdict": position["verdict"]}
            text += (f". Best: {row['model']} {row['variant']}, {metric} margin {position['margin']:+.3g}{interval} "
                     f"(95%, paired){' — indistinguishable' if position['verdict'] == 'indistinguishable' else ''}")
        axes[axis] = entry
        lines.append(text + ".")
    vs_source = {"indistinguishable": 0, "worse": 0, "better": 0, "unknown": 0}
    for row in rows:
        test = row.get("vs_source") or {}
        if test.get("indistinguishable") is True:
            vs_source["indistinguishable"] += 1
        elif test.get("margin") is None or test.get("indistinguishable") is None:
            vs_source["unknown"] += 1
        else:
            vs_source["better" if test["margin"] > 0 else "worse"] += 1
    lines.append(f"Against their own dense source: {vs_source['indistinguishable']} of {len(rows)} indistinguishable "
                 f"(paired block bootstrap of per-window differences includes 0), {vs_source['worse']} worse, "
                 f"{vs_source['better']} better.")
    return {"axes": axes, "n": len(rows), "vs_source": vs_source, "lines": lines, "energy_estimate": estimate}
