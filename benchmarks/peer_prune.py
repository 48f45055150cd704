"""Wanda and SparseGPT against llm-compressor's modifiers, in one run, on the same model, the
same calibration token ids and the same machine; perplexity by the same evaluator.

    SCALECOMPRESS_CACHE=/work/cache python benchmarks/peer_prune.py --model PATH [--model PATH ...]

For each model and method (50% unstructured): ours through `compress.apply`, the peer in its own
venv (benchmarks/.peers/llm-compressor, created when missing: torch==2.13.0 first, then
llmcompressor) via benchmarks/peer_prune_worker.py; the peer's pruned weights are loaded back
here and evaluated exactly as ours. Reports perplexity, bits/byte, seconds of the pruning call,
their ratios, the machine and its load average (the machine may be shared: say so).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from prune_quality import evaluate  # noqa: E402 - one evaluation protocol for both pruning scripts

VENV = HERE / ".peers" / "llm-compressor"


def peer_python() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        print(f"creating the peer venv {VENV} (torch==2.13.0 first, then llmcompressor)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "torch==2.13.0", "--index-url", "https://download.pytorch.org/whl/cpu"], check=True)
        subprocess.run([*pip, "llmcompressor", "torch==2.13.0"], check=True)
    return python


def run_model(path: str, samples: int, seq_len: int, workdir: Path) -> list[dict]:
    import torch
    from safetensors.torch import load_file, save_file

    import compress
    from compress.bench.text import load_eval_text
    from compress.data.calibration import calibration_batches
    from compress.passes import SparseGPTConfig, WandaConfig

    model, tokenizer, _ = compress.load(path)
    seq_len = min(seq_len, model.config.max_position_embeddings)
    tokens = calibration_batches(tokenizer, n_samples=samples, seq_len=seq_len, seed=0)
    tokens_file = workdir / "tokens.safetensors"
    save_file({"input_ids": tokens.contiguous()}, str(tokens_file))
    text = load_eval_text("plays:test")
    rows = [{"model": Path(path).name, "method": "dense", **evaluate(model, tokenizer, text)}]
    for method, config in (("wanda", WandaConfig(sparsity=0.5, storage="dense")), ("sparsegpt", SparseGPTConfig(sparsity=0.5, storage="dense"))):
        ours_model = compress.load(path).model
        start = time.perf_counter()
        compress.apply(ours_model, [config], tokens, progress=False)
        ours_seconds = time.perf_counter() - start
        ours = evaluate(ours_model, tokenizer, text)
        out = workdir / f"{method}.safetensors"
        result = subprocess.run(
            [str(peer_python()), str(HERE / "peer_prune_worker.py"), path, str(tokens_file), str(out), method, "0.5"],
            capture_output=True, text=True, check=False, env={**os.environ, "PYTHONPATH": ""},
        )
        if result.returncode:
            raise SystemExit(f"peer {method} failed on {path}:\n{result.stderr[-3000:]}")
        peer_info = json.loads(result.stdout.strip().splitlines()[-1])
        peer_model = compress.load(path).model
        missing = peer_model.load_state_dict(load_file(str(out)), strict=False)
        assert not missing.unexpected_keys, missing.unexpected_keys
        peer_sparsity = float(sum((m.weight == 0).sum() for n, m in peer_model.named_modules() if isinstance(m, torch.nn.Linear) and "lm_head" not in n)
                              / sum(m.weight.numel() for n, m in peer_model.named_modules() if isinstance(m, torch.nn.Linear) and "lm_head" not in n))
        peer = evaluate(peer_model, tokenizer, text)
        rows.append({
            "model": Path(path).name, "method": method,
            "ours": {**ours, "seconds": round(ours_seconds, 2)},
            "peer": {**peer, "seconds": round(peer_info["seconds"], 2), "sparsity": round(peer_sparsity, 4)},
            "perplexity_ratio": round(ours["perplexity"] / peer["perplexity"], 4),
            "time_ratio": round(ours_seconds / peer_info["seconds"], 3),
            "peer_versions": peer_info["versions"],
        })
        print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="model folder (repeatable), e.g. a pocket ladder member")
    parser.add_argument("--samples", type=int, default=128, help="calibration sequences (same for both)")
    parser.add_argument("--seq-len", type=int, default=128, help="tokens per calibration sequence (capped at max positions)")
    parser.add_argument("--out", default=None, help="write the JSON result here too")
    args = parser.parse_args()
    from compress.bench.env import capture_env

    with tempfile.TemporaryDirectory() as tmp:
        rows = [row for path in args.model for row in run_model(path, args.samples, args.seq_len, Path(tmp))]
    machine = {**capture_env(), "cpu_flags": _flags(), "load_average": [round(x, 2) for x in os.getloadavg()]}
    document = {"command": " ".join(sys.argv), "machine": machine, "rows": rows}
    text = json.dumps(document, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


def _flags() -> str:
    flags = next((line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), [])
    return " ".join(flag for flag in flags if flag.startswith(("avx", "fma", "amx")))


if __name__ == "__main__":
    main()
