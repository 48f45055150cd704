"""report.md and a self-contained report.html (plots embedded) from a results store.

The report is built once as a list of blocks (headings, paragraphs, tables, figures) and
rendered twice, so the Markdown and the HTML always say the same thing. Every file is written
atomically (temp file beside it, then rename).

Default budget (when none is given): the weight bytes of the second-largest dense model of the
first ladder. That asks the report's central question: does a compressed larger model beat the
dense model one size down at its own memory?

    >>> paths = write_report(read_records("out/results.jsonl"), "out")  # doctest: +SKIP
    >>> paths["html"]  # doctest: +SKIP
    PosixPath('out/report.html')
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from compress.errors import UserError
from compress.scaling.fit import metric_spec, params_key
from compress.scaling.frontier import Budget, NothingFits, latest, make_budget, pareto, recommend
from compress.units import format_bytes, format_count, is_number
from compress.scaling.placement import COST_AXES, ladders, place_on
from compress.scaling.plot import AXES, plot_ladder

_METRIC_KEYS = ("bits_per_byte", "loss", "perplexity", "acc", "acc_norm")
_CSS = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:1em 0;font-size:.9em}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}"
        "th{background:#f4f4f4}"
        "img{max-width:100%;border:1px solid #eee;margin:.5em 0}code{background:#f4f4f4;padding:0 .2em}")


def write_report(records: list[dict], out_dir, *, params: str = "non_embedding", metric: str = "bits_per_byte",
                 budget: Budget | dict | None = None) -> dict:
    """Write report.md, report.html and plots/*.png|svg under `out_dir`.

    Returns {"markdown": path, "html": path, "plots": [paths], "recommendation": one line,
    "fits": [fit dict per ladder]}. `budget`: a Budget, a dict of its fields, or None (default above).

        >>> write_report(records, "out", budget={"max_weight_bytes": 2e6})  # doctest: +SKIP
        {'markdown': PosixPath('out/report.md'), 'html': PosixPath('out/report.html'), 'plots': [...]}
    """
    key = params_key(params)
    spec = metric_spec(metric)
    records = latest(records)
    if not records:
        raise UserError("RESULTS: the results store holds no records; benchmark models first (scalecompress run)")
    if not any(is_number(r.get(metric)) for r in records):
        present = [m for m in _METRIC_KEYS if any(is_number(r.get(m)) for r in records)]
        raise UserError(f"--metric: no record has a '{metric}' value; measured: {', '.join(present) or 'none'}; "
                        "pass one of them with --metric")
    out_dir = Path(out_dir)
    groups = ladders(records, params=params, metric=metric)
    budget, budget_note = _budget(budget, groups, key)

    blocks = [("h1", "scalecompress report"),
              ("p", f"{len(records)} records ({sum(len(g.dense) for g in groups)} dense, "
                    f"{sum(len(g.compressed) for g in groups)} compressed) in {len(groups)} ladder(s). "
                    f"Metric: {metric} ({spec.label}, {'higher' if spec.higher_is_better else 'lower'} is "
                    f"better). N = {params.replace('_', '-')} parameters throughout. Margins against dense are "
                    "signed so that positive means better than dense.")]
    plots = []
    for group in groups:
        plot_dir = out_dir / "plots" / (group.slug if len(groups) > 1 else "")
        rows = place_on(group, params=params, metric=metric)
        written = plot_ladder(group, rows, plot_dir, params=params, metric=metric)
        plots.extend(p for formats in written.values() for p in formats.values())
        blocks += _ladder_blocks(group, rows, written, key, params, metric, out_dir)
    recommendation_blocks, summary = _recommendation_blocks(records, budget, budget_note, metric)
    blocks += recommendation_blocks

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out_dir / "report.md", "html": out_dir / "report.html"}
    _write_atomic(paths["markdown"], _markdown(blocks))
    _write_atomic(paths["html"], _html(blocks))
    return {**paths, "plots": plots, "recommendation": summary,
            "fits": [g.fit.to_dict() if g.fit else {"error": g.fit_error} for g in groups]}


def _budget(budget, groups, key):
    if isinstance(budget, Budget):
        return budget, "the budget given"
    if budget:
        return make_budget(**budget), "the budget given"
    dense = [r for g in groups[:1] for r in g.dense if is_number(r.get(key)) and is_number(r.get("weight_bytes"))]
    if len(dense) < 2:
        return Budget(), "no budget given, and fewer than two dense models with weight bytes: no limit"
    second = sorted(dense, key=lambda r: r[key])[-2]
    return Budget(max_weight_bytes=second["weight_bytes"]), (
        f"default: the weight bytes of the second-largest dense model ({second.get('model')}), asking whether a "
        "compressed larger model beats the dense model one size down")


def _ladder_blocks(group, rows, written, key, params, metric, out_dir):
    title = f"{group.family or 'models'} on {group.device or '?'} (scenario {group.scenario or '?'})"
    blocks = [("h2", f"Ladder: {title}"), ("h3", "Fit")]
    fit = group.fit
    if fit is None:
        blocks.append(("p", f"No curve: {group.fit_error}"))
    else:
        fallback = f" Fallback to a power law: {fit.note}." if fit.note else ""
        blocks.append(("p", f"{fit.describe()}; {fit.n_points} dense points, N from {format_count(fit.n_min)} to "
                            f"{format_count(fit.n_max)}.{fallback}"))
        floor = f"{fit.E:.4g}" if fit.form == "saturating" else "none (power law)"
        blocks.append(("table", ["form", "E", "A", "α", "R²", "fitted quantity", "N"],
                       [[fit.form, floor, f"{fit.A:.4g}", f"{fit.alpha:.4f}", f"{fit.r2:.4f}",
                         fit.quantity, f"{params.replace('_', '-')} params"]]))
    for axis, formats in written.items():
        caption = f"{metric} vs {'parameters' if axis == 'params' else AXES[axis].split(' (')[0]}"
        blocks.append(("img", caption, formats["png"], formats["png"].relative_to(out_dir).as_posix()))

    blocks.append(("h3", "Results"))
    table = []
    for r in group.dense + group.compressed:
        energy = f"{_num(r.get('energy_j_per_token'))} ({r.get('energy_source') or '—'})"
        table.append([r.get("model"), r.get("variant"), format_count(r.get(key)), format_bytes(r.get("weight_bytes")),
                      _num(r.get("bits_per_byte")), _num(r.get("perplexity")), _num(r.get("acc")),
                      _num(r.get("decode_ms_per_token")), energy])
    blocks.append(("table", ["model", "variant", f"params ({params.replace('_', '-')})", "weight bytes",
                             "bits/byte", "perplexity", "acc", "decode ms/token", "energy J/token (source)"], table))

    if rows:
        blocks.append(("h3", "Compressed models against the dense curve"))
        blocks.append(("p", "Effective params: the dense size at which the fitted curve reaches the compressed "
                            "model's metric; ratio = effective / source params. On each cost axis: the verdict "
                            "against the dense frontier at equal cost (log-cost interpolation), with the margin."))
        table = [[r["model"], r["variant"], format_bytes(_record(group, r).get("weight_bytes")),
                  _num(r["metric_value"]), format_count(r["effective_params"]),
                  _num(r["effective_ratio"], 3), r["effective_flag"].replace("_", " "),
                  format_count(_record(group, r).get("distill_tokens")) if _record(group, r).get("distill_tokens") else "—",
                  *[_verdict(r["vs_dense"][axis]) for axis in COST_AXES]] for r in rows]
        blocks.append(("table", ["model", "variant", "weight bytes", metric, "effective params", "ratio", "fit range", "distillation tokens",
                                 "vs dense @ weight bytes", "@ decode latency", "@ energy"], table))

    blocks.append(("h3", "Pareto sets"))
    members = group.dense + group.compressed
    for axis in COST_AXES:
        front = pareto(members, metric, axis)
        text = ", ".join(f"{r.get('model')} {r.get('variant')} ({_cost(axis, r[axis])}, {_num(r[metric])})"
                         for r in front)
        blocks.append(("p", f"{metric} vs {axis}: {text or 'not measured'}"))
    return blocks


def _recommendation_blocks(records, budget, budget_note, metric):
    blocks = [("h2", "Recommendation"), ("p", f"Budget: {budget.describe()} ({budget_note}).")]
    lines = []
    devices = sorted({str(r.get("device")) for r in records})
    for device in devices:
        prefix = f"On {device}: " if len(devices) > 1 else ""
        try:
            rec = recommend(records, metric=metric, device=None if len(devices) == 1 else device,
                            **budget.model_dump())
        except (NothingFits, UserError) as error:
            blocks.append(("p", f"{prefix}{error}"))
            lines.append(f"{prefix}{error}")
            continue
        blocks.append(("p", f"{prefix}**{rec.pick['model']} {rec.pick['variant']}** — {rec.reason}"))
        lines.append(f"{prefix}{rec.pick['model']} {rec.pick['variant']} on {rec.pick['device']} "
                     f"({metric} {rec.pick['metric_value']:.4g}, {format_bytes(rec.pick['weight_bytes'])}) "
                     f"within {budget.describe()}")
        table = [["pick" if i == 0 else f"runner-up {i}", s["model"], s["variant"], _num(s["metric_value"]),
                  format_bytes(s["weight_bytes"]), _num(s["decode_ms_per_token"]), _num(s["energy_j_per_token"])]
                 for i, s in enumerate([rec.pick, *rec.runner_ups])]
        blocks.append(("table", ["rank", "model", "variant", metric, "weight bytes", "decode ms/token",
                                 "energy J/token"], table))
    return blocks, "; ".join(lines)


def _record(group, row):
    for r in group.compressed:
        if (r.get("model"), r.get("variant")) == (row["model"], row["variant"]):
            return r
    return {}


def _verdict(position: dict) -> str:
    if position["verdict"] == "unknown":
        return f"— ({position['note']})" if position["note"] else "—"
    return f"{position['verdict']} ({position['margin']:+.3g})"


def _cost(axis: str, value) -> str:
    return format_bytes(value) if axis == "weight_bytes" else f"{_num(value)} {'ms' if 'ms' in axis else 'J'}"


def _num(value, digits: int = 4) -> str:
    return f"{value:.{digits}g}" if is_number(value) else "—"


def _markdown(blocks) -> str:
    out = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            out.append("#" * int(kind[1]) + " " + block[1])
        elif kind == "p":
            out.append(block[1])
        elif kind == "table":
            cells = lambda row: "| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |"
            out.append("\n".join([cells(block[1]), cells(["---"] * len(block[1])), *map(cells, block[2])]))
        elif kind == "img":
            out.append(f"![{block[1]}]({block[3]})")
    return "\n\n".join(out) + "\n"


def _html(blocks) -> str:
    body = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            body.append(f"<{kind}>{html.escape(block[1])}</{kind}>")
        elif kind == "p":
            text = html.escape(block[1])
            while text.count("**") >= 2:
                text = text.replace("**", "<strong>", 1).replace("**", "</strong>", 1)
            body.append(f"<p>{text}</p>")
        elif kind == "table":
            head = "".join(f"<th>{html.escape(str(c))}</th>" for c in block[1])
            rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                           for row in block[2])
            body.append(f"<table><tr>{head}</tr>{rows}</table>")
        elif kind == "img":
            data = base64.b64encode(Path(block[2]).read_bytes()).decode("ascii")
            body.append(f'<figure><img alt="{html.escape(block[1])}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{html.escape(block[1])}</figcaption></figure>")
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>scalecompress report</title>"
            f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def _write_atomic(path: Path, text: str) -> None:
    from compress.atomic import write_text

    write_text(path, text)
