"""Decode and prefill speed of packed models against their dense source, all on one decode path.

In ONE process: fp32, bf16, and `rtn` 8-bit, 4-bit g128 with a packed head, 3-bit and 2-bit, all
built from the same model (by default a randomly initialised LLaMA shaped like SmolLM2-135M:
hidden 576, 30 layers, intermediate 1536, 9 heads / 3 KV heads, vocab 49152, tied embeddings).
Every variant runs the same loop through the transformers model API (same cache kind, same
compilation): a prefill of P prompt tokens (`logits_to_keep=1`, as `generate` does), then one
token at a time. Runs are interleaved (variant after variant, `--runs` times; decode steps
take turns step by step) and medians kept, so load on a shared machine shifts all variants
alike and the ratios stay meaningful.

    python benchmarks/decode_speed.py --threads 2                    # the acceptance run (~5 min)
    python benchmarks/decode_speed.py --model PATH --threads 2       # a local checkpoint instead
    python benchmarks/decode_speed.py --quick                        # tiny model, seconds (smoke test)
    python benchmarks/decode_speed.py --profile rtn-w4-g128-head8    # torch.profiler of one decode token
    python benchmarks/decode_speed.py --cache static                 # HF StaticCache instead of DynamicCache
    python benchmarks/decode_speed.py --crossover                    # per layer and row count: int4 op, our decode and prefill kernels

Prints a Markdown table (ms, and ratios to fp32 and bf16; the decode roofline: weight bytes read
per token, their time at the read bandwidth measured in the same run, and the fraction of that
limit reached), the kernel each packed variant picks
(`kernel_for`) at decode and prefill, and the machine: CPU model, vector extensions, threads,
load average before and after.
"""

from __future__ import annotations

import argparse
import collections
import copy
import dataclasses
import functools
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

import compress
from compress.bench.modeling import cache_argument
from compress.bench.roofline import cpu_read_bandwidth, roofline
from compress.model_info import weight_bytes
from compress.passes import RTNConfig

SHAPE_135M = dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3)
SHAPE_QUICK = dict(vocab_size=1024, hidden_size=128, intermediate_size=352, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
HEAD = {"bits": 8, "group_size": 128}  # the head's default (RESULTS.md, "Packed head and embedding: quality cost")
VARIANTS = {
    "rtn-w8-g128-head8": RTNConfig(bits=8, group_size=128, head=HEAD),
    "rtn-w4-g128-head8": RTNConfig(bits=4, group_size=128, head=HEAD),
    "rtn-w4-g128-head4": RTNConfig(bits=4, group_size=128, head={"bits": 4, "group_size": 128}),
    "rtn-w3-g128-head8": RTNConfig(bits=3, group_size=128, head=HEAD),
    "rtn-w2-g128-head8": RTNConfig(bits=2, group_size=128, head=HEAD),
}


def cpu_description() -> tuple[str, str]:
    """(CPU model, its vector extensions among AVX2 / AVX-512 / AMX)."""
    model, flags = "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    wanted = [("AVX2", "avx2"), ("AVX-512", "avx512f"), ("AVX512-BF16", "avx512_bf16"), ("AMX", "amx_tile")]
    return model, ", ".join(name for name, flag in wanted if flag in flags) or "none of AVX2/AVX-512/AMX"


def build_model(path: str | None, quick: bool):
    import transformers

    if path:
        return compress.load(path).model.float().eval()
    torch.manual_seed(0)
    config = transformers.LlamaConfig(**(SHAPE_QUICK if quick else SHAPE_135M), max_position_embeddings=2048, tie_word_embeddings=True)
    model = transformers.AutoModelForCausalLM.from_config(config).eval()
    with torch.no_grad():  # trained-looking scales: random init's tiny weights would make every logit equal
        for parameter in model.parameters():
            if parameter.dim() == 2:
                parameter.normal_(0, 0.02)
    return model


def cached(model, cache) -> dict:
    """The KV cache under `model.forward`'s keyword ('cache' in current transformers,
    'past_key_values' before), looked up once per model class: this runs inside the timed steps."""
    return {_cache_keyword(type(model)): cache}


@functools.cache
def _cache_keyword(model_class) -> str:
    return cache_argument(model_class)


def make_cache(model, kind: str, length: int):
    import transformers

    if kind == "static":
        return transformers.StaticCache(config=model.config, max_cache_len=length)
    return transformers.DynamicCache(config=model.config)


class Runner:
    """One decode path for every variant: prefill, then one token per step, through model.forward."""

    def __init__(self, cache: str, compile_step: bool) -> None:
        self.cache, self.compile_step = cache, compile_step
        self.steps: dict[int, object] = {}

    def step(self, model):
        if not self.compile_step:
            return model
        if id(model) not in self.steps:
            self.steps[id(model)] = torch.compile(model, dynamic=False, fullgraph=False)
        return self.steps[id(model)]

    @torch.inference_mode()
    def prefill_ms(self, model, prompt: torch.Tensor) -> float:
        cache = make_cache(model, self.cache, prompt.shape[1] + 1)
        start = time.perf_counter()
        model(input_ids=prompt, **cached(model, cache), use_cache=True, logits_to_keep=1, cache_position=torch.arange(prompt.shape[1]))
        return (time.perf_counter() - start) * 1e3

    @torch.inference_mode()
    def decode_ms(self, models: dict[str, torch.nn.Module], prompt: torch.Tensor, new_tokens: int) -> dict[str, float]:
        """Median ms of one new token after the prompt (the prefill is not counted), per model.
        The models take turns step by step, each with its own cache: a drift in the machine's
        speed (this VM moves +-15% within seconds) falls on every model alike."""
        length = prompt.shape[1]
        state, times = {}, {name: [] for name in models}
        for name, model in models.items():
            cache = make_cache(model, self.cache, length + new_tokens + 1)
            out = model(input_ids=prompt, **cached(model, cache), use_cache=True, logits_to_keep=1, cache_position=torch.arange(length))
            state[name] = (self.step(model), cached(model, cache), out.logits[:, -1:].argmax(-1))
        for position in range(length, length + new_tokens):
            for name, (step, cache, token) in state.items():
                start = time.perf_counter()
                out = step(input_ids=token, **cache, use_cache=True, logits_to_keep=1, cache_position=torch.tensor([position]))
                token = out.logits[:, -1:].argmax(-1)
                times[name].append(time.perf_counter() - start)
                state[name] = (step, cache, token)
        return {name: statistics.median(values) * 1e3 for name, values in times.items()}


def kernels(model, rows: int) -> str:
    """Which kernels the packed modules pick for `rows` token rows, counted."""
    counts = collections.Counter(module.kernel_for(rows) for module in model.modules() if callable(getattr(module, "kernel_for", None)))
    return ", ".join(f"{name} x{count}" for name, count in sorted(counts.items())) or "dense"


def build_variants(source, names: list[str]) -> dict[str, torch.nn.Module]:
    models = {"fp32": source, "bf16": copy.deepcopy(source).to(torch.bfloat16)}
    for name in names:
        models[name], _ = compress.apply(copy.deepcopy(source), [VARIANTS[name]], progress=False)
    return models


def profile(model, prompt: torch.Tensor, runner: Runner, rows: int = 25) -> None:
    from torch.profiler import ProfilerActivity, profile as torch_profile

    cache = make_cache(model, runner.cache, prompt.shape[1] + 8)
    with torch.inference_mode():
        out = model(input_ids=prompt, **cached(model, cache), use_cache=True, logits_to_keep=1, cache_position=torch.arange(prompt.shape[1]))
        token = out.logits[:, -1:].argmax(-1)
        step = runner.step(model)
        for position in range(prompt.shape[1], prompt.shape[1] + 3):  # warm
            token = step(input_ids=token, **cached(model, cache), use_cache=True, logits_to_keep=1, cache_position=torch.tensor([position])).logits[:, -1:].argmax(-1)
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            step(input_ids=token, **cached(model, cache), use_cache=True, logits_to_keep=1, cache_position=torch.tensor([prompt.shape[1] + 3]))
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))


def crossover(threads: int) -> None:
    """Per layer shape of the 135M model: ms of PyTorch's int4 kernel, our decode kernel and our
    prefill kernel (tile-wise dequantize + sgemm) against dense fp32, by token rows; the crossings
    set NATIVE_DECODE_MAX_ROWS(_SPLIT) and KERNEL_MAX_ROWS_PREFILL(_SPLIT) in
    compress/formats/quantized_linear.py."""
    import torch.nn.functional as F

    from compress.algorithms.quantization.grid import rtn_quantize
    from compress.formats import QuantizedLinear, cpu_int4, native_kernels

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from packed_linear_speed import median_ms

    def best(function):
        return median_ms(function, repeats=7, warmup=1)

    print(f"\n{' / '.join(cpu_description())}; {threads} threads; load average {os.getloadavg()[0]:.2f}\n")
    print("| layer (out x in) | bits | rows | fp32 GEMM ms | int4 kernel ms | our decode kernel ms | prefill kernel ms |")
    print("|---|---|---|---|---|---|---|")
    for out_features, in_features in [(576, 576), (1536, 576), (576, 1536)]:
        weight = torch.randn(out_features, in_features) * 0.02
        for bits in (4, 8):
            layer = QuantizedLinear.from_codes(*rtn_quantize(weight, bits, 128), bits=bits, group_size=128)
            with torch.inference_mode():
                layer(torch.randn(1, in_features))
                kernel = layer._kernel
                op = dataclasses.replace(kernel, native_decode_rows=0)  # the int4 op even where ours decodes
                decodes = native_kernels.decodes(cpu_int4.kernel_layout())
                for rows in (1, 4, 8, 16, 32, 64, 128):
                    x = torch.randn(rows, in_features)
                    dense = best(lambda: F.linear(x, weight))
                    int4 = best(lambda: layer._kernel_forward(x, op))
                    ours = best(lambda: layer._native_forward(x, kernel, native_kernels.decode)) if decodes else float("nan")
                    tiled = best(lambda: layer._native_forward(x, kernel, native_kernels.prefill))
                    print(f"| {out_features}x{in_features} | {bits} | {rows} | {dense:.3f} | {int4:.3f} | {ours:.3f} | {tiled:.3f} |", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a local checkpoint folder (default: the 135M-shaped random LLaMA)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5, help="interleaved runs; medians are reported")
    parser.add_argument("--prompts", default="96,512", help="prefill prompt lengths, comma-separated")
    parser.add_argument("--new-tokens", type=int, default=16, help="decode steps timed per run (after a 32-token prompt)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"packed variants, from: {', '.join(VARIANTS)}")
    parser.add_argument("--cache", choices=["dynamic", "static"], default="dynamic", help="KV cache kind, the same for every variant")
    parser.add_argument("--compile", action="store_true", help="torch.compile the decode step (every variant)")
    parser.add_argument("--profile", metavar="VARIANT", help="profile one decode token of VARIANT (fp32, bf16 or a packed one) and exit")
    parser.add_argument("--quick", action="store_true", help="tiny model, 1 run, short prompts: a smoke test")
    parser.add_argument("--crossover", action="store_true", help="time the int4 op, our decode kernel and our prefill kernel per layer shape and row count, and exit")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.crossover:
        crossover(args.threads)
        return 0
    names = [name for name in args.variants.split(",") if name]
    unknown = [name for name in names if name not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    prompts = [int(p) for p in args.prompts.split(",")] if not args.quick else [16, 48]
    runs, new_tokens = (1, 4) if args.quick else (args.runs, args.new_tokens)
    cpu, flags = cpu_description()
    load_before = os.getloadavg()
    source = build_model(args.model, args.quick)
    vocab = source.config.vocab_size
    generator = torch.Generator().manual_seed(0)
    prompt_ids = {p: torch.randint(0, vocab, (1, p), generator=generator) for p in {*prompts, 32}}
    runner = Runner(args.cache, args.compile)
    if args.profile:
        models = build_variants(source, [args.profile] if args.profile in VARIANTS else [])
        profile(models[args.profile], prompt_ids[32], runner)
        return 0
    models = build_variants(source, names)
    runner.decode_ms(models, prompt_ids[32], 2)  # warm: kernel layouts converted, allocator and compilation primed
    for model in models.values():
        for p in prompts:
            runner.prefill_ms(model, prompt_ids[p])
    timings: dict[str, dict[str, list[float]]] = {name: collections.defaultdict(list) for name in models}
    for _ in range(runs):
        for name, model in models.items():
            for p in prompts:
                timings[name][f"prefill {p}"].append(runner.prefill_ms(model, prompt_ids[p]))
        for name, ms in runner.decode_ms(models, prompt_ids[32], new_tokens).items():
            timings[name]["decode"].append(ms)
    load_after = os.getloadavg()
    bandwidth = cpu_read_bandwidth(args.threads)  # after the timing, same threads: the roofline's yardstick
    columns = [*(f"prefill {p}" for p in prompts), "decode"]
    median = {name: {c: statistics.median(timings[name][c]) for c in columns} for name in models}
    print(f"\n{cpu} ({flags}); torch {torch.__version__}, {args.threads} threads; cache {args.cache}"
          f"{', compiled decode step' if args.compile else ''}; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after; "
          f"medians of {runs} interleaved runs; decode = ms per new token after a 32-token prompt ({new_tokens} steps); "
          f"read bandwidth {bandwidth['bytes_per_s'] / 1e9:.1f} GB/s ({bandwidth['method']})\n")
    header = " | ".join(f"{c} ms (x fp32, x bf16)" for c in columns)
    print(f"| variant | weight MB | {header} | MB read per token | bandwidth limit ms | fraction of it reached |")
    print("|---|---|" + "---|" * len(columns) + "---|---|---|")
    for name, model in models.items():
        cells = []
        for c in columns:
            value = median[name][c]
            cells.append(f"{value:.1f} ({median['fp32'][c] / value:.2f}x, {median['bf16'][c] / value:.2f}x)")
        bound = roofline(model, median[name]["decode"], bandwidth)
        print(f"| {name} | {weight_bytes(model) / 1e6:.1f} | {' | '.join(cells)} | {bound['bytes_read_per_token'] / 1e6:.1f} | "
              f"{bound['bandwidth_limit_ms_per_token']:.2f} | {bound['bandwidth_fraction']:.0%} |")
    print("\nKernels picked (`kernel_for`), decode (1 row) / prefill rows:")
    for name, model in list(models.items())[2:]:
        print(f"- {name}: decode: {kernels(model, 1)}; " + "; ".join(f"prefill {p}: {kernels(model, p)}" for p in prompts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
