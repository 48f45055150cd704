"""What decoding with int8 activations costs in quality: the decode path against the exact prefill path.

Our decode kernel (`compress/formats/native_kernels.py`) quantizes each token's activations to
int8 per 32 inputs, as llama.cpp does, before its integer dot products with the packed codes;
the prefill kernel computes with the exact fp32 activations, and PyTorch's int4 op (the decode
path where our kernel is not built) with bf16 ones. For each model this scores the same held-out
windows three ways, teacher-forced, with `rtn` w4 g128 and the head packed at 8 bits:
- prefill: one forward per window (every layer on the exact prefill kernel);
- decode, ours: token by token through the KV cache (one row per call: our decode kernel);
- decode, int4 op: the same with PyTorch's `_weight_int4pack_mm_for_cpu` for the single rows.
and the dense model's prefill for scale. Bits per byte over the windows' predicted tokens.

    SCALECOMPRESS_CACHE=/work/cache python benchmarks/decode_quality.py      # both pocket ladders' largest members
    python benchmarks/decode_quality.py --model PATH [--model PATH2] --windows 24

Prints Markdown rows (stdout) for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
import torch.nn.functional as F
from pocket_models import largest_members

import compress
from compress.bench.modeling import cache_argument, max_positions
from compress.bench.text import bos_prefix, encode, load_eval_text
from compress.formats import QuantizedLinear
from compress.passes import RTNConfig

RECIPE = RTNConfig(bits=4, group_size=128, head={"bits": 8, "group_size": 128})


def bits_per_byte(model, windows: list[torch.Tensor], predicted_bytes: int, decode: bool) -> float:
    return sum(window_nll(model, window, decode) for window in windows) / math.log(2) / predicted_bytes


@torch.inference_mode()
def window_nll(model, ids: torch.Tensor, decode: bool) -> float:
    """Summed NLL (nats) of ids[1:] given what precedes, in one forward or token by token."""
    if not decode:
        logits = model(input_ids=ids[None]).logits[0, :-1].float()
    else:
        from transformers import DynamicCache

        cache, rows, keyword = DynamicCache(config=model.config), [], cache_argument(model)
        for position in range(len(ids) - 1):
            out = model(input_ids=ids[None, position : position + 1], **{keyword: cache}, use_cache=True)
            rows.append(out.logits[0, -1].float())
        logits = torch.stack(rows)
    return float(F.cross_entropy(logits, ids[1:], reduction="sum"))


def use_int4_op(model) -> None:
    """Route every packed layer's single rows to PyTorch's int4 op instead of our decode kernel."""
    for module in model.modules():
        if isinstance(module, QuantizedLinear) and module._kernel is not None:
            module._kernel.native_decode_rows = 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="local checkpoint (repeatable); default: the largest cached pocket members")
    parser.add_argument("--windows", type=int, default=16, help="held-out windows scored per model")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    text = load_eval_text("plays:test")
    print(f"rtn w4 g128, head 8-bit g128; test plays, {args.windows} windows of the model's context, teacher-forced\n")
    print("| model | path | bits/byte | vs prefill |")
    print("|---|---|---|---|")
    for path in args.model or largest_members():
        model, tokenizer, _ = compress.load(path)
        prefix = bos_prefix(tokenizer)
        length = min(128, max_positions(model) or 128)
        encoded = encode(tokenizer, text)
        ids, token_bytes = torch.as_tensor(encoded.ids, dtype=torch.long), torch.as_tensor(encoded.token_bytes)
        body = length - (prefix is not None)
        starts = [i * body for i in range(args.windows) if (i + 1) * body <= len(ids)]
        windows = [torch.cat([torch.tensor([prefix]), ids[s : s + body]]) if prefix is not None else ids[s : s + body] for s in starts]
        predicted_bytes = sum(int(token_bytes[s + (prefix is None) : s + body].sum()) for s in starts)

        packed, _ = compress.apply(copy.deepcopy(model), [RECIPE], progress=False)
        name = Path(path).name
        rows = [("dense, prefill", bits_per_byte(model, windows, predicted_bytes, False))]
        exact = bits_per_byte(packed, windows, predicted_bytes, False)
        rows += [("packed, prefill (exact fp32 activations)", exact), ("packed, decode: ours (int8 activations per 32)", bits_per_byte(packed, windows, predicted_bytes, True))]
        use_int4_op(packed)
        rows.append(("packed, decode: int4 op (bf16 activations)", bits_per_byte(packed, windows, predicted_bytes, True)))
        for label, value in rows:
            versus = "" if label.startswith("dense") or "prefill" in label else f"{value - exact:+.6f}"
            print(f"| {name} | {label} | {value:.6f} | {versus} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
