"""Unstructured and 2:4 pruning quality and stored bytes: magnitude (per row) vs wanda vs sparsegpt.

    SCALECOMPRESS_CACHE=/work/cache python benchmarks/prune_quality.py --model PATH [--model PATH ...]
    SCALECOMPRESS_CACHE=/work/cache python benchmarks/prune_quality.py --model PATH --calibration-grid

Per model: bits/byte on the test plays for dense and each pass at 50% unstructured and 2:4; the
increase over dense, and wanda's and sparsegpt's increase as a fraction of magnitude's (the
acceptance: <= 0.3 at 50%, <= 0.5 at 2:4). Storage: the pruned layers' saved bytes over their
dense bytes of the same dtype (fp16 50% and 2:4; 2:4 + 4-bit over fp32), the whole checkpoint's
file ratio beside them, and whether the reloaded checkpoint gives the same logits.

`--calibration-grid` instead asks whether a ratio is a calibration effect: at 50% it scores
magnitude per row and per layer (the two baselines), wanda, and sparsegpt over calibration
samples x damping (`--grid-samples`, `--grid-damps`; block size 128, sequences of the model's
context), each increase over dense beside its ratio to both magnitude baselines.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def evaluate(model, tokenizer, text: str) -> dict:
    from compress.bench.accuracy.perplexity import evaluate_perplexity

    result = evaluate_perplexity(model, tokenizer, text, window=512, max_tokens=16384, progress=False)
    return {"perplexity": round(result["perplexity"], 4), "bits_per_byte": round(result["bits_per_byte"], 5)}


def quality(path: str, tokens, text: str) -> dict:
    import compress
    from compress.passes import MagnitudeConfig, SparseGPTConfig, WandaConfig

    model, tokenizer, _ = compress.load(path)
    dense = evaluate(model, tokenizer, text)
    rows = {"dense": dense}
    for sparsity in ("50%", "2:4"):
        fields = {"sparsity": 0.5} if sparsity == "50%" else {"pattern": "2:4"}
        for config in (MagnitudeConfig(scope="row", **fields), WandaConfig(**fields), SparseGPTConfig(**fields)):
            pruned = compress.load(path).model
            start = time.perf_counter()
            report = compress.apply(pruned, [config], tokens, progress=False)[1][0]
            seconds = time.perf_counter() - start
            result = evaluate(pruned, tokenizer, text)
            result["increase"] = round(result["bits_per_byte"] - dense["bits_per_byte"], 5)
            result["seconds"] = round(seconds, 2)
            result["measured_sparsity"] = report.details["sparsity"]
            rows[f"{config.pass_name}-{sparsity}"] = result
            print(config.tag(), result, file=sys.stderr)
    for sparsity in ("50%", "2:4"):
        base = rows[f"magnitude-{sparsity}"]["increase"]
        for name in ("wanda", "sparsegpt"):
            rows[f"{name}-{sparsity}"]["vs_magnitude"] = round(rows[f"{name}-{sparsity}"]["increase"] / base, 3)
    return rows


def pruned_increase(path: str, config, tokens, text: str, dense_bpb: float) -> dict:
    import compress

    model, tokenizer, _ = compress.load(path)
    start = time.perf_counter()
    compress.apply(model, [config], tokens, progress=False)
    seconds = time.perf_counter() - start
    result = evaluate(model, tokenizer, text)
    return {**result, "increase": round(result["bits_per_byte"] - dense_bpb, 5), "seconds": round(seconds, 2)}


def calibration_grid(path: str, text: str, samples: list[int], damps: list[float], seq_len: int) -> dict:
    """50%: both magnitude baselines, wanda and sparsegpt over (samples, damp); ratios to both baselines."""
    import compress
    from compress.data.calibration import calibration_batches
    from compress.passes import MagnitudeConfig, SparseGPTConfig, WandaConfig

    model, tokenizer, _ = compress.load(path)
    seq_len = min(seq_len, model.config.max_position_embeddings)
    dense = evaluate(model, tokenizer, text)
    batches = {n: calibration_batches(tokenizer, n_samples=n, seq_len=seq_len, seed=0) for n in samples}
    rows = {"dense": dense}
    print("dense", dense, file=sys.stderr, flush=True)
    for scope in ("row", "layer"):
        rows[f"magnitude-{scope}"] = pruned_increase(path, MagnitudeConfig(sparsity=0.5, scope=scope), None, text, dense["bits_per_byte"])
        print(f"magnitude-{scope}", rows[f"magnitude-{scope}"], file=sys.stderr, flush=True)
    for n in samples:
        rows[f"wanda-{n}x{seq_len}"] = pruned_increase(path, WandaConfig(sparsity=0.5), batches[n], text, dense["bits_per_byte"])
        print(f"wanda-{n}x{seq_len}", rows[f"wanda-{n}x{seq_len}"], file=sys.stderr, flush=True)
        for damp in damps:
            name = f"sparsegpt-{n}x{seq_len}-damp{damp:g}"
            rows[name] = pruned_increase(path, SparseGPTConfig(sparsity=0.5, damp=damp, block_size=128), batches[n], text, dense["bits_per_byte"])
            print(name, rows[name], file=sys.stderr, flush=True)
    for name, row in rows.items():
        if name.startswith(("wanda", "sparsegpt")):
            row["vs_magnitude_row"] = round(row["increase"] / rows["magnitude-row"]["increase"], 3)
            row["vs_magnitude_layer"] = round(row["increase"] / rows["magnitude-layer"]["increase"], 3)
    return rows


def storage(path: str, tokens, workdir: Path) -> dict:
    import torch

    import compress
    from compress.passes import SparseGPTConfig, WandaConfig

    out = {}
    cases = {
        "wanda-50%-fp16": ("float16", WandaConfig(sparsity=0.5)),
        "wanda-2:4-fp16": ("float16", WandaConfig(pattern="2:4")),
        "sparsegpt-2:4-w4-vs-fp32": ("float32", SparseGPTConfig(pattern="2:4", bits=4, group_size=64)),
    }
    for name, (dtype, config) in cases.items():
        dense_model = compress.load(path, dtype=dtype).model
        dense_file = compress.save(dense_model, workdir / f"dense-{dtype}") / "model.safetensors"
        model = compress.load(path, dtype=dtype).model
        report = compress.apply(model, [config], tokens, progress=False)[1][0]
        folder = compress.save(model, workdir / name)
        with torch.no_grad():
            logits = model(tokens[:2]).logits
            reloaded = compress.load(folder).model(tokens[:2]).logits
        out[name] = {
            "pruned_layers_ratio": round(report.bytes_after / report.bytes_before, 4),
            "checkpoint_file_ratio": round((folder / "model.safetensors").stat().st_size / dense_file.stat().st_size, 4),
            "reload_same_logits": bool(torch.equal(logits, reloaded)),
        }
        print(name, out[name], file=sys.stderr)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="model folder (repeatable), e.g. the largest pocket member")
    parser.add_argument("--samples", type=int, default=128, help="calibration sequences")
    parser.add_argument("--seq-len", type=int, default=128, help="tokens per calibration sequence (capped at max positions)")
    parser.add_argument("--out", default=None, help="write the JSON result here too")
    parser.add_argument("--calibration-grid", action="store_true", help="only the 50%% calibration grid (magnitude row/layer, wanda, sparsegpt x samples x damp)")
    parser.add_argument("--grid-samples", default="128,512", help="calibration sequence counts of the grid")
    parser.add_argument("--grid-damps", default="0.01,0.1", help="sparsegpt dampening values of the grid")
    args = parser.parse_args()

    import compress
    from compress.bench.env import capture_env
    from compress.bench.text import load_eval_text
    from compress.data.calibration import calibration_batches

    text = load_eval_text("plays:test")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for path in args.model:
            if args.calibration_grid:
                samples = [int(n) for n in args.grid_samples.split(",")]
                damps = [float(d) for d in args.grid_damps.split(",")]
                results[Path(path).name] = {"calibration_grid": calibration_grid(path, text, samples, damps, args.seq_len)}
                continue
            model, tokenizer, _ = compress.load(path)
            tokens = calibration_batches(tokenizer, n_samples=args.samples, seq_len=min(args.seq_len, model.config.max_position_embeddings), seed=0)
            results[Path(path).name] = {"quality": quality(path, tokens, text), "storage": storage(path, tokens, Path(tmp))}
    document = {"command": " ".join(sys.argv), "machine": {**capture_env(), "load_average": [round(x, 2) for x in os.getloadavg()]}, "results": results}
    print(json.dumps(document, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
