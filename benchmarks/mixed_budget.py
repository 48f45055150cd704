"""`mixed` against the line joining uniform w2 and w3: bits/byte on the test plays at equal bytes.

For each model: uniform `rtn` w2 g64 and w3 g64 give two points (whole-model weight bytes,
bits per byte on the held-out test plays). Budgets at 25/50/75% of the way between their
sizes are given to `mixed` (candidates w2/w3/w4/w8, g64; sensitivities on calibration windows
of the training plays). Each result is compared with the straight line between the two uniform
points at the bytes it achieved: per test window, the line's NLL is the same mix of the w2 and
w3 windows' NLL, and a paired block bootstrap over windows
(`compress.bench.accuracy.uncertainty.paired_difference`) gives the 95% interval of
line − mixed (positive = mixed below the line, i.e. better).

Acceptance (issue 13): every budget lands within 2% of its bytes, and the whole interval of
(line − mixed) is above 0.

    SCALECOMPRESS_CACHE=/work/cache python benchmarks/mixed_budget.py                  # largest pocket members (LLaMA, GPT-2)
    python benchmarks/mixed_budget.py --model PATH [--model PATH2] [--method gptq]

Prints one JSON object (stdout) and Markdown rows for benchmarks/RESULTS.md (stderr).
Exit code 1 when an acceptance bound is crossed.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch
from pocket_models import largest_members

import compress
from compress.bench.accuracy.perplexity import evaluate_perplexity
from compress.bench.accuracy.uncertainty import paired_difference
from compress.bench.modeling import max_positions
from compress.bench.text import bos_prefix, load_eval_text
from compress.data.calibration import calibration_batches
from compress.model_info import weight_bytes
from compress.passes import GPTQConfig, MixedConfig, RTNConfig

FRACTIONS = (0.25, 0.5, 0.75)
TOLERANCE = 0.02


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="local checkpoint (repeatable); default: the largest cached pocket members")
    parser.add_argument("--method", choices=["rtn", "gptq"], default="rtn", help="quantizer of the uniform points and of mixed")
    parser.add_argument("--samples", type=int, default=128, help="calibration windows (gptq); sensitivities use the first --sensitivity-samples")
    parser.add_argument("--sensitivity-samples", type=int, default=8)
    args = parser.parse_args()
    text = load_eval_text("plays:test")
    results, ok = [], True
    uniform = {"rtn": RTNConfig, "gptq": GPTQConfig}[args.method]
    for path in args.model or largest_members():
        model, tokenizer, info = compress.load(path)
        prefix = bos_prefix(tokenizer)
        tokens = calibration_batches(tokenizer, n_samples=args.samples, seq_len=max_positions(model) or 512, seed=0)

        def measure(m, tokenizer=tokenizer, prefix=prefix) -> tuple[int, float, np.ndarray, np.ndarray]:
            scores = evaluate_perplexity(m, tokenizer, text, window=512, max_tokens=10**9, prefix_id=prefix, progress=False)
            return weight_bytes(m), scores["bits_per_byte"], np.asarray(scores["windows"]["nll"]), np.asarray(scores["windows"]["bytes"])

        dense = measure(model)
        points = {bits: measure(compress.apply(copy.deepcopy(model), [uniform(bits=bits, group_size=64)], tokens, progress=False)[0]) for bits in (2, 3)}
        (b2, bpb2, nll2, nbytes), (b3, bpb3, nll3, _) = points[2], points[3]
        entry = {"model": path, "architecture": info.architecture, "dense": {"weight_bytes": dense[0], "bits_per_byte": dense[1]},
                 "uniform": {f"w{b}-g64": {"weight_bytes": p[0], "bits_per_byte": p[1]} for b, p in points.items()},
                 "method": args.method, "eval_windows": int(nll2.size), "budgets": []}
        print(f"| {Path(path).name} | uniform {args.method} w2 g64 | {b2:,} | | {bpb2:.4f} | | | |\n"
              f"| {Path(path).name} | uniform {args.method} w3 g64 | {b3:,} | | {bpb3:.4f} | | | |", file=sys.stderr, flush=True)
        for fraction in FRACTIONS:
            budget = round(b2 + fraction * (b3 - b2))
            config = MixedConfig(max_weight_bytes=budget, method=args.method, sensitivity_samples=args.sensitivity_samples)
            start = time.perf_counter()
            mixed, (report,) = compress.apply(copy.deepcopy(model), [config], tokens, progress=False)
            seconds = time.perf_counter() - start
            achieved, bpb, nll, _ = measure(mixed)
            t = (achieved - b2) / (b3 - b2)
            line_nll = (1 - t) * nll2 + t * nll3
            margin = paired_difference(line_nll, nll, nbytes, scale=1 / math.log(2))  # line − mixed: > 0 = mixed better
            line_bpb = (1 - t) * bpb2 + t * bpb3
            within = abs(achieved - budget) <= TOLERANCE * budget
            below = margin.low > 0
            ok &= within and below
            details = report.details
            entry["budgets"].append({
                "fraction": fraction, "budget": budget, "predicted_bytes": details["predicted_weight_bytes"], "achieved_bytes": achieved,
                "off_budget": (achieved - budget) / budget, "bits_per_byte": bpb, "line_bits_per_byte": line_bpb,
                "below_line": margin.value, "below_line_ci95": [margin.low, margin.high], "within_2pct": within, "below_line_beyond_noise": below,
                "histogram": details["histogram"], "bits_per_layer": details["bits_per_layer"], "seconds": seconds,
            })
            hist = ", ".join(f"{k} x{v}" for k, v in details["histogram"].items() if v)
            print(f"| {Path(path).name} | mixed {args.method} {fraction:.0%} | {budget:,} | {achieved:,} ({(achieved - budget) / budget:+.2%}) | {bpb:.4f} "
                  f"| {line_bpb:.4f} | {margin.value:+.4f} [{margin.low:+.4f}, {margin.high:+.4f}] {'met' if within and below else 'NOT met'} | {hist} |",
                  file=sys.stderr, flush=True)
        results.append(entry)
    machine = {"cpu": cpu_name(), "threads": torch.get_num_threads(), "load_average": os.getloadavg(), "torch": torch.__version__}
    print(json.dumps({"results": results, "machine": machine}, indent=2))
    print(f"machine: {machine}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
