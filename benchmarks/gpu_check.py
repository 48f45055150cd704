"""GPU bench check (run by benchmarks/gpu_check.sh on a lent CUDA machine; ~2 minutes on an H200).

Builds a ~5M pocket-shaped and a ~90M LLaMA from configs (no hub), saves them, and checks:

1. `scalecompress bench DIR --device cuda --json` with default settings for both (load phase,
   accuracy, latency, CUDA memory, NVML energy) — every promised key present and sane;
2. the same ~90M checkpoint loaded in bfloat16 (`--dtype bfloat16`, latency only);
3. decode repeatability: two latency runs of the ~90M model, median difference;
4. CPU and CUDA agree on perplexity (same weights, fp32) and nearly on choice accuracy.

Writes gpu_check.json (all records + checks) to --out and prints a summary; exit 1 on a failed check.

    python benchmarks/gpu_check.py --out /tmp/gpu-check
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

KEYS = ("perplexity", "bits_per_byte", "acc", "acc_norm", "prefill_ms", "decode_ms_per_token", "tokens_per_s",
        "peak_rss_bytes", "weight_bytes", "energy_j", "energy_source")


def tokenizer_1024():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from compress.data.plays import split_text

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1024, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=["<|endoftext|>"])
    bpe.train_from_iterator([split_text("train")[:2_000_000]], trainer)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>")


def llama(hidden: int, layers: int, positions: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=1024, hidden_size=hidden, intermediate_size=int(hidden * 8 / 3) // 16 * 16,
                         num_hidden_layers=layers, num_attention_heads=hidden // 64, num_key_value_heads=hidden // 64,
                         max_position_embeddings=positions, tie_word_embeddings=True)
    return LlamaForCausalLM(config).eval()


def cli_bench(*args: str) -> tuple[dict, float]:
    from compress.cli import main

    stdout = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(stdout):
        code = main(["bench", *args, "--json", "--no-progress"])
    seconds = time.perf_counter() - started
    if code != 0:
        raise RuntimeError(f"scalecompress bench {' '.join(args)} exited {code}")
    return json.loads(stdout.getvalue()), seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp()))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device", file=sys.stderr)
        return 2

    from compress.bench import bench
    from compress.checkpoint import save

    checks: list[tuple[str, bool, str]] = []

    def check(name: str, ok: bool, detail: str = "") -> None:
        checks.append((name, bool(ok), detail))
        print(f"[{'ok' if ok else 'FAIL'}] {name} {detail}", flush=True)

    tokenizer = tokenizer_1024()
    work = Path(tempfile.mkdtemp())
    small, large = llama(256, 6, 128), llama(768, 12, 1024)
    paths = {"d256-l6": save(small, work / "d256-l6", tokenizer=tokenizer), "d768-l12": save(large, work / "d768-l12", tokenizer=tokenizer)}
    records = {}

    for name, path in paths.items():  # 1. defaults through the CLI path, on cuda
        record, seconds = cli_bench(str(path), "--device", "cuda")
        records[name] = record
        missing = [key for key in KEYS if record.get(key) is None]
        check(f"{name}: default bench on cuda has every key", not missing, f"missing {missing}" if missing else f"{seconds:.1f}s")
        check(f"{name}: device/gpu/peaks recorded", record["device"] == "cuda" and bool(record["env"]["gpu"])
              and (record["cuda_max_allocated_bytes"] or 0) >= record["weight_bytes"] > 0 and record["load_peak_rss_bytes"] > 0,
              f"cuda peak {record['cuda_max_allocated_bytes']}, weights {record['weight_bytes']}")
        check(f"{name}: random model at chance", 0.18 <= record["acc"] <= 0.32 and math.isfinite(record["perplexity"]),
              f"acc {record['acc']:.3f}, ppl {record['perplexity']:.1f}")
        check(f"{name}: energy has its source", record["energy_source"] in {"nvml", "estimate"} and bool(record["energy_method"]),
              f"{record['energy_source']}: {record['energy_method']}")
        check(f"{name}: latency sane", 0 < record["prefill_ms"] and 0 < record["decode_ms_per_token"] <= record["decode_ms_per_token_p90"],
              f"prefill {record['prefill_ms']:.2f} ms, decode {record['decode_ms_per_token']:.2f} ms/token")

    record, seconds = cli_bench(str(paths["d768-l12"]), "--device", "cuda", "--dtype", "bfloat16", "--tasks", "latency")
    records["d768-l12-bf16"] = record  # 2. bf16 load path
    check("d768-l12 bf16: weights halve", abs(record["weight_bytes"] / records["d768-l12"]["weight_bytes"] - 0.5) < 0.01,
          f"{record['weight_bytes']} vs {records['d768-l12']['weight_bytes']}; decode {record['decode_ms_per_token']:.2f} ms")

    large.to("cuda")  # 3. repeatability of the decode median
    latency_only = {"device": "cuda", "tasks": ["latency"], "repeats": 10, "warmup": 2}
    first = bench(large, tokenizer, latency_only, progress=False)["decode_ms_per_token"]
    second = bench(large, tokenizer, latency_only, progress=False)["decode_ms_per_token"]
    difference = abs(first - second) / min(first, second)
    records["repeatability"] = {"decode_ms_per_token": [first, second], "relative_difference": difference}
    check("d768-l12: decode median repeats within 10%", difference <= 0.10, f"{first:.3f} vs {second:.3f} ms ({difference:.1%})")
    large.to("cpu")

    settings = {"tasks": ["perplexity", "choice"], "max_eval_tokens": 4096, "choice_items": 200}  # 4. CPU vs CUDA
    on_cpu = bench(small, tokenizer, {**settings, "device": "cpu"}, progress=False)
    on_cuda = bench(small, tokenizer, {**settings, "device": "cuda"}, progress=False)
    relative = abs(on_cuda["loss"] - on_cpu["loss"]) / on_cpu["loss"]
    check("d256-l6: CPU and CUDA loss agree (fp32)", relative < 1e-3, f"{on_cpu['loss']:.6f} vs {on_cuda['loss']:.6f}")
    check("d256-l6: CPU and CUDA choice acc agree", abs(on_cpu["acc"] - on_cuda["acc"]) <= 0.03, f"{on_cpu['acc']:.3f} vs {on_cuda['acc']:.3f}")

    (args.out / "gpu_check.json").write_text(json.dumps({"checks": checks, "records": records}, indent=2, default=str))
    failed = [name for name, ok, _ in checks if not ok]
    print(f"gpu_check: {len(checks) - len(failed)}/{len(checks)} checks passed; details in {args.out / 'gpu_check.json'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
