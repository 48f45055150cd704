"""`scalecompress run | validate | ls | info`: recipes, passes and checkpoints."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from compress.cli import app
from compress.cli.table import format_bytes, print_table
from compress.errors import UserError

EXIT_GATE = 3

ls_app = typer.Typer(help="List what is available: `scalecompress ls passes`.", no_args_is_help=True)
app.add_typer(ls_app, name="ls")


def _emit_json(document) -> None:
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")


def _log(silent: bool):
    from compress.cli import quiet

    return (lambda message: None) if silent or quiet() else (lambda message: print(message, file=sys.stderr))


TRUST_HELP = "Allow the checkpoint's own Python code (auto_map) to run. Only for sources you trust; a recipe can never turn this on."
DEVICE_HELP = "auto, cpu, cuda or cuda:N; overrides the recipe's bench.device."


@app.command("validate")
def validate_command(
    recipe: Path = typer.Argument(..., help="Recipe YAML file to check. No model is loaded."),
    json_output: bool = typer.Option(False, "--json", help="Print the normalised recipe as JSON."),
    no_progress: bool = typer.Option(False, "--no-progress", help="Accepted for uniformity; validate draws no progress bars."),  # noqa: ARG001
) -> None:
    """Check a recipe without loading any model: passes, fields, values, bench and data sections.

    Exit 0 when valid; exit 2 with one line naming file, pass, field and allowed values when not.
    """
    from compress.recipe import Recipe

    parsed = Recipe.from_yaml(recipe)
    if json_output:
        _emit_json({"valid": True, "recipe": parsed.to_dict()})
        return
    variants = ", ".join(f"{v.name} ({len(v.passes)} pass{'es' if len(v.passes) != 1 else ''})" for v in parsed.variants)
    print(f"{recipe}: valid — {len(parsed.variants)} variant(s): {variants or 'none (benchmark only)'}")


@app.command("run")
def run_command(
    recipe: Path = typer.Argument(..., help="Recipe YAML (see recipes/ for examples)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model to compress (hub id or folder); overrides the recipe's `model:`."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder; overrides the recipe's `out:`."),
    device: Optional[str] = typer.Option(None, "--device", help=DEVICE_HELP),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help=TRUST_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Let the saved checkpoint (<out>/model) replace a folder of files scalecompress did not write."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List the modules each pass would touch and the bytes it would change; change nothing."),
    shard: Optional[str] = typer.Option(None, "--shard", help="Run only shard i of n of the jobs, e.g. 2/4 (each shard writes its own results file)."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object with the results instead of tables."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bars (logs in CI)."),
) -> None:
    """Run a recipe: compress, benchmark, compare with the dense family, report.

    Reruns resume: (model, variant, device) pairs already in the results store are skipped.
    One run at a time per output folder. The recipe as run is kept in <out>/.scalecompress/.
    Exit codes: 0 ok, 1 failure, 2 bad input, 3 an accuracy gate (bench.max_ppl_increase) was
    crossed or could not be evaluated, 130 interrupted (rerun to resume).
    """
    from compress.devices import bench_device
    from compress.recipe import Recipe

    parsed = Recipe.from_yaml(recipe)
    device = bench_device(device)
    if dry_run:
        _dry_run(parsed, model, json_output, trust_remote_code)
        return
    from compress.sweep import parse_shard, run_recipe

    result = run_recipe(
        parsed, out=out, model=model, device=device, shard=parse_shard(shard), progress=not no_progress,
        log=_log(json_output), trust_remote_code=trust_remote_code, overwrite=overwrite,
    )
    if json_output:
        _emit_json(_result_json(result))
    else:
        _print_result(result)
    for line in result.slower_than_dense:
        print(f"scalecompress: {line}", file=sys.stderr)
    if result.gate_failures:
        for line in result.gate_failures:
            print(f"scalecompress: accuracy gate crossed: {line}", file=sys.stderr)
        raise typer.Exit(EXIT_GATE)


def _dry_run(recipe, model: str | None, json_output: bool, trust_remote_code: bool) -> None:
    import compress
    from compress.core.apply import plan

    source = model or recipe.model
    if source is None:
        raise UserError("--dry-run needs a model to inspect: give --model or a recipe with `model:`")
    loaded = compress.load(source, trust_remote_code=trust_remote_code)
    plans = {variant.name: plan(loaded.model, variant.passes) for variant in recipe.variants}
    if json_output:
        _emit_json({"model": source, "dry_run": True, "variants": plans})
        return
    for name, passes in plans.items():
        for entry in passes:
            print(f"variant {name} — pass {entry['pass']}: {len(entry['modules'])} module(s), {format_bytes(entry['bytes_now'])} -> {format_bytes(entry['bytes_after'])}")
            print_table([[m["name"], format_bytes(m["bytes_now"]), format_bytes(m["bytes_after"])] for m in entry["modules"]], ["module", "bytes now", "bytes after"])
    print("dry run: nothing was changed (each pass planned against the unmodified model)")


def _result_json(result) -> dict:
    return {
        "out": str(result.out),
        "ran": result.ran,
        "skipped": result.skipped,
        "records": result.records,
        "gate_failures": result.gate_failures,
        "slower_than_dense": result.slower_than_dense,
        "report": result.report,
        "saved_model": str(result.saved_model) if result.saved_model else None,
        "exported": getattr(result, "exported", None),
    }


def _print_result(result) -> None:
    rows = []
    for r in sorted(result.records, key=lambda r: (r.get("non_embedding_params") or 0, r.get("variant") != "dense", r.get("variant"))):
        rows.append(
            [
                r.get("model"),
                r.get("variant"),
                format_bytes(r.get("weight_bytes")),
                _fmt(r.get("bits_per_byte"), 3),
                _fmt(r.get("perplexity"), 2),
                _fmt(r.get("acc"), 3),
                _fmt(r.get("decode_ms_per_token"), 2),
                _fmt(r.get("energy_j_per_token"), 4) + (f" ({r['energy_source']})" if r.get("energy_source") else ""),
            ]
        )
    print_table(rows, ["model", "variant", "weights", "bits/byte", "ppl", "acc", "decode ms/tok", "J/token"])
    print(f"\n{result.ran} job(s) run, {result.skipped} skipped (already recorded); results in {result.out}")
    if result.saved_model:
        print(f"compressed checkpoint: {result.saved_model}")
    if getattr(result, "exported", None):
        print(f"exported ({result.exported['format']}): {result.exported['path']}")
    if result.report:
        recommendation = result.report.get("recommendation")
        if recommendation:
            print(f"\nrecommendation: {recommendation}")
        for key in ("markdown", "html"):
            if result.report.get(key):
                print(f"report: {result.report[key]}")


def _fmt(value, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


@ls_app.command("passes")
def ls_passes(json_output: bool = typer.Option(False, "--json", help="Machine-readable list.")) -> None:
    """Every pass: name, package it comes from, what it does, its fields with defaults."""
    from compress.core.registry import all_passes

    entries = []
    for spec in all_passes():
        fields = {
            name: {"default": _default(field), "type": _type_name(field.annotation), "description": field.description}
            for name, field in spec.config.model_fields.items()
        }
        entries.append(
            {
                "name": spec.name,
                "origin": spec.origin,
                "description": spec.description,
                "engine": spec.engine,
                "needs": sorted(spec.needs),
                "needs_calibration": spec.needs_calibration,
                "fields": fields,
            }
        )
    if json_output:
        _emit_json({"passes": entries})
        return
    for entry in entries:
        needs = f" (needs {', '.join(entry['needs'])})" if entry["needs"] else ""
        print(f"{entry['name']}  [{entry['origin']}]  {entry['description']}{needs}")
        for name, field in entry["fields"].items():
            print(f"    {name}: {field['type']} = {field['default']!r}  — {field['description'] or ''}")
        print()


def _default(field):
    value = field.get_default(call_default_factory=True)
    return value


def _type_name(annotation) -> str:
    """'Literal' shows its allowed values: 'layer' | 'global'."""
    import typing

    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Literal:
        return " | ".join(repr(value) for value in args)
    if args and typing.get_origin(annotation) in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " | ".join(_type_name(arg) for arg in args)
    if args:
        return str(annotation).replace("typing.", "")
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


@app.command("info")
def info_command(
    model: str = typer.Argument(..., help="Hub id or local folder (also compressed checkpoints)."),
    json_output: bool = typer.Option(False, "--json", help="Print the ModelInfo as JSON."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help=TRUST_HELP),
    no_progress: bool = typer.Option(False, "--no-progress", help="Accepted for uniformity; info reads headers and draws no bars."),  # noqa: ARG001
) -> None:
    """Architecture, parameter counts (total and non-embedding), dtype and stored bytes of a model.

    A local folder is described from its config and safetensors header: no weight is read.
    """
    from compress.checkpoint import read_manifest
    from compress.header_info import describe_folder

    info = describe_folder(model, trust_remote_code=trust_remote_code)
    manifest = read_manifest(model) if Path(model).is_dir() else None
    if manifest:
        info["passes"] = [p.get("pass") for p in manifest.get("passes", [])]
        info["source_model"] = manifest.get("source_model")
    if json_output:
        _emit_json(info)
        return
    width = max(len(k) for k in info)
    for key, value in info.items():
        shown = format_bytes(value) + f" ({value:,} B)" if key == "weight_bytes" else (f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else value)
        print(f"{key:<{width}}  {shown}")
