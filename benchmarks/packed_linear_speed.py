"""How fast do packed RTN layers run on this CPU? Batch-1 GEMV per shape, then end-to-end decode.

Compares dense fp32 / bf16 `F.linear` with `QuantizedLinear` (the CPU int4 kernel path at 4 bits
with groups of 32/64/128, the two-nibble path at 8 bits), and shows the dequantize-on-the-fly
fallback for reference. Then greedy decoding (HF `generate`) of a randomly initialised
LLaMA-style model shaped like SmolLM2-135M (hidden 576, 30 layers, vocab 49152).

    python benchmarks/packed_linear_speed.py                 # full run, a few minutes on 2 cores
    python benchmarks/packed_linear_speed.py --quick         # tiny shapes, seconds (smoke test)
    python benchmarks/packed_linear_speed.py --threads 1 --only gemv

Run it on a quiet machine: timings are medians of repeated calls, but other processes still
shift them. Decode ms/token = (time of N new tokens - time of 1) / (N - 1), so prefill is out.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch
import torch.nn.functional as F

import compress
from compress.checkpoint import weight_bytes
from compress.formats.quantized_linear import QuantizedLinear
from compress.algorithms.quantization.grid import rtn_quantize
from compress.algorithms.quantization.rtn import RTNConfig

FULL_SHAPES = [(576, 576), (1536, 576), (576, 1536), (2048, 2048), (8192, 2048), (2048, 8192)]
QUICK_SHAPES = [(256, 256), (512, 256)]
PACKED = [("w4-g32", 4, 32), ("w4-g64", 4, 64), ("w4-g128", 4, 128), ("w8-g128", 8, 128)]


def median_ms(function, repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def packed_layer(weight: torch.Tensor, bits: int, group_size: int | None) -> QuantizedLinear:
    codes, scales, zeros = rtn_quantize(weight, bits, group_size)
    return QuantizedLinear.from_codes(codes, scales, zeros, bits=bits, group_size=group_size)


def gemv_table(shapes, repeats: int) -> None:
    names = ["fp32", "bf16", *[name for name, _, _ in PACKED], "w4-g128 dequantize"]
    print("\n## Batch-1 GEMV, ms (speed-up vs fp32)\n")
    print("| out x in | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for out_features, in_features in shapes:
        weight = torch.randn(out_features, in_features) * 0.02
        x = torch.randn(1, in_features)
        x_bf16, weight_bf16 = x.bfloat16(), weight.bfloat16()
        timings = {
            "fp32": median_ms(lambda x=x, weight=weight: F.linear(x, weight), repeats),
            "bf16": median_ms(lambda x=x_bf16, weight=weight_bf16: F.linear(x, weight), repeats),
        }
        for name, bits, group_size in PACKED:
            layer = packed_layer(weight, bits, group_size)
            timings[name] = median_ms(lambda layer=layer, x=x: layer(x), repeats)
        fallback = packed_layer(weight, 4, 128)
        fallback._kernel_refused = True  # force dequantize-then-matmul
        timings["w4-g128 dequantize"] = median_ms(lambda layer=fallback, x=x: layer(x), max(3, repeats // 4))
        base = timings["fp32"]
        cells = [f"{timings[n]:.3f} ({base / timings[n]:.2f}x)" for n in names]
        print(f"| {out_features}x{in_features} | " + " | ".join(cells) + " |", flush=True)


def llama_model(quick: bool):
    import transformers

    if quick:
        shape = {"vocab_size": 512, "hidden_size": 128, "intermediate_size": 384, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2}
    else:  # SmolLM2-135M's shape
        shape = {"vocab_size": 49152, "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3}
    config = transformers.LlamaConfig(**shape, max_position_embeddings=512, tie_word_embeddings=True)
    torch.manual_seed(0)
    return transformers.AutoModelForCausalLM.from_config(config).eval()


def decode_ms_per_token(model, prompt: torch.Tensor, new_tokens: int, repeats: int) -> float:
    def generate(count):
        with torch.no_grad():
            model.generate(prompt, max_new_tokens=count, min_new_tokens=count, do_sample=False, pad_token_id=0)

    first = median_ms(lambda: generate(1), repeats, warmup=1)
    full = median_ms(lambda: generate(new_tokens), repeats, warmup=1)
    return (full - first) / (new_tokens - 1)


def decode_table(quick: bool, new_tokens: int, repeats: int) -> None:
    dense = llama_model(quick)
    prompt = torch.randint(0, dense.config.vocab_size, (1, 16), generator=torch.Generator().manual_seed(0))
    variants = {"fp32": lambda m: m, "bf16": lambda m: m.to(torch.bfloat16)}
    for name, bits, group_size in [("rtn-w4-g32", 4, 32), ("rtn-w4-g64", 4, 64), ("rtn-w4-g128", 4, 128), ("rtn-w8-g128", 8, 128), ("rtn-w8-pc", 8, None)]:
        variants[name] = lambda m, b=bits, g=group_size: compress.apply(m, [RTNConfig(bits=b, group_size=g)], progress=False)[0]
    print(f"\n## Decode, LLaMA-style {sum(p.numel() for p in dense.parameters()) / 1e6:.0f}M params, batch 1, {new_tokens} new tokens\n")
    print("| variant | weight MB | decode ms/token | tokens/s | speed-up vs fp32 |")
    print("|---|---|---|---|---|")
    base = None
    for name, make in variants.items():
        model = make(copy.deepcopy(dense))
        ms = decode_ms_per_token(model, prompt, new_tokens, repeats)
        base = base or ms
        print(f"| {name} | {weight_bytes(model) / 1e6:.1f} | {ms:.2f} | {1e3 / ms:.1f} | {base / ms:.2f}x |", flush=True)
        del model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny shapes and model, few repeats (a smoke test, not a measurement)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--new-tokens", type=int, default=32, help="tokens generated per decode timing")
    parser.add_argument("--only", choices=["gemv", "decode"], default=None, help="run one of the two tables")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability {torch.backends.cpu.get_cpu_capability()}")
    if args.only in (None, "gemv"):
        gemv_table(QUICK_SHAPES if args.quick else FULL_SHAPES, repeats=5 if args.quick else 50)
    if args.only in (None, "decode"):
        decode_table(args.quick, new_tokens=4 if args.quick else args.new_tokens, repeats=1 if args.quick else 3)


if __name__ == "__main__":
    main()
