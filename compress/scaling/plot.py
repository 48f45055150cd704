"""Plots of one ladder: the metric against parameters and against each cost axis (PNG and SVG).

Dense models are black circles (with the fitted curve on the parameter plot); each compressed
variant has a marker per method and a colour per variant (so bit-width and sparsity are named
in the legend), with a thin arrow from its source's dense point. Vertical bars are the 95%
intervals of the metric. On the parameter plot compressed models sit at their source's own
parameter count, never shifted along N (a shift would read as a bigger model); they are
told apart by marker and colour. An energy axis that is only an estimate proportional to time
says so in its label. Points far off the scale are
pinned to the edge with their value written beside them, so one broken variant cannot squash
the rest. Matplotlib's object API with the Agg canvas: no pyplot global state, no display.

    >>> paths = plot_ladder(ladder, rows, "out/plots", params="non_embedding", metric="bits_per_byte")  # doctest: +SKIP
    >>> sorted(paths)  # doctest: +SKIP
    ['decode_ms_per_token', 'energy_j_per_token', 'params', 'weight_bytes']
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from compress.scaling.evidence import metric_ci
from compress.scaling.fit import METRICS, params_key
from compress.scaling.frontier import pareto
from compress.units import format_bytes, format_count, is_number

MARKERS = {"rtn": "s", "gptq": "D", "awq": "P", "smoothquant": "X", "bnb": "h", "magnitude": "^",
           "wanda": "v", "sparsegpt": "<", "structured": ">", "layerdrop": "d", "kd": "*"}
_SPARE_MARKERS = ["p", "H", "8", "o"]
_PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
            "#bcbd22", "#7f7f7f"]
AXES = {
    "params": None,  # label depends on the params setting
    "weight_bytes": "weight bytes (as stored)",
    "decode_ms_per_token": "decode latency (ms/token, median)",
    "energy_j_per_token": "energy per token (J{source})",
}


def plot_ladder(ladder, rows: list[dict], out_dir, *, params: str = "non_embedding",
                metric: str = "bits_per_byte") -> dict[str, dict[str, Path]]:
    """Write the ladder's plots; returns {axis: {"png": path, "svg": path}} for the axes with data."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    style = _Style(ladder.compressed)
    written = {}
    for axis in AXES:
        figure = _figure(ladder, rows, axis, style, params=params, metric=metric)
        if figure is not None:
            figure.draw_without_rendering()  # lay out once, then freeze it for both formats
            figure.set_layout_engine("none")
            written[axis] = {fmt: _save(figure, out_dir / f"{metric}_vs_{axis}.{fmt}", fmt) for fmt in ("png", "svg")}
    return written


class _Style:
    """Marker per method, colour per variant, stable across the plots of one ladder."""

    def __init__(self, compressed: list[dict]):
        variants = sorted({(r.get("method") or "?", r.get("variant")) for r in compressed}, key=_variant_order)
        spare = iter(_SPARE_MARKERS * 4)
        self.marker = {m: MARKERS.get(m) or next(spare) for m, _ in variants}
        self.colour = {v: _PALETTE[i % len(_PALETTE)] for i, (_, v) in enumerate(variants)}
        self.order = [v for _, v in variants]


def _variant_order(item):
    method, variant = item
    digits = "".join(c if c.isdigit() else " " for c in variant).split()
    return (method, -int(digits[0]) if digits else 0, variant)


def _figure(ladder, rows, axis, style, *, params, metric):
    spec = METRICS[metric]
    x_key = params_key(params) if axis == "params" else axis
    dense = [r for r in ladder.dense if is_number(r.get(x_key)) and r[x_key] > 0 and is_number(r.get(metric))]
    compressed = [r for r in ladder.compressed
                  if is_number(r.get(x_key)) and r[x_key] > 0 and is_number(r.get(metric))]
    if not dense and not compressed:
        return None
    figure = Figure(figsize=(9.0, 5.2), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    ys = [r[metric] for r in dense + compressed]
    low, high = _y_window([r[metric] for r in dense] or ys, ys, spec.higher_is_better)
    handles = []

    if axis == "params" and ladder.fit is not None:
        xs = np.array([r[x_key] for r in dense] or [ladder.fit.n_min, ladder.fit.n_max])
        grid = np.geomspace(min(xs.min(), ladder.fit.n_min) / 1.6, max(xs.max(), ladder.fit.n_max) * 1.6, 200)
        line, = ax.plot(grid, ladder.fit.predict(grid), color="0.25", lw=1.6, zorder=2,
                        label=f"dense fit (R² {ladder.fit.r2:.3f})")
        handles.append(line)
        if ladder.fit.form == "saturating":
            floor = float(spec.from_quantity(np.asarray(ladder.fit.E)))
            if low <= floor <= high:
                handles.append(ax.axhline(floor, color="0.55", lw=1, ls=":", zorder=1,
                                          label=f"asymptote E = {floor:.3g}"))
    elif dense:
        front = pareto(dense, metric, x_key)
        ax.plot([r[x_key] for r in front], [r[metric] for r in front], color="0.45", lw=1.2, ls="--", zorder=2)
    if dense:
        handles.append(ax.scatter([r[x_key] for r in dense], [np.clip(r[metric], low, high) for r in dense],
                                  s=46, color="black", zorder=4,
                                  label="dense" if axis == "params" else "dense (--- frontier)"))
        for r in dense:
            ci = metric_ci(r, metric)
            if ci:
                ax.plot([r[x_key]] * 2, np.clip(ci, low, high), color="black", lw=1.0, zorder=4)
        # Keep labels away from compressed points: those are worse than their source (above it for
        # loss-like metrics), dodged to the right on the parameter plot and cheaper (left) on cost plots.
        worse = 1 if not spec.higher_is_better else -1
        offset, align = ((-5, -9 * worse), "right") if axis == "params" else ((5, 8 * worse), "left")
        for r in dense:
            ax.annotate(_short(r.get("model"), ladder.family), (r[x_key], np.clip(r[metric], low, high)),
                        xytext=offset, textcoords="offset points", fontsize=7, color="0.3",
                        ha=align, va="center", zorder=5)

    sources = {r.get("model"): r for r in dense}
    for variant in style.order:
        members = [r for r in compressed if r.get("variant") == variant]
        if not members:
            continue
        colour, marker = style.colour[variant], style.marker[members[0].get("method") or "?"]
        for r in members:
            x, y = r[x_key], r[metric]
            shown = float(np.clip(y, low, high))
            ci = metric_ci(r, metric)
            if ci and shown == y:
                ax.plot([x, x], np.clip(ci, low, high), color=colour, lw=1.0, alpha=0.8, zorder=5)
            source = sources.get(r.get("source_model"))
            if source is not None:
                ax.annotate("", xy=(x, shown), xytext=(source[x_key], np.clip(source[metric], low, high)),
                            arrowprops=dict(arrowstyle="->", color=colour, alpha=0.45, lw=0.9,
                                            shrinkA=4, shrinkB=4), zorder=3)
            ax.scatter([x], [shown], s=52, marker=marker, color=colour, edgecolor="white", linewidth=0.6, zorder=6)
            if shown != y:
                ax.annotate(f"{y:.3g} ({'off scale'})", (x, shown), xytext=(6, -3 if shown == high else 3),
                            textcoords="offset points", fontsize=7, color=colour, zorder=6)
        handles.append(Line2D([], [], ls="", marker=marker, color=colour, markersize=7, label=variant))
    if compressed and sources:
        handles.append(Line2D([], [], ls="", marker=r"$\rightarrow$", color="0.5", markersize=12,
                              label="arrow: from its dense source"))

    _decorate(ax, figure, ladder, axis, x_key, metric, params, low, high, handles, dense + compressed)
    return figure


def _decorate(ax, figure, ladder, axis, x_key, metric, params, low, high, handles, records):
    spec = METRICS[metric]
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_minor_formatter(NullFormatter())
    formatter = format_bytes if axis == "weight_bytes" else format_count if axis == "params" else _plain
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: formatter(v)))
    xs = [r[x_key] for r in records]
    ax.set_xlim(min(xs) / 1.5, max(xs) * 1.5)
    pad = 0.06 * (high - low or abs(high) or 1.0)
    ax.set_ylim(low - pad, high + pad)
    params_label = "non-embedding" if params == "non_embedding" else "total"
    if axis == "params":
        ax.set_xlabel(f"parameters ({params_label}, N)")
    elif axis == "energy_j_per_token":
        sources = sorted({str(r.get("energy_source")) for r in records if r.get("energy_source")})
        label = AXES[axis].format(source=", " + " + ".join(sources) if sources else "")
        if sources == ["estimate"]:
            label += " — ESTIMATE ∝ time, not measured; ranks as latency does"
        ax.set_xlabel(label)
    else:
        ax.set_xlabel(AXES[axis])
    arrow = "higher is better" if spec.higher_is_better else "lower is better"
    ax.set_ylabel(f"{spec.label} ({arrow})")
    ax.grid(True, which="major", color="0.9", lw=0.8)
    ax.set_axisbelow(True)
    vs = "parameters" if axis == "params" else AXES[axis].split(" (")[0]
    device = ladder.device or "?"
    ax.set_title(f"{ladder.family or 'models'} on {device}: {spec.label} vs {vs}", fontsize=12, loc="left")
    subtitle = f"N = {params_label} parameters · scenario {ladder.scenario or '?'}"
    if ladder.fit is not None:
        subtitle += f" · {ladder.fit.describe().split('  (')[0]}"
    else:
        subtitle += " · no fitted curve (see the report)"
    figure.suptitle(subtitle, fontsize=8.5, color="0.35", x=0.01, ha="left")
    figure.legend(handles=handles, loc="outside right upper", fontsize=8.5, frameon=False,
                  title="models", title_fontsize=8.5)


def _y_window(dense_values, all_values, higher_is_better):
    """(low, high) shown: all dense points, and compressed ones unless far off (then pinned)."""
    lo, hi = min(dense_values), max(dense_values)
    span = max(hi - lo, 0.05 * abs(hi) or 0.05)
    allowed_low, allowed_high = lo - 0.5 * span, hi + 1.5 * span
    if higher_is_better:
        allowed_low, allowed_high = lo - 1.5 * span, hi + 0.5 * span
    low = max(min(all_values), allowed_low)
    high = min(max(all_values), allowed_high)
    return low, high


def _short(model: str | None, family: str | None) -> str:
    name = model or "?"
    name = name.rsplit("/", 1)[-1]
    if family and name.startswith(family + "-") and len(name) > len(family) + 1:
        name = name[len(family) + 1:]
    return name


def _plain(value: float) -> str:
    return f"{value:.3g}"


def _save(figure: Figure, path: Path, fmt: str) -> Path:
    """Atomic: render to a temp file beside the target, then rename over it."""
    from compress.atomic import staged_file

    with staged_file(path) as tmp:
        metadata = {"Date": None} if fmt == "svg" else {"Software": None}
        figure.savefig(tmp, format=fmt, dpi=130, metadata=metadata)
    return path
