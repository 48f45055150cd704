"""Benchmark any model: accuracy, latency, memory and energy, as one flat results record.

    >>> from compress.bench import BenchConfig, ResultsStore
    >>> BenchConfig().tasks
    ['perplexity', 'choice', 'latency']
    >>> # record = bench(model, tokenizer, {"device": "cpu"}, model_name="tiny")
    >>> # ResultsStore("results.jsonl").append(record)

Light to import: torch and transformers load only when `bench` runs.
"""

from __future__ import annotations

from compress.bench.config import BenchConfig
from compress.bench.results import ResultsStore

__all__ = ["BenchConfig", "ResultsStore", "bench", "bench_checkpoint", "format_record"]


def bench(model, tokenizer, config=None, *, model_name: str = "model", variant: str = "dense", progress: bool = True, **record_fields) -> dict:
    """Benchmark an in-memory model; see `compress.bench.runner.bench`."""
    from compress.bench.runner import bench as run

    return run(model, tokenizer, config, model_name=model_name, variant=variant, progress=progress, **record_fields)


def bench_checkpoint(source: str, config=None, **kwargs) -> dict:
    """Load and benchmark a checkpoint; see `compress.bench.runner.bench_checkpoint`."""
    from compress.bench.runner import bench_checkpoint as run

    return run(source, config, **kwargs)


def format_record(record: dict) -> str:
    """The record as a readable table; see `compress.bench.report.format_record`."""
    from compress.bench.report import format_record as render

    return render(record)
