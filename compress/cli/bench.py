"""`scalecompress bench MODEL`: accuracy, latency, memory and energy of one checkpoint.

    scalecompress bench EleutherAI/pythia-70m --device cpu --json
    scalecompress bench out/pocket-rtn4 --tasks perplexity latency --results results.jsonl
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from compress.cli import app


@app.command("bench")
def bench_command(
    model: str = typer.Argument(..., help="Hub id or local checkpoint folder (plain HF or written by scalecompress)."),
    device: str | None = typer.Option(None, "--device", help="auto, cpu, cuda or cuda:N (default cpu)."),
    tasks: list[str] | None = typer.Option(
        None, "--tasks", help="perplexity, choice, latency and/or lm-eval task names; repeat or comma-separate (default: perplexity choice latency)."
    ),
    config_file: Path | None = typer.Option(None, "--config", help="YAML/JSON file with bench settings (a recipe's bench: section)."),
    text: str | None = typer.Option(None, "--text", help="Evaluation text: plays:test (default), a file, a glob or hf:..."),
    max_eval_tokens: int | None = typer.Option(None, "--max-eval-tokens", help="Cap on perplexity tokens (default 16384)."),
    window: int | None = typer.Option(None, "--window", help="Perplexity window in tokens (default 512, capped at the model's)."),
    choice_items: int | None = typer.Option(None, "--choice-items", help="Multiple-choice items (default 500)."),
    choice_unit: str | None = typer.Option(None, "--choice-unit", help="Multiple choice asks for the next 'word' (default) or 'speech'."),
    prompt_tokens: int | None = typer.Option(None, "--prompt-tokens", help="Prefill prompt length (default 96)."),
    new_tokens: int | None = typer.Option(None, "--new-tokens", help="Decode length (default 32)."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Sequences per latency run (default 1)."),
    repeats: int | None = typer.Option(None, "--repeats", help="Timed latency runs (default 5)."),
    warmup: int | None = typer.Option(None, "--warmup", help="Untimed latency runs first (default 1)."),
    threads: int | None = typer.Option(None, "--threads", help="torch CPU threads (default: torch's)."),
    dtype: str | None = typer.Option(None, "--dtype", help="Load dtype: float32, float16 or bfloat16 (default: the checkpoint's)."),
    name: str | None = typer.Option(None, "--name", help="Model name in the record (default: folder name or hub id)."),
    variant: str | None = typer.Option(None, "--variant", help="Variant name in the record (default: dense, or from compression.json)."),
    results: Path | None = typer.Option(None, "--results", help="Append the record to this JSONL results store."),
    skip_existing: bool = typer.Option(
        False, "--skip-existing", help="With --results: if this (model, variant, device, scenario) is recorded, print it instead of rerunning."
    ),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Allow model code from the checkpoint (only for sources you trust)."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object (the record) on stdout."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bars."),
) -> None:
    """Benchmark MODEL: perplexity + bits per byte, multiple choice, latency, memory and energy.

    Progress goes to stderr; the table (or, with --json, one JSON object) to stdout.
    """
    from compress.bench.config import as_config
    from compress.bench.describe import default_model_name, describe_manifest
    from compress.bench.report import format_record
    from compress.bench.results import ResultsStore
    from compress.bench.runner import bench_checkpoint
    from compress.checkpoint import read_manifest

    from compress.devices import bench_device

    if model.endswith(".gguf"):  # issue 11: the served artifact, through llama.cpp (compress/export/served.py)
        from compress.export.served import bench_gguf

        record = bench_gguf(model, text=text or "plays:test", max_eval_tokens=max_eval_tokens or 4096, window=window or 512,
                            prompt_tokens=prompt_tokens or 96, new_tokens=new_tokens or 32, threads=threads)
        print(json.dumps(record, indent=2) if json_output else "\n".join(f"{k:<20} {v}" for k, v in record.items()))
        return
    if skip_existing and results is None:
        from compress.errors import UserError

        raise UserError("--skip-existing needs --results FILE (the store to look in)")
    settings = _read_config(config_file) if config_file else {}
    config = as_config(
        settings,
        device=bench_device(device),
        tasks=_split(tasks) if tasks else None,
        text_source=text,
        max_eval_tokens=max_eval_tokens,
        window=window,
        choice_items=choice_items,
        choice_unit=choice_unit,
        prompt_tokens=prompt_tokens,
        new_tokens=new_tokens,
        batch_size=batch_size,
        repeats=repeats,
        warmup=warmup,
        threads=threads,
    )
    store = ResultsStore(results) if results else None
    if store is not None and skip_existing:
        local = Path(model).expanduser().is_dir()
        described = describe_manifest(read_manifest(model) if local else None)
        key = (
            name or default_model_name(model),
            variant or described.get("variant", "dense"),
            config.device,
            config.scenario_id(),
        )
        content = described.get("content_sha256")  # two checkpoints of one name differ by content
        for record in reversed(store.records()):
            same = content is None or record.get("content_sha256") == content
            if (record.get("model"), record.get("variant"), record.get("device"), record.get("scenario")) == key and same:
                print(f"already in {store.path}: {key[0]} / {key[1]} on {key[2]}, not rerun", file=sys.stderr)
                _emit(record, json_output, format_record)
                return
    record = bench_checkpoint(
        model, config, model_name=name, variant=variant, dtype=dtype,
        trust_remote_code=trust_remote_code, progress=not no_progress,
    )
    if store is not None:
        store.append(record)
    _emit(record, json_output, format_record)
    if store is not None:
        from compress.bench.slower import slower_than_dense

        for line in slower_than_dense([r for r in store.records() if r.get("variant") == "dense"] + [record]):
            print(f"scalecompress: {line}", file=sys.stderr)


def _emit(record: dict, json_output: bool, format_record) -> None:
    if json_output:
        from compress.bench.results import validate_record

        print(json.dumps(validate_record(record)))
    else:
        print(format_record(record))


def _split(values: list[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _read_config(path: Path) -> dict:
    from compress.errors import UserError

    from compress.safe_yaml import read_yaml_file

    document = read_yaml_file(path, error=UserError, what="bench config")  # JSON is YAML too
    if isinstance(document, dict) and "bench" in document and isinstance(document["bench"], dict):
        document = document["bench"]  # a whole recipe: take its bench section
    if not isinstance(document, dict):
        raise UserError(f"--config {path}: expected a mapping of bench settings, got {type(document).__name__}")
    return document
