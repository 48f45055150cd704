"""The llama.cpp side of benchmarks/peer_llamacpp.py; runs inside the peer venv (llama_cpp + numpy
only, never `compress`). Input: a JSON job file; output: one JSON line per GGUF file.

The measurements are compress/export/llamacpp_eval.py's (the ones `scalecompress bench FILE.gguf`
uses), loaded by path: that file imports numpy only.
"""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
from llama_cpp import Llama

_spec = importlib.util.spec_from_file_location("llamacpp_eval", Path(__file__).resolve().parents[1] / "compress" / "export" / "llamacpp_eval.py")
llamacpp_eval = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(llamacpp_eval)


def perplexity(path: str, windows: list[list[int]], threads: int) -> float:
    context = max(len(w) for w in windows)
    llm = Llama(model_path=path, n_ctx=context, n_batch=context, n_ubatch=context, n_threads=threads, n_threads_batch=threads, logits_all=True, verbose=False)
    nll = sum(llamacpp_eval.window_nll(llm, window) for window in windows)
    return float(np.exp(nll / sum(len(w) - 1 for w in windows)))


def decode(path: str, prompt: list[int], new_tokens: int, threads: int, repeats: int) -> float:
    llm = Llama(model_path=path, n_ctx=len(prompt) + new_tokens + 8, n_threads=threads, n_threads_batch=threads, verbose=False)
    rates = [new_tokens / llamacpp_eval.greedy_decode_seconds(llm, prompt, new_tokens) for _ in range(repeats)]
    return float(np.median(rates))


def main() -> None:
    job = json.loads(Path(sys.argv[1]).read_text())
    for name, path in job["models"].items():
        result = {"name": name, "perplexity": perplexity(path, job["windows"], job["threads"])}
        result["decode_tokens_per_s"] = decode(path, job["prompt"], job["new_tokens"], job["threads"], job["repeats"])
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
