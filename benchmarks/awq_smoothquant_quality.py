"""AWQ, SmoothQuant (W8A8) and bitsandbytes against RTN and dense: bits per byte on held-out text.

For each model: dense, `rtn` w{bits} g{group}, then per calibration seed `awq` w{bits} g{group}
and `smoothquant` W8A8, and `bnb` nf4 / int8 (no calibration). Reports each variant's bits/byte
increase over dense; for the calibrated passes the mean over seeds with a 95% t-interval of the
per-seed differences (AWQ minus RTN, SmoothQuant minus dense: paired on the same model, text and
calibration seed). Calibration windows come from the training plays, evaluation from the test
plays, so nothing is scored on text it was calibrated on.

    SCALECOMPRESS_CACHE=/work/cache python benchmarks/awq_smoothquant_quality.py       # pocket-d128-l4 + pocket-gpt2-d128-l4
    python benchmarks/awq_smoothquant_quality.py --model path/to/checkpoint --seeds 0 1 2
    python benchmarks/awq_smoothquant_quality.py --model path --quick                     # smoke test: 1 seed, few tokens
    python benchmarks/awq_smoothquant_quality.py --model path --no-smoothquant --bnb      # only dense, rtn and awq

Without --model it uses the trained pocket ladders' largest members from the cache
(`scalecompress ladder train pocket` / `pocket-gpt2` build them). Prints a Markdown table;
--json writes every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch
from pocket_models import largest_members

import compress
from compress.bench.accuracy.perplexity import evaluate_perplexity
from compress.bench.env import capture_env
from compress.bench.modeling import max_positions
from compress.bench.text import bos_prefix, load_eval_text
from compress.data.calibration import calibration_batches
from compress.passes import AWQConfig, BnbConfig, RTNConfig, SmoothQuantConfig

T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}  # two-sided 95%, by degrees of freedom


def interval(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of the two-sided 95% t-interval (0 for one value)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, T_975.get(len(values) - 1, 1.96) * statistics.stdev(values) / len(values) ** 0.5


def bits_per_byte(model, tokenizer, text: str, max_tokens: int) -> float:
    window = min(512, max_positions(model) or 512)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = evaluate_perplexity(model, tokenizer, text, window=window, max_tokens=max_tokens, prefix_id=bos_prefix(tokenizer), progress=False)
    return scores["bits_per_byte"]


def run_model(path: str, args) -> dict:
    dense, tokenizer, info = compress.load(path)
    text = load_eval_text("plays:test")
    seq_len = min(args.seq_len, max_positions(dense) or args.seq_len)
    results: dict = {"model": path, "architecture": dense.config.model_type, "params": info.params, "calibration": f"{args.samples}x{seq_len} tokens, plays:train"}
    timings = {}

    def score(name: str, configs, data=None) -> float:
        model, _, _ = compress.load(path)
        started = time.perf_counter()
        model, reports = compress.apply(model, configs, data=data, progress=False)
        timings[name] = round(time.perf_counter() - started, 2)
        value = bits_per_byte(model, tokenizer, text, args.max_eval_tokens)
        print(f"  {name}: {value:.4f} bits/byte ({timings[name]} s to compress)", file=sys.stderr, flush=True)
        return value

    results["dense"] = bits_per_byte(dense, tokenizer, text, args.max_eval_tokens)
    print(f"{path}: dense {results['dense']:.4f} bits/byte", file=sys.stderr, flush=True)
    quant = dict(bits=args.bits, group_size=args.group_size)
    results["rtn"] = score(f"rtn-w{args.bits}-g{args.group_size}", [RTNConfig(**quant)])
    results["awq"], results["smoothquant"] = [], []
    for seed in args.seeds:
        calibration = calibration_batches(tokenizer, n_samples=args.samples, seq_len=seq_len, seed=seed)
        results["awq"].append(score(f"awq-w{args.bits}-g{args.group_size} seed {seed}", [AWQConfig(**quant, clip=args.clip, clip_tokens=args.clip_tokens)], calibration))
        if not args.no_smoothquant:
            results["smoothquant"].append(score(f"smoothquant-a{args.alpha} seed {seed}", [SmoothQuantConfig(alpha=args.alpha)], calibration))
    for kind in args.bnb:
        results[f"bnb-{kind}"] = score(f"bnb-{kind}", [BnbConfig(kind=kind)])
    results["compress_seconds"] = timings
    return results


def summarize(result: dict, args) -> list[list[str]]:
    dense = result["dense"]
    rtn_increase = result["rtn"] - dense
    rows = [["dense", f"{dense:.4f}", "", ""], [f"rtn w{args.bits} g{args.group_size}", f"{result['rtn']:.4f}", f"{rtn_increase:+.4f}", ""]]
    awq_increase = [value - dense for value in result["awq"]]
    mean, half = interval([value - result["rtn"] for value in result["awq"]])
    result["awq_minus_rtn"] = {"mean": mean, "ci95": half}
    result["awq_increase_over_rtn_increase"] = statistics.fmean(awq_increase) / rtn_increase if rtn_increase else None
    rows.append([f"awq w{args.bits} g{args.group_size} clip {args.clip} ({len(awq_increase)} seeds: {', '.join(f'{v:.4f}' for v in result['awq'])})", f"{statistics.fmean(result['awq']):.4f}", f"{statistics.fmean(awq_increase):+.4f}",
                 f"AWQ − RTN {mean:+.4f} ± {half:.4f}; increase {result['awq_increase_over_rtn_increase']:.2f}× RTN's"])
    relative = [value / dense - 1 for value in result["smoothquant"]]
    if not relative:
        return rows + [[f"bnb {kind}", f"{result[f'bnb-{kind}']:.4f}", f"{result[f'bnb-{kind}'] - dense:+.4f}", f"{result[f'bnb-{kind}'] / dense - 1:+.2%} over dense"] for kind in args.bnb]
    mean, half = interval(relative)
    result["smoothquant_relative_increase"] = {"mean": mean, "ci95": half}
    rows.append([f"smoothquant a{args.alpha} W8A8 ({len(relative)} seeds)", f"{statistics.fmean(result['smoothquant']):.4f}",
                 f"{statistics.fmean(result['smoothquant']) - dense:+.4f}", f"{mean:+.2%} ± {half:.2%} over dense"])
    for kind in args.bnb:
        value = result[f"bnb-{kind}"]
        rows.append([f"bnb {kind}", f"{value:.4f}", f"{value - dense:+.4f}", f"{value / dense - 1:+.2%} over dense"])
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="Checkpoint folder (repeatable). Default: the largest cached pocket and pocket-gpt2 members.")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="Calibration seeds (default 0 1 2).")
    parser.add_argument("--samples", type=int, default=128, help="Calibration sequences per seed (default 128).")
    parser.add_argument("--seq-len", type=int, default=512, help="Tokens per calibration sequence, capped at the model's positions (default 512).")
    parser.add_argument("--bits", type=int, default=3, help="Weight bits for rtn and awq (default 3).")
    parser.add_argument("--group-size", type=int, default=128, help="Group size for rtn and awq (default 128).")
    parser.add_argument("--alpha", type=float, default=0.5, help="SmoothQuant migration strength (default 0.5).")
    parser.add_argument("--no-smoothquant", action="store_true", help="Score only dense, rtn, awq (and --bnb kinds).")
    parser.add_argument("--clip", choices=["search", "none"], default="search", help="AWQ's clipping search (default: search).")
    parser.add_argument("--clip-tokens", type=int, default=512, help="Calibration tokens per layer for AWQ's clipping search (default 512, as llm-awq).")
    parser.add_argument("--bnb", nargs="*", default=["nf4", "int8"], help="bitsandbytes kinds to score (default nf4 int8).")
    parser.add_argument("--max-eval-tokens", type=int, default=65536, help="Test-play tokens scored (default 65536).")
    parser.add_argument("--quick", action="store_true", help="Smoke test: one seed, 16 samples, 4096 eval tokens.")
    parser.add_argument("--json", help="Write all figures to this file.")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.samples, args.max_eval_tokens = args.seeds[:1], 16, 4096
    models = args.model or largest_members()
    if not models:
        parser.error("no --model given and no trained pocket ladder in the cache")
    env = capture_env()
    load_before = os.getloadavg()
    started = time.perf_counter()
    print(f"Machine: {env['cpu']}, {env['threads']} torch threads, torch {env['torch']}; load average {load_before[0]:.1f} at start (shared machine).\n", flush=True)
    results = []
    for path in models:
        result = run_model(path, args)
        results.append(result)
        print(f"### {result['model']} ({result['architecture']}, {result['params']:,} params; calibration {result['calibration']})\n")
        rows = summarize(result, args)
        print("| variant | bits/byte | increase over dense | paired comparison (95% t-interval over seeds) |")
        print("|---|---|---|---|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        print(f"\nload average {os.getloadavg()[0]:.1f} after this model; {time.perf_counter() - started:.0f} s so far\n", flush=True)
        if args.json:  # written after every model, so a long run keeps what it finished
            with open(args.json, "w") as handle:
                json.dump({"env": env, "args": vars(args), "results": results}, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
