"""`scalecompress recommend | report`: answer "what fits my budget?" and write the report, from a results store.

Both commands only read results.jsonl; nothing is loaded or measured.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from compress.cli import app

_WEIGHT_HELP = ("Largest size of the weights as stored (not peak RAM), e.g. 2MB, 1.5GiB, 500k (recipe: report.max_weight_bytes; "
                "was --max-memory).")
_METRIC_HELP = "Metric to rank and fit: bits_per_byte (default), loss, perplexity, acc or acc_norm."


@app.command("recommend")
def recommend_command(
    results: Path = typer.Argument(..., help="results.jsonl written by `scalecompress run` or `demo`, or their output folder (all shards merged)."),
    max_memory: Optional[str] = typer.Option(None, "--max-weight-bytes", help=_WEIGHT_HELP),
    max_latency_ms: Optional[float] = typer.Option(None, "--max-decode-ms", help="Largest median decode latency, ms per token (recipe: report.max_decode_ms)."),
    max_energy_j: Optional[float] = typer.Option(None, "--max-energy-j-per-token", help="Largest energy per generated token, joules (recipe: report.max_energy_j_per_token)."),
    metric: str = typer.Option("bits_per_byte", "--metric", help=_METRIC_HELP),
    device: Optional[str] = typer.Option(None, "--device", help="Only consider records measured on this device (cpu or cuda)."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object (pick, runner_ups, binding, reason)."),
    no_progress: bool = typer.Option(False, "--no-progress", help="Accepted for uniformity; recommend only reads results."),  # noqa: ARG001
    materialize: Optional[Path] = typer.Option(None, "--materialize", help="Rebuild the pick from its recorded passes and write it, exported, to this path."),
    export_format: str = typer.Option("auto", "--format", help="With --materialize: auto (compressed-tensors when it holds the pick exactly, else scalecompress's packed checkpoint; a dense pick as hf), scalecompress, compressed-tensors, gguf or hf."),
) -> None:
    """Pick the best measured configuration within the budget and say why.

    Exit 0 with the pick; exit 1 with one line when nothing fits; exit 2 for a bad flag or path.

        scalecompress recommend out/results.jsonl --max-weight-bytes 2MB --max-decode-ms 5
    """
    from compress.scaling.fit import metric_spec
    from compress.scaling.frontier import recommend
    from compress.units import format_bytes, parse_size
    from compress.scaling.placement import read_records

    metric_spec(metric)
    records = read_records(results)
    rec = recommend(records, max_weight_bytes=parse_size(max_memory) if max_memory is not None else None,
                    max_decode_ms=max_latency_ms, max_energy_j_per_token=max_energy_j, metric=metric, device=device)
    if materialize is not None:  # issue 11: compress/export/materialize.py
        from compress.export.materialize import materialize as write_pick

        document = write_pick(records, rec, Path(results), materialize, export_format)
        if json_output:
            sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
        else:
            print(f"pick: {rec.pick['model']} {rec.pick['variant']}, written as {document['artifact']['format']}: {document['artifact']['path']}")
        return
    if json_output:
        sys.stdout.write(json.dumps(rec.to_dict(), indent=2, default=str) + "\n")
        return
    from compress.cli.table import print_table

    print(f"pick: {rec.pick['model']} {rec.pick['variant']} on {rec.pick['device']}")
    if rec.better_pick.get("model") != rec.pick["model"] or rec.better_pick.get("variant") != rec.pick["variant"]:
        print(f"better pick: {rec.better_pick['model']} {rec.better_pick['variant']} (dense, indistinguishable within noise)")
    print(f"why:  {rec.reason}\n")
    rows = [["pick" if i == 0 else str(i + 1), s["model"], s["variant"], s["device"], f"{s['metric_value']:.4g}",
             format_bytes(s["weight_bytes"]), _fmt(s["decode_ms_per_token"]),
             _fmt(s["energy_j_per_token"]) + (f" ({s['energy_source']})" if s.get("energy_source") else "")]
            for i, s in enumerate([rec.pick, *rec.runner_ups])]
    print_table(rows, ["rank", "model", "variant", "device", metric, "weights", "decode ms/tok", "J/token"])
    print(f"\nEvery model size x method ({len(rec.options)}): its best configuration within the budget, else its cheapest; "
          "'pick − this' is the paired 95% difference (> 0: the pick is better)")
    from compress.scaling.advice import OPTION_HEADERS, option_cells

    print_table([option_cells(o) for o in rec.options], [h.format(metric=metric) for h in OPTION_HEADERS])


@app.command("report")
def report_command(
    results: Path = typer.Argument(..., help="results.jsonl written by `scalecompress run` or `demo`, or their output folder (all shards merged)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for report.md, report.html and plots/."),
    params: str = typer.Option("non_embedding", "--params", help="Parameter count for the fit and plots: non_embedding or total."),
    metric: str = typer.Option("bits_per_byte", "--metric", help=_METRIC_HELP),
    max_memory: Optional[str] = typer.Option(None, "--max-weight-bytes", help=_WEIGHT_HELP + " Default: the weight bytes of the second-largest dense model."),
    max_latency_ms: Optional[float] = typer.Option(None, "--max-decode-ms", help="Budget: largest decode ms/token (recipe: report.max_decode_ms)."),
    max_energy_j: Optional[float] = typer.Option(None, "--max-energy-j-per-token", help="Budget: largest J/token (recipe: report.max_energy_j_per_token)."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object with the paths written."),
    no_progress: bool = typer.Option(False, "--no-progress", help="Accepted for uniformity; report draws no progress bars."),  # noqa: ARG001
) -> None:
    """Fit the dense ladder, place compressed models, plot, and write report.md + report.html.

        scalecompress report out/results.jsonl --out out --params total
    """
    from compress.scaling.frontier import make_budget
    from compress.units import parse_size
    from compress.scaling.placement import read_records
    from compress.scaling.report import write_report

    budget = make_budget(max_weight_bytes=parse_size(max_memory) if max_memory is not None else None,
                         max_decode_ms=max_latency_ms, max_energy_j_per_token=max_energy_j)
    written = write_report(read_records(results), out, params=params, metric=metric,
                           budget=budget if budget.active() else None)
    if json_output:
        document = {"markdown": str(written["markdown"]), "html": str(written["html"]),
                    "plots": [str(p) for p in written["plots"]], "recommendation": written["recommendation"]}
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return
    print(f"recommendation: {written['recommendation']}")
    print(f"report: {written['markdown']}\nreport: {written['html']}\nplots: {len(written['plots'])} files in "
          f"{Path(written['markdown']).parent / 'plots'}")


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4g}"
