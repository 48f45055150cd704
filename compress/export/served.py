"""Bench the artifact a user serves: a GGUF file measured through llama.cpp itself.

`scalecompress bench FILE.gguf` lands here. With `llama-cpp-python` installed it measures
perplexity and bits per byte on the evaluation text (tokenized by the file's own tokenizer, in
windows, as llama.cpp serves it) and greedy decode speed; without it, it says how to get it.
(A compressed-tensors folder needs nothing special: `compress.load` reads it through
transformers and the compressed-tensors package, the way transformers serves it.)
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from compress.errors import UserError


def bench_gguf(path: str | os.PathLike, *, text: str = "plays:test", max_eval_tokens: int = 4096, window: int = 512,
               prompt_tokens: int = 96, new_tokens: int = 32, threads: int | None = None) -> dict[str, Any]:
    """Perplexity, bits per byte and decode speed of a GGUF file through llama.cpp."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"bench: GGUF file {path} does not exist")
    try:
        from llama_cpp import Llama
    except ImportError:
        raise UserError(
            f"bench: {path.name} is a GGUF file, measured through llama.cpp: install llama-cpp-python in this environment "
            "(pip install llama-cpp-python; it compiles llama.cpp), or run benchmarks/peer_llamacpp.py, which builds it in its own venv"
        ) from None
    from compress.data.sources import load_text
    from compress.export.llamacpp_eval import greedy_decode_seconds, window_nll

    threads = threads or os.cpu_count() or 1
    llm = Llama(model_path=str(path), n_ctx=window, n_batch=window, n_ubatch=window, n_threads=threads, n_threads_batch=threads, logits_all=True, verbose=False)
    window = min(window, llm.n_ctx())
    ids = llm.tokenize(load_text(text).encode("utf-8"), add_bos=False)[:max_eval_tokens]
    nll, scored, scored_bytes = 0.0, 0, 0
    for start in range(0, max(len(ids) - 1, 0), window):
        chunk = ids[start : start + window]
        if len(chunk) < 2:
            break
        nll += window_nll(llm, chunk)
        scored += len(chunk) - 1
        scored_bytes += len(llm.detokenize(chunk[1:]))
    if not scored:
        raise UserError(f"bench: the evaluation text {text!r} gives fewer than 2 tokens")
    prompt = ids[:prompt_tokens]
    steps = max(1, min(new_tokens, window - len(prompt) - 1))
    seconds = greedy_decode_seconds(llm, prompt, steps)
    return {
        "model": path.stem,
        "variant": "gguf",
        "runtime": "llama.cpp (llama-cpp-python)",
        "device": "cpu",
        "threads": threads,
        "weight_bytes": path.stat().st_size,
        "eval_tokens": scored,
        "perplexity": math.exp(nll / scored),
        "bits_per_byte": nll / math.log(2) / max(scored_bytes, 1),
        "decode_ms_per_token": 1000 * seconds / steps,
    }
