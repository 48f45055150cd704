"""Load peak RSS of a checkpoint, fp32 / bf16 / rtn 4-bit g128, each loaded in a fresh process.

Builds the 135M-shaped LLaMA of issue 14 (hidden 576, 30 layers, intermediate 1536, 9 heads /
3 KV heads, vocab 49152, tied embedding; random weights) unless `--model PATH` names a dense
folder, saves it as fp32, bf16 and rtn 4-bit g128 (the output head packed too when the rtn pass
packs it, else dense), then loads each with `compress.load` in a fresh interpreter
(`compress.bench.fresh_load`) and reports the load's peak RSS above the baseline (torch,
transformers, this package and the architecture's modeling code imported) and its ratio to the
weights file's bytes. RSS does not depend on the machine's load.

    python benchmarks/load_memory.py                    # the 135M shape, in a temporary folder
    python benchmarks/load_memory.py --model out/dense --keep out/load-memory
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import torch
import transformers

import compress
from compress.bench.env import cpu_model
from compress.bench.fresh_load import load_rss
from compress.passes import RTNConfig


def shaped_135m() -> torch.nn.Module:
    config = transformers.LlamaConfig(
        vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
        num_key_value_heads=3, max_position_embeddings=2048, tie_word_embeddings=True, rope_theta=10000.0)
    torch.manual_seed(0)
    return transformers.AutoModelForCausalLM.from_config(config).eval()


def build(folder: Path, model_path: str | None) -> dict[str, Path]:
    out = {}
    model = compress.load(model_path).model if model_path else shaped_135m()
    out["fp32"] = compress.save(model.float(), folder / "fp32", overwrite=True)
    out["bf16"] = compress.save(model.to(torch.bfloat16), folder / "bf16", overwrite=True)
    model = model.float()
    packed, _ = compress.apply(model, RTNConfig(bits=4, group_size=128), progress=True)
    out["rtn4-g128"] = compress.save(packed, folder / "rtn4-g128", overwrite=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a dense checkpoint folder (default: build the 135M-shaped LLaMA)")
    parser.add_argument("--keep", type=Path, help="keep the saved checkpoints in this folder")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="load-memory-"))
    folders = build(folder, args.model)
    rows = []
    for name, path in folders.items():
        figures = load_rss(path)
        manifest = json.loads((path / "compression.json").read_text())
        head = "packed" if any(key in ("lm_head", "model.embed_tokens") for key in manifest.get("modules", {})) else "dense"
        rows.append({"model": name, "head": head, **figures,
                     "ratio_to_stored": figures["load_peak_above_baseline_bytes"] / figures["stored_bytes"]})
    print(f"cpu: {cpu_model()}; load average {os.getloadavg()[0]:.1f}; torch {torch.__version__}, transformers {transformers.__version__}")
    print("| checkpoint | head | stored MB | load peak above baseline MB | ratio | load s | baseline MB (imports only) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['head']} | {r['stored_bytes'] / 1e6:.1f} | {r['load_peak_above_baseline_bytes'] / 1e6:.1f} | "
              f"{r['ratio_to_stored']:.2f} | {r['load_seconds']:.2f} | {r['baseline_rss_bytes'] / 1e6:.0f} ({r['import_rss_bytes'] / 1e6:.0f}) |")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
