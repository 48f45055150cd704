"""CPU serving peer: llama.cpp (through llama-cpp-python) against our own torch path, one run.

    python benchmarks/peer_llamacpp.py                       # pocket member + 135M-shaped random LLaMA
    python benchmarks/peer_llamacpp.py --member pocket-d128-l4 --skip-random

For each model, on the same machine, threads and token ids:
- ours: the dense fp32 model and its rtn 4-bit (asymmetric, g32) copy, decode tokens/s with a
  KV cache (greedy) and perplexity on token windows;
- llama.cpp: F16, Q8_0 and Q4_0 GGUF files exported from the dense model by `compress.export`,
  plus Q4_1 exported from our rtn model (our codes exactly), measured the same way by
  benchmarks/peer_llamacpp_worker.py inside the peer venv.

The peer venv (benchmarks/.peers/llama-cpp) is created when missing: llama-cpp-python compiles
from source there (long on 2 cores; reused afterwards). It needs no torch. Prints a markdown
table with the ratios to our fp32 and writes the JSON next to --out.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".peers" / "llama-cpp"
PEER = "llama-cpp-python==0.3.36"


def ensure_venv() -> Path:
    python = VENV / "bin" / "python"
    probe = [str(python), "-c", "import llama_cpp"] if python.exists() else None
    if probe and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"building {PEER} in {VENV} (compiles llama.cpp; this takes a while)", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "numpy"], check=True)
    env = {**os.environ, "CMAKE_BUILD_PARALLEL_LEVEL": str(os.cpu_count() or 2), "CMAKE_ARGS": "-DGGML_NATIVE=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF -DLLAVA_BUILD=OFF"}
    subprocess.run([str(python), "-m", "pip", "install", PEER], check=True, env=env)
    return python


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), platform.processor())
    flags = next((line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), [])
    return {"cpu": cpu, "simd": [f for f in ("avx2", "avx512f", "avx512_vnni", "f16c", "fma") if f in flags], "cores": os.cpu_count(), "load_average": os.getloadavg(), "torch": torch.__version__}


def pocket_member(name: str | None):
    import compress
    from compress.scaling.ladder import load_ladder

    ladder = load_ladder("pocket", cached_only=True, progress=False)
    members = {m.name: m for m in ladder.members}
    member = members[name] if name else max(ladder.members, key=lambda m: m.params or 0)
    model, tokenizer, _ = compress.load(member.path)
    return member.name, model, tokenizer


def random_135m():
    import transformers

    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                                      num_key_value_heads=3, max_position_embeddings=2048, tie_word_embeddings=True, rms_norm_eps=1e-5)
    return "llama-135m-shape-random", transformers.AutoModelForCausalLM.from_config(config).eval(), None


def token_windows(tokenizer, vocab: int, length: int, count: int) -> list[list[int]]:
    if tokenizer is None:
        generator = torch.Generator().manual_seed(0)
        return torch.randint(0, vocab, (count, length), generator=generator).tolist()
    from compress.data.plays import split_text

    ids = tokenizer(split_text("test"), add_special_tokens=False)["input_ids"]
    return [ids[i * length : (i + 1) * length] for i in range(count)]


@torch.no_grad()
def torch_perplexity(model, windows) -> float:
    nll, count = 0.0, 0
    for window in windows:
        ids = torch.tensor([window])
        logits = model(ids).logits[0, :-1].float()
        nll += float(torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="sum"))
        count += len(window) - 1
    return math.exp(nll / count)


@torch.no_grad()
def torch_decode(model, prompt, new_tokens: int, repeats: int) -> float:
    from compress.bench.modeling import cache_argument, cache_of

    rates, keyword = [], cache_argument(model)
    for _ in range(repeats):
        out = model(torch.tensor([prompt]), use_cache=True)
        past, token = cache_of(out), out.logits[0, -1].argmax().view(1, 1)
        started = time.perf_counter()
        for _ in range(new_tokens):
            out = model(token, **{keyword: past}, use_cache=True)
            past, token = cache_of(out), out.logits[0, -1].argmax().view(1, 1)
        rates.append(new_tokens / (time.perf_counter() - started))
    return sorted(rates)[len(rates) // 2]


def measure(name, model, tokenizer, python: Path, args, folder: Path) -> list[dict]:
    import compress
    from compress.bench.roofline import bytes_read_per_token
    from compress.passes import RTNConfig
    from compress.algorithms.quantization.rtn import TableQuant

    context = min(args.window, model.config.max_position_embeddings)
    windows = token_windows(tokenizer, model.config.vocab_size, context, args.windows)
    prompt = windows[0][: args.prompt_tokens]
    new_tokens = min(args.new_tokens, model.config.max_position_embeddings - len(prompt) - 1)
    rows = []
    files = {}
    log = lambda what: print(f"[{time.strftime('%H:%M:%S')}] {name}: {what}", file=sys.stderr, flush=True)  # noqa: E731
    log("exporting GGUF F16 / Q8_0 / Q4_0")
    for qtype in ("F16", "Q8_0", "Q4_0"):
        files[f"llama.cpp {qtype}"] = compress.export(model, "gguf", folder / f"{name}-{qtype}.gguf", tokenizer=tokenizer, gguf_type=qtype)["path"]
    log("ours fp32")
    rows.append({"name": "ours fp32", "perplexity": torch_perplexity(model, windows), "decode_tokens_per_s": torch_decode(model, prompt, new_tokens, args.repeats),
                 "bytes_read_per_token": bytes_read_per_token(model)})
    log("ours rtn-w4-g128 with the head packed at 8 bits (decode_speed.py's acceptance variant)")
    packed, _ = compress.apply(copy.deepcopy(model), [RTNConfig(bits=4, group_size=128, head=TableQuant(bits=8, group_size=128))], progress=False)
    rows.append({"name": "ours rtn-w4-g128-head8", "perplexity": torch_perplexity(packed, windows),
                 "decode_tokens_per_s": torch_decode(packed, prompt, new_tokens, args.repeats), "bytes_read_per_token": bytes_read_per_token(packed)})
    del packed
    log("ours rtn-w4-g32")
    quantized, _ = compress.apply(model, [RTNConfig(bits=4, group_size=32)], progress=False)
    rows.append({"name": "ours rtn-w4-g32", "perplexity": torch_perplexity(quantized, windows), "decode_tokens_per_s": torch_decode(quantized, prompt, new_tokens, args.repeats),
                 "bytes_read_per_token": bytes_read_per_token(quantized)})
    files["llama.cpp Q4_1 (our rtn codes)"] = compress.export(quantized, "gguf", folder / f"{name}-rtn-Q4_1.gguf", tokenizer=tokenizer)["path"]
    log("llama.cpp (peer venv)")
    job = folder / f"{name}-job.json"
    job.write_text(json.dumps({"models": files, "windows": windows, "prompt": prompt, "new_tokens": new_tokens, "threads": args.threads, "repeats": args.repeats}))
    done = subprocess.run([str(python), str(ROOT / "peer_llamacpp_worker.py"), str(job)], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""})
    if done.returncode:
        raise SystemExit(f"llama.cpp worker failed: {done.stderr[-2000:]}")
    rows += [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    base = rows[0]
    q4_0 = next(row for row in rows if row["name"] == "llama.cpp Q4_0")
    for row in rows:
        row["model"] = name
        row["decode_vs_ours_fp32"] = row["decode_tokens_per_s"] / base["decode_tokens_per_s"]
        row["decode_vs_llamacpp_q4_0"] = row["decode_tokens_per_s"] / q4_0["decode_tokens_per_s"]
        row["ppl_vs_ours_fp32"] = row["perplexity"] / base["perplexity"]
        if row.get("bytes_read_per_token"):  # ours: the decode roofline, with this run's bandwidth
            limit_ms = 1000.0 * row["bytes_read_per_token"] / args.bandwidth["bytes_per_s"]
            row["bandwidth_fraction"] = limit_ms / (1000.0 / row["decode_tokens_per_s"])
    print(f"{name}: {len(windows)} windows x {context} tokens, decode {new_tokens} tokens after {len(prompt)}", file=sys.stderr)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--member", help="pocket ladder member (default: the largest cached)")
    parser.add_argument("--skip-random", action="store_true", help="skip the 135M-shaped random LLaMA")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--window", type=int, default=128)
    parser.add_argument("--windows", type=int, default=8)
    parser.add_argument("--prompt-tokens", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "peer_llamacpp.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    python = ensure_venv()
    from compress.bench.roofline import cpu_read_bandwidth

    args.bandwidth = cpu_read_bandwidth(args.threads)
    before = machine()
    started = time.perf_counter()
    rows: list[dict] = []
    print(f"read bandwidth {args.bandwidth['bytes_per_s'] / 1e9:.1f} GB/s ({args.bandwidth['method']})")
    print("| model | runtime / weights | decode tok/s | vs ours fp32 | vs llama.cpp Q4_0 | fraction of bandwidth limit | perplexity | vs ours fp32 |\n"
          "|---|---|---|---|---|---|---|---|", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        for build in [lambda: pocket_member(args.member)] + ([] if args.skip_random else [random_135m]):
            measured = measure(*build(), python, args, Path(folder))
            rows += measured
            for row in measured:  # each model's rows as soon as they exist; the JSON is rewritten too
                fraction = f"{row['bandwidth_fraction']:.0%}" if row.get("bandwidth_fraction") else ""
                print(f"| {row['model']} | {row['name']} | {row['decode_tokens_per_s']:.1f} | {row['decode_vs_ours_fp32']:.2f}x | "
                      f"{row['decode_vs_llamacpp_q4_0']:.2f}x | {fraction} | {row['perplexity']:.3f} | {row['ppl_vs_ours_fp32']:.4f} |", flush=True)
            document = {"command": " ".join(sys.argv), "machine": before, "read_bandwidth": args.bandwidth, "load_average_after": os.getloadavg(), "threads": args.threads,
                        "seconds": time.perf_counter() - started, "rows": rows}
            args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nmachine: {before['cpu']} ({', '.join(before['simd'])}), {before['cores']} cores, threads={args.threads}, "
          f"load average before {before['load_average']}, after {document['load_average_after']}; {document['seconds']:.0f} s")

if __name__ == "__main__":
    main()
