"""Unstructured and 2:4 pruning quality and stored bytes: magnitude (per row) vs wanda vs sparsegpt.

    SCALECOMPRESS_CACHE=/work/cache python benchmarks/prune_quality.py --model PATH [--model PATH ...]

Per model: bits/byte on the test plays for dense and each pass at 50% unstructured and 2:4; the
increase over dense, and wanda's and sparsegpt's increase as a fraction of magnitude's (the
acceptance: <= 0.3 at 50%, <= 0.5 at 2:4). Storage: the pruned layers' saved bytes over their
dense bytes of the same dtype (fp16 50% and 2:4; 2:4 + 4-bit over fp32), the whole checkpoint's
file ratio beside them, and whether the reloaded checkpoint gives the same logits.
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
    args = parser.parse_args()

    import compress
    from compress.bench.env import capture_env
    from compress.bench.text import load_eval_text
    from compress.data.calibration import calibration_batches

    text = load_eval_text("plays:test")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for path in args.model:
            model, tokenizer, _ = compress.load(path)
            tokens = calibration_batches(tokenizer, n_samples=args.samples, seq_len=min(args.seq_len, model.config.max_position_embeddings), seed=0)
            results[Path(path).name] = {"quality": quality(path, tokens, text), "storage": storage(path, tokens, Path(tmp))}
    document = {"command": " ".join(sys.argv), "machine": {**capture_env(), "load_average": [round(x, 2) for x in os.getloadavg()]}, "results": results}
    print(json.dumps(document, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
