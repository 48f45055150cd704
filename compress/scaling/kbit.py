"""The k-bit scaling figure (Dettmers & Zettlemoyer 2023): metric against total model bits.

For one ladder, every member's dense record (fp32) and its quantized variants are grouped by
precision (bits and block size); each precision is one curve across the ladder's sizes, x =
total model bits = stored weight bytes × 8 (embeddings included, whatever their precision).

*Bit-optimal* precision: on a log-spaced grid of total-bit budgets covering the range where at
least two precisions were measured, each curve is interpolated (linearly in log bits, no
extrapolation); the precision with the best metric at the most budgets is bit-optimal, and the
evidence is that share plus the metrics of every precision at the middle of the range.

    >>> result = kbit_analysis(records, "bits_per_byte")  # doctest: +SKIP
    >>> result["optimal"], result["evidence"]  # doctest: +SKIP
    ('4-bit (g64)', '4-bit (g64) is best at 41 of 50 budgets ...')
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from compress.scaling.evidence import metric_ci
from compress.scaling.fit import metric_spec
from compress.units import format_count, is_number

_GRID = 50


def precision_label(record: dict) -> str | None:
    """'fp32 (dense)', '8-bit (per channel)', '4-bit (g64)'; None for non-quantization variants."""
    if record.get("variant") == "dense":
        return "fp32 (dense)"
    method, bits = record.get("method") or "", record.get("bits")
    if not is_number(bits) or record.get("sparsity") or "+" in method:
        return None
    group = record.get("group_size")
    return f"{int(bits)}-bit ({'g' + str(group) if group else 'per channel'})"


def _bits_of(label: str) -> float:
    return 32.0 if label.startswith("fp32") else float(label.split("-")[0])


def curves(records: list[dict], metric: str) -> dict[str, list[dict]]:
    """{precision: [records with metric and weight bytes, smallest first]} (≥ 2 sizes each)."""
    out: dict[str, list[dict]] = {}
    for r in records:
        label = precision_label(r)
        if label and is_number(r.get(metric)) and is_number(r.get("weight_bytes")):
            out.setdefault(label, []).append(r)
    out = {k: sorted(v, key=lambda r: r["weight_bytes"]) for k, v in out.items() if len(v) >= 2}
    return dict(sorted(out.items(), key=lambda item: -_bits_of(item[0])))


def kbit_analysis(records: list[dict], metric: str) -> dict | None:
    """{"curves", "optimal", "wins", "evidence", "grid_bits"}; None without ≥ 2 quantized precisions."""
    lines = curves(records, metric)
    if sum(1 for k in lines if not k.startswith("fp32")) < 2:
        return None
    sign = -1.0 if metric_spec(metric).higher_is_better else 1.0
    spans = {k: (np.log([8 * r["weight_bytes"] for r in v]), np.array([r[metric] for r in v], float))
             for k, v in lines.items()}
    low = min(x.min() for x, _ in spans.values())
    high = max(x.max() for x, _ in spans.values())
    grid = np.linspace(low, high, _GRID)
    wins = {k: 0 for k in lines}
    contested = 0
    for g in grid:
        here = {k: float(np.interp(g, x, y)) for k, (x, y) in spans.items() if x.min() <= g <= x.max()}
        if len(here) >= 2:
            contested += 1
            wins[min(here, key=lambda k: sign * here[k])] += 1
    if not contested:
        return None
    optimal = max(wins, key=lambda k: (wins[k], -_bits_of(k)))
    middle = float(np.median([g for g in grid]))
    at_middle = {k: float(np.interp(middle, x, y)) for k, (x, y) in spans.items() if x.min() <= middle <= x.max()}
    detail = ", ".join(f"{k} {v:.4g}" for k, v in sorted(at_middle.items(), key=lambda kv: sign * kv[1]))
    evidence = (f"{optimal} has the best {metric} at {wins[optimal]} of the {contested} total-bit budgets where two or "
                f"more precisions were measured (log-spaced from {format_count(np.exp(low))} to "
                f"{format_count(np.exp(high))} bits); at {format_count(np.exp(middle))} bits: {detail}.")
    return {"curves": lines, "optimal": optimal, "wins": wins, "contested": contested, "evidence": evidence}


def plot_kbit(analysis: dict, out_dir, *, metric: str, family: str | None) -> dict[str, Path]:
    """Write kbit_<metric>_vs_total_bits.{png,svg}; returns {"png": path, "svg": path}."""
    spec = metric_spec(metric)
    figure = Figure(figsize=(8.0, 5.0), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    for i, (label, members) in enumerate(analysis["curves"].items()):
        xs = [8 * r["weight_bytes"] for r in members]
        ys = [r[metric] for r in members]
        cis = [metric_ci(r, metric) for r in members]
        dense = label.startswith("fp32")
        yerr = None
        if all(cis):
            yerr = np.array([[y - c[0] for y, c in zip(ys, cis)], [c[1] - y for y, c in zip(ys, cis)]]).clip(min=0)
        ax.errorbar(xs, ys, yerr=yerr, marker="o", ms=5, lw=2.2 if label == analysis["optimal"] else 1.3,
                    color="black" if dense else f"C{i}", ls="--" if dense else "-", capsize=2,
                    label=label + ("  ← bit-optimal" if label == analysis["optimal"] else ""))
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: format_count(v)))
    ax.set_xlabel("total model bits (stored weight bytes × 8; embeddings in fp32, not quantized)")
    ax.set_ylabel(f"{spec.label} ({'higher' if spec.higher_is_better else 'lower'} is better)")
    ax.grid(True, color="0.9")
    ax.set_title(f"{family or 'ladder'}: k-bit scaling — one curve per precision across sizes", loc="left", fontsize=11)
    figure.suptitle("dense baseline fp32 · rtn, min-max grid · error bars: 95% block-bootstrap intervals",
                    fontsize=8, color="0.35", x=0.01, ha="left")
    ax.legend(fontsize=8, frameon=False)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    from compress.scaling.plot import _save

    return {fmt: _save(figure, out_dir / f"kbit_{metric}_vs_total_bits.{fmt}", fmt) for fmt in ("png", "svg")}
