"""Quality cost of packing the output head and input embedding (tied: one table), in bits/byte.

For each model: dense bits per byte on the held-out test plays, then `rtn` w4 g128 on the body
alone (head and embedding dense, today's default), and with the head/embedding table packed at
8, 6, 4 bits (groups 128, 64, 32 or per row). The increase over the body-only model is the cost of
packing the table; it sets the default of `RTNConfig.head`.

    SCALECOMPRESS_CACHE=/work/cache python benchmarks/head_quality.py      # both pocket ladders' largest members
    python benchmarks/head_quality.py --model PATH [--model PATH2]

Prints Markdown rows (stdout) for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from pocket_models import largest_members

import compress
from compress.bench.accuracy.perplexity import evaluate_perplexity
from compress.bench.text import bos_prefix, load_eval_text
from compress.model_info import weight_bytes
from compress.passes import RTNConfig

TABLES = [None, (8, 128), (8, None), (6, 128), (4, 128), (4, 64), (4, 32), (3, 32)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="local checkpoint (repeatable); default: the largest cached pocket members")
    parser.add_argument("--body-bits", type=int, default=4)
    parser.add_argument("--tables", help="table settings to try, e.g. '8:128,4:128,4:none' (default: a sweep of 8, 6, 4, 3 bits)")
    args = parser.parse_args()
    tables = TABLES if not args.tables else [None] + [
        (int(bits), None if group == "none" else int(group)) for bits, group in (item.split(":") for item in args.tables.split(","))]
    text = load_eval_text("plays:test")
    print(f"load average {os.getloadavg()[0]:.1f}; body: rtn w{args.body_bits} g128; test plays, window 512")
    print("| model | head/embedding table | bits/byte | increase over body-only | weight MB |")
    print("|---|---|---|---|---|")
    for path in args.model or largest_members():
        model, tokenizer, _ = compress.load(path)
        prefix = bos_prefix(tokenizer)

        def bits_per_byte(m) -> float:
            return evaluate_perplexity(m, tokenizer, text, window=512, max_tokens=10**9, prefix_id=prefix, progress=False)["bits_per_byte"]

        dense = bits_per_byte(model)
        print(f"| {Path(path).name} | dense model | {dense:.4f} | | {weight_bytes(model) / 1e6:.2f} |", flush=True)
        body = None
        for table in tables:
            head = None if table is None else {"bits": table[0], "group_size": table[1]}
            packed, _ = compress.apply(copy.deepcopy(model), [RTNConfig(bits=args.body_bits, group_size=128, head=head)], progress=False)
            value = bits_per_byte(packed)
            body = value if table is None else body
            label = "dense (body only)" if table is None else f"w{table[0]} " + (f"g{table[1]}" if table[1] else "per row")
            increase = "" if table is None else f"+{value - body:.4f}"
            print(f"| {Path(path).name} | {label} | {value:.4f} | {increase} | {weight_bytes(packed) / 1e6:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
