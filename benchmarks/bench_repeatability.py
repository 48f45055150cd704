"""Repeatability and duration of `scalecompress bench`: the same benchmark run twice.

Each run is a separate process (`python -m compress bench MODEL --json`, default settings unless
flags say otherwise), so allocator state, thread placement and caches start fresh, as they do for
a user. Reports each run's wall time (acceptance: a ~5M model with defaults in ≤ 2 minutes on 2
CPU cores), the decode medians and their relative difference (acceptance: ≤ 10%), and prints a
Markdown block for benchmarks/RESULTS.md.

    python benchmarks/bench_repeatability.py                      # a ~5M pocket-shaped model, random weights
    python benchmarks/bench_repeatability.py ~/.cache/scalecompress/ladders/<ladder>/pocket-d128-l4
    python benchmarks/bench_repeatability.py MODEL --device cuda --runs 3 --json

Run it on a quiet machine: other processes on the cores make both figures meaningless.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def synthetic_model(folder: Path) -> Path:
    """A ~5M-parameter LLaMA shaped like a pocket-ladder member (d256-l6, vocab 1024, 128 positions)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from compress.checkpoint import save
    from compress.data.plays import split_text

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator([split_text("train")[:1_000_000]], trainers.BpeTrainer(vocab_size=1024, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=1024, hidden_size=256, intermediate_size=688, num_hidden_layers=6, num_attention_heads=8,
                         num_key_value_heads=8, max_position_embeddings=128, tie_word_embeddings=True)
    return save(LlamaForCausalLM(config).eval(), folder / "synthetic-d256-l6", tokenizer=PreTrainedTokenizerFast(tokenizer_object=bpe))


def run_once(model: str, extra: list[str]) -> tuple[dict, float]:
    command = [sys.executable, "-m", "compress", "bench", model, "--json", "--no-progress", *extra]
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                   "PYTHONPATH": f"{ROOT}{os.pathsep + os.environ['PYTHONPATH'] if os.environ.get('PYTHONPATH') else ''}"}
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"bench failed ({done.returncode}): {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ''}")
    return json.loads(done.stdout), seconds


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the same bench twice; report decode-median difference and duration.")
    parser.add_argument("model", nargs="?", help="Checkpoint folder or hub id (default: a synthetic ~5M model).")
    parser.add_argument("--runs", type=int, default=2, help="Runs of the same bench (default 2).")
    parser.add_argument("--device", default="cpu", help="cpu or cuda.")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, i.e. all cores).")
    parser.add_argument("--tasks", default=None, help="Comma-separated tasks (default: the bench defaults).")
    parser.add_argument("--json", action="store_true", help="Print one JSON object instead of Markdown.")
    args = parser.parse_args()
    if args.runs < 2:
        parser.error("--runs must be at least 2")

    model = args.model or str(synthetic_model(Path(tempfile.mkdtemp())))
    extra = ["--device", args.device]
    extra += ["--threads", str(args.threads)] if args.threads else []
    extra += ["--tasks", args.tasks] if args.tasks else []
    runs = []
    for number in range(args.runs):
        record, seconds = run_once(model, extra)
        runs.append({"seconds": round(seconds, 1), "decode_ms_per_token": record["decode_ms_per_token"],
                     "decode_ms_per_token_p90": record["decode_ms_per_token_p90"], "prefill_ms": record["prefill_ms"],
                     "perplexity": record["perplexity"], "acc": record["acc"], "params": record["params"],
                     "threads": record["threads"], "scenario": record["scenario"]})
        print(f"run {number + 1}: {seconds:.1f}s, decode {record['decode_ms_per_token']:.3f} ms/token", file=sys.stderr)
    decode = [run["decode_ms_per_token"] for run in runs]
    difference = (max(decode) - min(decode)) / min(decode)
    summary = {
        "model": model, "device": args.device, "runs": runs, "decode_relative_difference": difference,
        "repeatable": difference <= 0.10, "slowest_run_seconds": max(run["seconds"] for run in runs),
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "load_average": list(os.getloadavg())},
    }
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"### Bench repeatability ({Path(model).name}, {runs[0]['params']:,} params, {args.device}, {runs[0]['threads']} threads)\n")
    print("| run | wall s | decode ms/token (median) | p90 | prefill ms | perplexity | acc |")
    print("|---|---|---|---|---|---|---|")
    for number, run in enumerate(runs, 1):
        cells = [run["seconds"], _fmt(run["decode_ms_per_token"], ".3f"), _fmt(run["decode_ms_per_token_p90"], ".3f"),
                 _fmt(run["prefill_ms"], ".3f"), _fmt(run["perplexity"], ".2f"), _fmt(run["acc"], ".3f")]
        print(f"| {number} | " + " | ".join(str(cell) for cell in cells) + " |")
    verdict = "within" if summary["repeatable"] else "NOT within"
    print(f"\nDecode medians differ by {difference:.1%} ({verdict} the 10% target); slowest run "
          f"{summary['slowest_run_seconds']}s (target ≤ 120 s for ~5M params on 2 cores). "
          f"Load average at the end: {', '.join(f'{x:.2f}' for x in summary['machine']['load_average'])}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
