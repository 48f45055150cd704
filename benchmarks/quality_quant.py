"""GPTQ against RTN: bits/byte increase over the dense model on the held-out test plays.

For each model: the dense bits per byte on the test plays (Macbeth, Much Ado; never used for
training or calibration), then `rtn` and `gptq` at w3 g64 and w4 g128. GPTQ calibrates on
windows of the training plays drawn with 3 seeds; RTN needs no data. Each seed gives a paired
ratio (GPTQ's increase / RTN's increase); we report their mean and a 95% t-interval.

Acceptance (issue 8): gptq w3 g64 increase <= 0.5x rtn w3 g64's; gptq w4 g128 <= rtn w4 g128,
on the largest pocket member of the LLaMA ladder and of the GPT-2 ladder.

    SCALECOMPRESS_CACHE=/work/cache python benchmarks/quality_quant.py          # both pocket ladders' largest cached members
    python benchmarks/quality_quant.py --model PATH [--model PATH2]            # any local checkpoints
    python benchmarks/quality_quant.py --setting 4:128 --act-order off         # one setting, one row

Prints one JSON object (stdout) and Markdown rows for benchmarks/RESULTS.md (stderr).
Exit code 1 when an acceptance bound is crossed.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from pocket_models import largest_members

import compress
from compress.bench.accuracy.perplexity import evaluate_perplexity
from compress.bench.modeling import max_positions
from compress.bench.text import bos_prefix, load_eval_text
from compress.data.calibration import calibration_batches
from compress.passes import GPTQConfig, RTNConfig

SETTINGS = [(3, 64, 0.5), (4, 128, 1.0)]  # bits, group size, bound on gptq/rtn increase
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571}


def interval(values: list[float]) -> tuple[float, float, float]:
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, mean, mean
    half = T_975.get(len(values) - 1, 1.96) * statistics.stdev(values) / len(values) ** 0.5
    return mean, mean - half, mean + half


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="local checkpoint (repeatable); default: the largest cached pocket members")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=128)
    parser.add_argument("--seq-len", type=int, default=512, help="capped at the model's max positions")
    parser.add_argument("--act-order", choices=["off", "on", "both"], default="both", help="GPTQ act_order (static groups): off, on, or both (two rows)")
    parser.add_argument("--setting", action="append", choices=[f"{b}:{g}" for b, g, _ in SETTINGS],
                        help="only these bits:group settings (repeatable; default all: 3:64 and 4:128)")
    args = parser.parse_args()
    settings = [s for s in SETTINGS if not args.setting or f"{s[0]}:{s[1]}" in args.setting]
    text = load_eval_text("plays:test")
    results, ok = [], True
    for path in args.model or largest_members():
        model, tokenizer, info = compress.load(path)
        prefix = bos_prefix(tokenizer)

        def bits_per_byte(m, tokenizer=tokenizer, prefix=prefix) -> float:
            return evaluate_perplexity(m, tokenizer, text, window=512, max_tokens=10**9, prefix_id=prefix, progress=False)["bits_per_byte"]

        seq_len = min(args.seq_len, max_positions(model) or args.seq_len)
        calibrations = [calibration_batches(tokenizer, n_samples=args.samples, seq_len=seq_len, seed=seed) for seed in range(args.seeds)]
        dense = bits_per_byte(model)
        entry = {"model": path, "architecture": info.architecture, "non_embedding_params": info.non_embedding_params, "dense_bits_per_byte": dense,
                 "calibration": f"{args.samples}x{seq_len} tokens of plays:train, seeds 0..{args.seeds - 1}", "settings": []}
        for bits, group, bound in settings:
            rtn_model, _ = compress.apply(copy.deepcopy(model), [RTNConfig(bits=bits, group_size=group)], progress=False)
            rtn_increase = bits_per_byte(rtn_model) - dense
            for act_order in {"off": [False], "on": [True], "both": [False, True]}[args.act_order]:
                gptq_increases, seconds = [], []
                for tokens in calibrations:
                    start = time.perf_counter()
                    gptq_model, _ = compress.apply(copy.deepcopy(model), [GPTQConfig(bits=bits, group_size=group, act_order=act_order)], tokens, progress=False)
                    seconds.append(time.perf_counter() - start)
                    gptq_increases.append(bits_per_byte(gptq_model) - dense)
                ratios = [g / rtn_increase for g in gptq_increases]
                mean, low, high = interval(ratios)
                passed = mean <= bound
                ok &= passed or (args.act_order == "both" and not act_order)  # with both, the act_order row is the one held to the bound
                entry["settings"].append({
                    "bits": bits, "group_size": group, "act_order": act_order, "rtn_increase": rtn_increase, "gptq_increases": gptq_increases,
                    "gptq_increase_mean": statistics.fmean(gptq_increases), "ratio_mean": mean, "ratio_ci95": [low, high],
                    "bound": bound, "passed": passed, "gptq_seconds": seconds,
                })
                label = f"w{bits} g{group}" + (" act_order" if act_order else "")
                print(f"| {Path(path).name} | {label} | {dense:.4f} | +{rtn_increase:.4f} | +{statistics.fmean(gptq_increases):.4f} "
                      f"({', '.join(f'{g:+.4f}' for g in gptq_increases)}) | {mean:.3f} [{low:.3f}, {high:.3f}] | <= {bound} {'met' if passed else 'NOT met'} |", file=sys.stderr, flush=True)
        results.append(entry)
    machine = {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(), "load_average": os.getloadavg()}
    print(json.dumps({"results": results, "machine": machine}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
