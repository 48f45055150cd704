"""`scalecompress export MODEL --format FMT --out PATH`: the deployable artifact.

    scalecompress export out/pocket-rtn4 --format compressed-tensors --out deploy/pocket-w4
    scalecompress export out/pocket-rtn4 --format gguf --out deploy/pocket-w4.gguf
    scalecompress export out/pocket-pruned --format hf --out deploy/pocket-pruned
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from compress.cli import app


@app.command("export")
def export_command(
    model: str = typer.Argument(..., help="A checkpoint folder written by `scalecompress run` / compress.save (dense, rtn, gptq, pruned, ...)."),
    fmt: str = typer.Option(..., "--format", "-f", help="compressed-tensors (vLLM, SGLang, transformers), gguf (llama.cpp) or hf (dense safetensors)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (a .gguf file for --format gguf). Written atomically."),
    gguf_type: str = typer.Option("auto", "--gguf-type", help="GGUF tensor type: auto (our codes exactly where a type holds them), F16, Q8_0, Q4_0 or Q4_1."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object: format, path, bytes, and what was exact or re-quantized."),
) -> None:
    """Write MODEL in a format a serving stack loads, refusing what that format cannot hold exactly.

    Exit 0 written; exit 2 with one line (reason and the formats that can hold it) when refused.
    Serve it with e.g. `vllm serve deploy/pocket-w4` or `llama-server -m deploy/pocket-w4.gguf`.
    """
    from compress.export import export

    summary = export(model, fmt, out, gguf_type=gguf_type, progress=not json_output)
    if json_output:
        sys.stdout.write(json.dumps(summary, indent=2, default=str) + "\n")
        return
    details = summary["details"]
    size = f"{summary['bytes']:,} B"
    if "source_bytes" in summary:
        size += f" ({summary['bytes'] / max(summary['source_bytes'], 1):.3f}x the source weights file)"
    print(f"exported {model} as {fmt}: {summary['path']}, {size}")
    if fmt == "gguf":
        print(f"re-encoded exactly: {len(details['reencoded_exactly'])} tensor(s), largest weight difference {details['max_reencode_weight_difference']:.3g} (fp16 rounding)")
        if details["requantized"]:
            print(f"re-quantized: {len(details['requantized'])} tensor(s), relative error added: max {details['max_requantization_relative_error']:.3g}, mean {details['mean_requantization_relative_error']:.3g}")
        print(f"tokenizer: {details['tokenizer']}")
