"""Which int8 GEMM should W8A8 use on this machine, and is a W8A8 model faster than fp32?

1. Per linear shape (the model's own, plus SmolLM2-135M- and 1B-sized ones) and rows per call
   (1 = decoding, 16, 128 = prefill): fp32 `F.linear` against W8A8 with per-token int8
   activations on FBGEMM (`Int8Linear`'s CPU path), on `torch._int_mm` (its CUDA path), and on
   torchao's `Int8DynamicActivationInt8WeightConfig` when torchao is installed (extra `ao`).
   Every W8A8 time includes quantizing the activations.
2. The model dense and after `smoothquant` through `compress.bench` (latency task), then the
   sweep's check that names a variant slower than its dense source.

    SCALECOMPRESS_CACHE=/work/cache python benchmarks/w8a8_speed.py          # pocket-d128-l4
    python benchmarks/w8a8_speed.py --model path/to/checkpoint --threads 2

Timings are medians of --repeats calls after warmup; the load average is printed with them.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch
import torch.nn.functional as F

import compress
from compress.bench.env import capture_env
from compress.bench.slower import slower_than_dense
from compress.data.calibration import calibration_batches
from compress.formats.dense import weight_matrix
from compress.formats.w8a8 import Int8Linear, fbgemm_available
from compress.passes import SmoothQuantConfig

REFERENCE_SHAPES = [(576, 1536), (1536, 576), (2048, 2048)]  # (in, out): SmolLM2-135M MLP, a 1B attention


def median_ms(fn, repeats: int) -> float:
    fn()
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def torchao_linear(dense: torch.nn.Linear):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_
    except ImportError:
        return None
    model = torch.nn.Sequential(copy.deepcopy(dense))
    quantize_(model, Int8DynamicActivationInt8WeightConfig())
    return model


def gemm_table(shapes, rows_list, repeats: int) -> list[list[str]]:
    table = []
    for in_features, out_features in shapes:
        dense = torch.nn.Linear(in_features, out_features)
        w8a8 = Int8Linear.from_linear(dense)
        ao = torchao_linear(dense)
        for rows in rows_list:
            x = torch.randn(rows, in_features)
            with torch.no_grad():
                fp32 = median_ms(lambda: F.linear(x, dense.weight, dense.bias), repeats)
                fbgemm = median_ms(lambda: w8a8(x), repeats) if fbgemm_available() else None
                int_mm = median_ms(lambda: w8a8._int_mm_forward(x), max(3, repeats // 4))
                torchao = median_ms(lambda: ao(x), max(3, repeats // 4)) if ao is not None else None
            cells = [f"{in_features}x{out_features}", str(rows), f"{fp32:.3f}"]
            for value in (fbgemm, int_mm, torchao):
                cells.append("n/a" if value is None else f"{value:.3f} ({fp32 / value:.2f}x)")
            table.append(cells)
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="Checkpoint folder (default: the cached pocket-d128-l4).")
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 16, 128], help="Rows (tokens) per call (default 1 16 128).")
    parser.add_argument("--repeats", type=int, default=30, help="Timed calls per cell (default 30).")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's).")
    parser.add_argument("--skip-model", action="store_true", help="Only the per-shape GEMM table.")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    path = args.model
    if path is None:
        from compress.scaling.ladder import load_ladder

        members = [m for m in load_ladder("pocket", progress=False, cached_only=True).members if m.path]
        if not members:
            parser.error("no --model and no trained pocket ladder in the cache (scalecompress ladder train pocket)")
        path = max(members, key=lambda m: m.params or 0).path
    model, tokenizer, _ = compress.load(path)
    shapes = sorted({tuple(reversed(weight_matrix(m).shape)) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and n != "lm_head"})
    env = capture_env()
    load_before = os.getloadavg()
    print(f"Machine: {env['cpu']}, {torch.get_num_threads()} torch threads, torch {env['torch']}, quantized engine {torch.backends.quantized.engine}; "
          f"load average {load_before[0]:.1f} at start (shared machine)\n")
    print("ms per call (speed-up over fp32); W8A8 times include per-token activation quantization\n")
    print("| shape (in x out) | rows | fp32 F.linear | W8A8 FBGEMM | W8A8 torch._int_mm | W8A8 torchao |")
    print("|---|---|---|---|---|---|")
    for row in gemm_table(shapes + REFERENCE_SHAPES, args.rows, args.repeats):
        print("| " + " | ".join(row) + " |")
    if not args.skip_model:
        bench_config = {"tasks": ["latency"], "prompt_tokens": 64, "new_tokens": 32, "repeats": 5, "warmup": 1}
        records = [compress.bench(model, tokenizer, bench_config, model_name=path, variant="dense", progress=False)]
        calibration = calibration_batches(tokenizer, n_samples=32, seq_len=min(128, model.config.max_position_embeddings), seed=0)
        smoothed, _ = compress.apply(copy.deepcopy(model), [SmoothQuantConfig()], data=calibration, progress=False)
        records.append(compress.bench(smoothed, tokenizer, bench_config, model_name=f"{path}-w8a8", variant="smoothquant-a0.5-w8a8", source_model=path, progress=False))
        print(f"\nWhole model ({path}), compress.bench latency task:\n")
        print("| variant | prefill ms | decode ms/token | weight bytes |")
        print("|---|---|---|---|")
        for record in records:
            print(f"| {record['variant']} | {record['prefill_ms']:.2f} | {record['decode_ms_per_token']:.2f} | {record['weight_bytes']:,} |")
        lines = slower_than_dense(records)
        print("\n" + ("\n".join(f"bench says: {line}" for line in lines) if lines else "bench says: W8A8 is not slower than its dense source here"))
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
