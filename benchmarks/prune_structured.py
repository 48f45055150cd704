"""Width (`structured`) and depth pruning make models really smaller and faster.

    SCALECOMPRESS_CACHE=/work/cache python benchmarks/prune_structured.py --model PATH

1. The pocket member at PATH: dense, structured 25% (heads and MLP channels) and depth 25%:
   parameters (total, non-embedding), weight bytes, bits/byte, and a reload of each saved folder
   by plain transformers in a process that never imports scalecompress (same logits).
2. A config-built LLaMA with grouped-query attention in the shape of a 135M model (hidden 576,
   30 layers, MLP 1536, 9 heads / 3 KV heads, vocab 49152; random weights: speed does not
   depend on them): the same passes, parameters against the expected counts, plain-transformers
   reload, and decode ms/token (pocket models are overhead-bound, this shape is not), timed in
   interleaved rounds so that a shared machine's load changes hit all three models alike.
   Beside the wall-clock median: the median of each round's paired ratio to dense (measured
   seconds apart), and decode CPU ms/token (process CPU time of 16 cached one-token steps on one
   thread: the work itself, not the wait for a core, so it holds on a shared machine).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RELOAD = """
import json, sys, torch, transformers
folder, tokens = sys.argv[1], json.loads(sys.argv[2])
model = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
assert not any(name == "compress" or name.startswith("compress.") for name in sys.modules)
with torch.no_grad():
    logits = model(torch.tensor(tokens)).logits
print(json.dumps({"params": sum(p.numel() for p in model.parameters()), "logits_sum": float(logits.double().sum()), "logits_abs": float(logits.double().abs().sum())}))
"""


def reload_plain(folder: Path, model, tokens) -> dict:
    import torch

    result = subprocess.run([sys.executable, "-c", RELOAD, str(folder), json.dumps(tokens.tolist())], capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONPATH": ""})
    reloaded = json.loads(result.stdout.strip().splitlines()[-1])
    with torch.no_grad():
        logits = model(tokens).logits.double()
    same = abs(reloaded["logits_abs"] - float(logits.abs().sum())) <= 1e-6 * float(logits.abs().sum()) and abs(reloaded["logits_sum"] - float(logits.sum())) <= 1e-6 * float(logits.abs().sum())
    return {"plain_transformers_params": reloaded["params"], "plain_transformers_same_logits": same}


def describe(model) -> dict:
    from compress.model_info import model_info

    info = model_info(model)
    config = model.config
    return {
        "params": info.params, "non_embedding_params": info.non_embedding_params, "weight_bytes": info.weight_bytes,
        "layers": config.num_hidden_layers, "heads": config.num_attention_heads, "kv_heads": config.num_key_value_heads,
        "intermediate_size": config.intermediate_size,
    }


def variants():
    from compress.passes import DepthConfig, StructuredConfig

    return {"structured-25%": [StructuredConfig(heads=0.25, mlp=0.25)], "depth-25%": [DepthConfig(fraction=0.25)]}


def pocket(path: str, workdir: Path) -> dict:
    import compress
    from compress.bench.accuracy.perplexity import evaluate_perplexity
    from compress.bench.text import load_eval_text
    from compress.data.calibration import calibration_batches

    model, tokenizer, _ = compress.load(path)
    tokens = calibration_batches(tokenizer, n_samples=64, seq_len=min(128, model.config.max_position_embeddings), seed=0)
    text = load_eval_text("plays:test")

    def bpb(m):
        return round(evaluate_perplexity(m, tokenizer, text, window=512, max_tokens=16384, progress=False)["bits_per_byte"], 5)

    rows = {"dense": {**describe(model), "bits_per_byte": bpb(model)}}
    for name, configs in variants().items():
        pruned = compress.load(path).model
        compress.apply(pruned, configs, tokens, progress=False)
        folder = compress.save(pruned, workdir / f"pocket-{name}", tokenizer=tokenizer)
        rows[name] = {**describe(pruned), "bits_per_byte": bpb(pruned), **reload_plain(folder, pruned, tokens[:2])}
        print(name, rows[name], file=sys.stderr)
    return rows


def smol_shaped(workdir: Path, repeats: int) -> dict:
    import torch
    import transformers

    import compress
    from compress.bench.latency import measure_latency
    from compress.bench.modeling import cache_argument, cache_of

    config = transformers.LlamaConfig(
        vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
        max_position_embeddings=2048, tie_word_embeddings=True,
    )

    def build():
        torch.manual_seed(0)
        return transformers.AutoModelForCausalLM.from_config(copy.deepcopy(config)).eval()  # passes rewrite the config they hold

    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 49152, (8, 64), generator=generator)
    prompt = torch.randint(0, 49152, (1, 16), generator=generator)

    def decode(model) -> float:
        return round(measure_latency(model, prompt, new_tokens=16, repeats=1, warmup=1, progress=False)["decode_ms_per_token"], 3)

    def decode_cpu(model, steps: int = 16) -> float:
        keyword = cache_argument(model)
        with torch.no_grad():
            out = model(prompt, use_cache=True)
            start = time.process_time()
            for _ in range(steps):
                out = model(out.logits[:, -1:].argmax(-1), **{keyword: cache_of(out)}, use_cache=True)
            return round((time.process_time() - start) / steps * 1000, 3)

    models = {"dense": build()}
    for name, configs in variants().items():
        models[name] = build()
        compress.apply(models[name], configs, tokens, progress=False)
    # Interleaved rounds (dense, structured, depth, dense, ...): on a shared machine a load change
    # then hits every model alike instead of whichever happened to be measured during it.
    timings = {name: [] for name in models}
    cpu = {name: [] for name in models}
    for _ in range(repeats):
        for name, model in models.items():
            timings[name].append(decode(model))
            cpu[name].append(decode_cpu(model))
    rows = {"dense": {**describe(models["dense"]), "decode_ms_per_token": statistics.median(timings["dense"]), "decode_rounds": timings["dense"],
                      "decode_cpu_ms_per_token": statistics.median(cpu["dense"]), "decode_cpu_rounds": cpu["dense"]}}
    per_layer_attention = 2 * 576 * 576 + 2 * 576 * 192  # q,o + k,v
    per_layer_mlp = 3 * 576 * 1536
    expected = {
        # one of 3 KV groups (3 query heads + its k/v head): 1/3 of q,o,k,v; MLP 1536 -> 1152 channels
        "structured-25%": rows["dense"]["params"] - 30 * (per_layer_attention // 3 + 3 * 576 * 384),
        # 8 of 30 blocks (round(0.25 * 30) = round(7.5) = 8), each attention + MLP + 2 norms
        "depth-25%": rows["dense"]["params"] - 8 * (per_layer_attention + per_layer_mlp + 2 * 576),
    }
    for name in variants():
        model = models[name]
        folder = compress.save(model, workdir / f"smol-{name}")
        median = statistics.median(timings[name])
        paired = [t / d for t, d in zip(timings[name], timings["dense"])]
        cpu_median = statistics.median(cpu[name])
        rows[name] = {**describe(model), "expected_params": expected[name], "decode_ms_per_token": median, "decode_rounds": timings[name],
                      "decode_change": round(median / rows["dense"]["decode_ms_per_token"] - 1, 4),
                      "decode_change_paired_rounds": round(statistics.median(paired) - 1, 4),
                      "decode_cpu_ms_per_token": cpu_median, "decode_cpu_rounds": cpu[name],
                      "decode_cpu_change": round(cpu_median / rows["dense"]["decode_cpu_ms_per_token"] - 1, 4),
                      **reload_plain(folder, model, tokens[:1, :16])}
        print(name, rows[name], file=sys.stderr)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a pocket ladder member folder")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved timing rounds (16 decoded tokens per model each)")
    parser.add_argument("--skip-pocket", action="store_true", help="only the 135M-shaped part")
    parser.add_argument("--out", default=None, help="write the JSON result here too")
    args = parser.parse_args()
    from compress.bench.env import capture_env

    with tempfile.TemporaryDirectory() as tmp:
        result = {} if args.skip_pocket else {"pocket": pocket(args.model, Path(tmp))}
        result["llama-135m-shape-gqa"] = smol_shaped(Path(tmp), args.repeats)
    document = {"command": " ".join(sys.argv), "machine": {**capture_env(), "load_average": [round(x, 2) for x in os.getloadavg()]}, "results": result}
    print(json.dumps(document, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
