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

from pathlib import Path

from compress.errors import UserError
from compress.scaling.advice import OPTION_HEADERS, option_cells
from compress.scaling.evidence import metric_ci
from compress.scaling.fit import metric_spec, params_key
from compress.scaling.frontier import (
    Budget,
    NothingFits,
    latest,
    make_budget,
    pareto,
    recommend,
)
from compress.scaling.kbit import kbit_analysis, plot_kbit
from compress.scaling.law import check_fit
from compress.scaling.placement import COST_AXES, ladders, place_on
from compress.scaling.plot import AXES, plot_ladder
from compress.scaling.render import markdown, to_html, write_atomic
from compress.scaling.verdict import verdict_card
from compress.units import format_bytes, format_count, is_number

_METRIC_KEYS = ("bits_per_byte", "loss", "perplexity", "acc", "acc_norm")


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

    intro = [("p", f"{len(records)} records ({sum(len(g.dense) for g in groups)} dense, "
                    f"{sum(len(g.compressed) for g in groups)} compressed) in {len(groups)} ladder(s). "
                    f"Metric: {metric} ({spec.label}, {'higher' if spec.higher_is_better else 'lower'} is "
                    f"better). N = {params.replace('_', '-')} parameters throughout. Margins against dense are "
                    "signed so that positive means better than dense; intervals are 95%.")]
    plots, body, all_rows, kbits = [], [], [], []
    for group in groups:
        plot_dir = out_dir / "plots" / (group.slug if len(groups) > 1 else "")
        rows = place_on(group, params=params, metric=metric)
        all_rows += rows
        written = plot_ladder(group, rows, plot_dir, params=params, metric=metric)
        plots.extend(p for formats in written.values() for p in formats.values())
        body += _ladder_blocks(group, rows, written, key, params, metric, out_dir)
        analysis = kbit_analysis(group.dense + group.compressed, metric)
        if analysis is not None:
            figure = plot_kbit(analysis, plot_dir, metric=metric, family=group.family)
            plots += list(figure.values())
            kbits.append((group, analysis))
            body += _kbit_blocks(group, analysis, figure, out_dir)
    recommendation_blocks, summary = _recommendation_blocks(records, budget, budget_note, metric)

    card = verdict_card(all_rows, records, metric)
    lines = list(card["lines"])
    lines += [f"k-bit ({g.family}): bit-optimal precision **{a['optimal']}** — {a['evidence']}" for g, a in kbits]
    if summary:
        lines.append(f"Recommendation: {summary}.")
    from compress.bench.slower import slower_than_dense

    lines += [f"Slower than dense: {line}" for line in slower_than_dense(records)]  # issue 14: never silently slower
    blocks = [("h1", "scalecompress report"), ("card", "Verdict: compressed models against the dense curve", lines),
              *intro, *_environment_blocks(records, out_dir), *body, *recommendation_blocks]

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out_dir / "report.md", "html": out_dir / "report.html"}
    write_atomic(paths["markdown"], markdown(blocks))
    write_atomic(paths["html"], to_html(blocks))
    return {**paths, "plots": plots, "recommendation": summary, "verdict": card,
            "kbit": [{"family": g.family, "optimal": a["optimal"], "evidence": a["evidence"]} for g, a in kbits],
            "fits": [g.fit.to_dict() if g.fit else {"error": g.fit_error} for g in groups]}


def _environment_blocks(records, out_dir):
    envs = [r.get("env") or {} for r in records]
    env = next((e for e in envs if e), {})
    energy = sorted({f"{r.get('energy_source')}: {r.get('energy_method')}" for r in records if r.get("energy_source")})
    dates = sorted(r.get("timestamp") for r in records if r.get("timestamp"))
    threads = sorted({str(r.get("threads")) for r in records if r.get("threads") is not None})
    bandwidth = (env.get("read_bandwidth") or {})
    flags = ", ".join(env.get("cpu_flags") or []) or "—"
    rows = [["CPU", env.get("cpu") or "—"], ["vector extensions", flags],
            ["read bandwidth", f"{bandwidth['bytes_per_s'] / 1e9:.1f} GB/s ({bandwidth['method']})" if bandwidth else "not measured"],
            ["GPU", env.get("gpu") or "none"], ["threads", ", ".join(threads) or "—"],
            ["torch", env.get("torch") or "—"], ["transformers", env.get("transformers") or "—"],
            ["python", env.get("python") or "—"], ["git revision", env.get("git_revision") or "—"],
            ["energy method", "; ".join(energy) or "not measured"],
            ["measured", f"{dates[0]} to {dates[-1]}" if dates else "—"]]
    blocks = [("h2", "Environment"), ("table", ["", "value"], rows)]
    recipe = Path(out_dir) / "recipe.yaml"
    if recipe.is_file():
        blocks += [("h2", "Recipe as run"), ("pre", recipe.read_text(encoding="utf-8"))]
    return blocks


def _kbit_blocks(group, analysis, figure, out_dir):
    rows = [[label, len(members), format_bytes(members[0]["weight_bytes"]) + " – " + format_bytes(members[-1]["weight_bytes"]),
             analysis["wins"][label]] for label, members in analysis["curves"].items()]
    return [("h3", "k-bit scaling (metric against total model bits)"),
            ("p", f"Bit-optimal on this ladder and data: **{analysis['optimal']}**. {analysis['evidence']} Dense "
                  "baseline fp32; embeddings are not quantized (rtn touches linear layers only); total bits = stored "
                  "weight bytes × 8."),
            ("table", ["precision", "sizes", "weight bytes", "budgets won"], rows),
            ("img", "k-bit scaling: metric vs total model bits", figure["png"],
             figure["png"].relative_to(out_dir).as_posix())]


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
    if group.law:
        blocks.append(("p", f"Law: {group.law['text']}"))
    if fit is not None:
        check = check_fit(fit, group.dense, metric, key)
        blocks.append(("table", ["dense member", "N", metric, "± se", "fit", "residual", "residual / se",
                                 "leave-one-out residual / se"],
                       [[c["model"], format_count(c["n"]), _num(c["value"]), _num(c["se"], 2), _num(c["predicted"]),
                         f"{c['residual']:+.3g}", _num(c["z"], 2), _num(c["loo_z"], 2)] for c in check["rows"]]))
        if check["flagged"]:
            blocks.append(("p", f"**Fit flagged**: it misses {', '.join(check['flagged'])} by more than "
                                f"{check['tolerance_se']:g} standard errors of the member's own metric, so the law is "
                                "not a faithful summary there; effective parameters inside the ladder come from the "
                                "measured points, not from the law."))
        elif not check["has_noise"]:
            blocks.append(("p", "The dense records carry no per-window values, so the fit's residuals cannot be "
                                "compared with the metric's noise."))
        else:
            blocks.append(("p", f"Every dense point lies within {check['tolerance_se']:g} standard errors of the fit."))
    if group.curve is not None and group.curve.note:
        blocks.append(("p", f"Note: {group.curve.note}."))
    for axis, formats in written.items():
        caption = f"{metric} vs {'parameters' if axis == 'params' else AXES[axis].split(' (')[0]}"
        blocks.append(("img", caption, formats["png"], formats["png"].relative_to(out_dir).as_posix()))

    blocks.append(("h3", "Results"))
    table = []
    for r in group.dense + group.compressed:
        energy = f"{_num(r.get('energy_j_per_token'))} ({r.get('energy_source') or '—'})"
        table.append([r.get("model"), r.get("variant"), format_count(r.get(key)), format_bytes(r.get("weight_bytes")),
                      _with_ci(r, "bits_per_byte"), _with_ci(r, "perplexity"), _with_ci(r, "acc"),
                      _spread(r), energy])
    blocks.append(("table", ["model", "variant", f"params ({params.replace('_', '-')})", "weight bytes",
                             "bits/byte [95%]", "perplexity [95%]", "acc [95%]", "decode ms/token (p10–p90)",
                             "energy J/token (source)"], table))

    if rows:
        blocks.append(("h3", "Compressed models against the dense curve"))
        blocks.append(("p", "Effective params: the dense size that scores what the compressed model scores, read off "
                            "a monotone interpolation of the measured dense points (the law only beyond the ladder's "
                            "ends: 'extrapolated'); ratio = effective / source params, with the interval that follows "
                            "from the metric's 95% interval. vs source: paired block bootstrap of per-window "
                            "differences (positive = better than its source). KL: mean and p99 of the per-token KL "
                            "divergence from the source's next-token distribution (top-64 + rest); top-1: agreement "
                            "of the two argmaxes. On each cost axis: the verdict against the dense frontier at equal "
                            "cost (log-cost interpolation), with the margin and its paired 95% interval."))
        table = [[r["model"], r["variant"], format_bytes(_record(group, r).get("weight_bytes")),
                  _num(r["metric_value"]), _effective(r), r["effective_flag"].replace("_", " "), _source_test(r),
                  _num(r.get("kl_mean"), 3), _num(r.get("kl_p99"), 3), _num(r.get("top1_agreement"), 4),
                  format_count(_record(group, r).get("distill_tokens")) if _record(group, r).get("distill_tokens") else "—",
                  *[_verdict(r["vs_dense"][axis]) for axis in COST_AXES]] for r in rows]
        blocks.append(("table", ["model", "variant", "weight bytes", metric, "ratio [95%] (effective params)",
                                 "range", "vs source [95%]", "KL mean", "KL p99", "top-1", "distillation tokens",
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
        if rec.better_pick.get("variant") != rec.pick["variant"] or rec.better_pick.get("model") != rec.pick["model"]:
            blocks.append(("p", f"{prefix}Better pick: **{rec.better_pick['model']} dense**, indistinguishable from the pick within noise."))
        blocks.append(("p", ("Every model size × method: its best configuration within the budget (else its cheapest); "
                             "'pick − this' is the paired 95% difference (> 0: the pick is better).")))
        blocks.append(("table", [h.format(metric=metric) for h in OPTION_HEADERS], [option_cells(o) for o in rec.options]))
    return blocks, "; ".join(lines)


def _record(group, row):
    for r in group.compressed:
        if (r.get("model"), r.get("variant")) == (row["model"], row["variant"]):
            return r
    return {}


def _verdict(position: dict) -> str:
    if position["verdict"] == "unknown":
        return f"— ({position['note']})" if position["note"] else "—"
    interval = f" [{position['low']:+.3g}, {position['high']:+.3g}]" if position.get("low") is not None else ""
    return f"{position['verdict']} ({position['margin']:+.3g}{interval})"


def _with_ci(record: dict, metric: str) -> str:
    value, ci = record.get(metric), metric_ci(record, metric)
    if not is_number(value):
        return "—"
    return f"{value:.4g} [{ci[0]:.4g}, {ci[1]:.4g}]" if ci else f"{value:.4g}"


def _spread(record: dict) -> str:
    median, low, high = (record.get(k) for k in ("decode_ms_per_token", "decode_ms_per_token_p10",
                                                 "decode_ms_per_token_p90"))
    if not is_number(median):
        return "—"
    if is_number(low) and is_number(high):
        return f"{median:.4g} ({low:.3g}–{high:.3g})"
    return f"{median:.4g} (p90 {high:.3g})" if is_number(high) else f"{median:.4g}"


def _effective(row: dict) -> str:
    if row["effective_ratio"] is None:
        return "—"
    text = f"{row['effective_ratio']:.3f}"
    ci = row.get("effective_ratio_ci")
    if ci:
        low = f"{ci[0]:.3f}" if ci[0] is not None else "?"
        high = f"{ci[1]:.3f}" if ci[1] is not None and ci[1] != float("inf") else "∞"
        text += f" [{low}, {high}]"
    return f"{text} ({format_count(row['effective_params'])})"


def _source_test(row: dict) -> str:
    test = row.get("vs_source") or {}
    if test.get("margin") is None:
        return "—"
    if test.get("low") is None:
        return f"{test['margin']:+.3g} (no interval)"
    word = "indistinguishable" if test["indistinguishable"] else ("better" if test["margin"] > 0 else "worse")
    return f"{word} {test['margin']:+.3g} [{test['low']:+.3g}, {test['high']:+.3g}]"


def _cost(axis: str, value) -> str:
    return format_bytes(value) if axis == "weight_bytes" else f"{_num(value)} {'ms' if 'ms' in axis else 'J'}"


def _num(value, digits: int = 4) -> str:
    return f"{value:.{digits}g}" if is_number(value) else "—"
