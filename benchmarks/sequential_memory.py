"""Peak memory of sequential (block-wise) calibration: GPTQ (or SmoothQuant) on a SmolLM2-135M-shaped LLaMA.

The acceptance bound (issue 8): with 128 x 512 calibration tokens, the peak RSS above the
baseline (RSS after importing torch, transformers and this package) is at most 2x the fp32
bytes of the model. The model is built here, randomly initialised, with the shape of
SmolLM2-135M (hidden 576, 30 layers, intermediate 1536, 9 heads / 3 KV heads, vocab 49152,
tied embeddings), so the figure includes the model itself; `--model PATH` measures any local
checkpoint instead.

    python benchmarks/sequential_memory.py                        # 128 x 512 tokens (slow on 2 cores)
    python benchmarks/sequential_memory.py --samples 8 --seq-len 128 --layers 2   # seconds: checks the script
    python benchmarks/sequential_memory.py --pass smoothquant    # the same walk, ~3x less compute per block

Prints one JSON object; exit code 1 when the bound is crossed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil
import torch
import transformers

from compress.bench.trackers.memory import _high_water_mark, _reset_high_water_mark
from compress.core.context import DataConfig
from compress.passes import GPTQConfig, SmoothQuantConfig

PASSES = {  # the calibration pass the walk runs; all keep the same engine buffers (model, one activation buffer, one block)
    "gptq": lambda: GPTQConfig(bits=4, group_size=64),
    "smoothquant": lambda: SmoothQuantConfig(alpha=0.5),
}

SMOLLM2_135M = {
    "hidden_size": 576, "num_hidden_layers": 30, "intermediate_size": 1536, "num_attention_heads": 9,
    "num_key_value_heads": 3, "vocab_size": 49152, "tie_word_embeddings": True, "max_position_embeddings": 2048,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a local checkpoint to calibrate instead of the random 135M-shaped model")
    parser.add_argument("--samples", type=int, default=128)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--layers", type=int, default=30, help="layers of the random model (30 = SmolLM2-135M)")
    parser.add_argument("--pass", dest="pass_name", choices=sorted(PASSES), default="gptq",
                        help="calibration pass (gptq w4 g64: Hessians per layer; smoothquant: channel maxima, then W8A8)")
    args = parser.parse_args()
    from transformers import LlamaForCausalLM  # noqa: F401 - the model's code (~140 MB of RSS) is imports, not data

    import compress.algorithms.quantization.gptq
    import compress.algorithms.quantization.smoothquant
    import compress.engines.sequential

    baseline = psutil.Process().memory_info().rss
    _reset_high_water_mark()
    if args.model:
        model = compress.load(args.model).model
        source = str(args.model)
    else:
        torch.manual_seed(0)
        config = transformers.LlamaConfig(**{**SMOLLM2_135M, "num_hidden_layers": args.layers})
        model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
        source = f"random LLaMA, SmolLM2-135M shape, {args.layers} layers"
    fp32_bytes = sum(p.numel() for p in model.parameters()) * 4
    start = time.perf_counter()
    vocab = model.config.vocab_size
    tokens = torch.randint(0, vocab, (args.samples, args.seq_len), generator=torch.Generator().manual_seed(0))
    from compress.engines.sequential import find_blocks

    def report_peak(index):  # a running record: the peak over blocks 0..index-1, printed as block `index` starts
        def hook(module, args, kwargs):
            if not getattr(module, "_peak_reported", False):
                module._peak_reported = True
                peak = _high_water_mark() or 0
                print(json.dumps({"blocks_done": index, "peak_above_baseline_bytes": peak - baseline,
                                  "ratio_to_fp32_model": round((peak - baseline) / fp32_bytes, 3), "elapsed_s": round(time.perf_counter() - start, 1)}), file=sys.stderr, flush=True)
        return hook

    handles = [block.register_forward_pre_hook(report_peak(i), with_kwargs=True) for i, block in enumerate(find_blocks(model)[1])]
    _, (report,) = compress.apply(model, [PASSES[args.pass_name]()], tokens, data_config=DataConfig(batch_size=args.batch_size), progress=True)
    seconds = time.perf_counter() - start
    for handle in handles:
        handle.remove()
    peak = max(_high_water_mark() or 0, psutil.Process().memory_info().rss)
    above = peak - baseline
    result = {
        "model": source,
        "calibration": f"{args.samples}x{args.seq_len}",
        "pass": PASSES[args.pass_name]().tag(),
        "fp32_model_bytes": fp32_bytes,
        "baseline_rss_bytes": baseline,
        "peak_rss_bytes": peak,
        "peak_above_baseline_bytes": above,
        "ratio_to_fp32_model": round(above / fp32_bytes, 3),
        "bound": 2.0,
        "calibration_seconds": round(seconds, 1),
        "walk": {k: v for k, v in report.details["walk"].items() if k != "passes"},
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(), "load_average": os.getloadavg()},
    }
    print(json.dumps(result, indent=2))
    return 0 if above <= 2.0 * fp32_bytes else 1


if __name__ == "__main__":
    sys.exit(main())
