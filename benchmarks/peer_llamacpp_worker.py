"""The llama.cpp side of benchmarks/peer_llamacpp.py; runs inside the peer venv (llama_cpp + numpy
only, never `compress`). Input: a JSON job file; output: one JSON line per GGUF file.

Perplexity is computed on the token ids given (no tokenizer involved, no BOS added), exactly as
the torch side does: the logits at position i score token i+1 within each window.
"""

import json
import sys
import time

import numpy as np
from llama_cpp import Llama


def perplexity(path: str, windows: list[list[int]], threads: int) -> float:
    context = max(len(w) for w in windows)
    llm = Llama(model_path=path, n_ctx=context, n_batch=context, n_ubatch=context, n_threads=threads, n_threads_batch=threads, logits_all=True, verbose=False)
    nll, count = 0.0, 0
    for window in windows:
        llm.reset()
        llm.eval(window)
        scores = np.asarray(llm.scores[: len(window)], dtype=np.float64)
        top = scores.max(axis=1, keepdims=True)
        log_probs = scores - (top + np.log(np.exp(scores - top).sum(axis=1, keepdims=True)))
        nll -= float(log_probs[np.arange(len(window) - 1), window[1:]].sum())
        count += len(window) - 1
    return float(np.exp(nll / count))


def decode(path: str, prompt: list[int], new_tokens: int, threads: int, repeats: int) -> float:
    llm = Llama(model_path=path, n_ctx=len(prompt) + new_tokens + 8, n_threads=threads, n_threads_batch=threads, verbose=False)
    rates = []
    for _ in range(repeats):
        llm.reset()
        llm.eval(prompt)
        token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        started = time.perf_counter()
        for _ in range(new_tokens):
            llm.eval([token])
            token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        rates.append(new_tokens / (time.perf_counter() - started))
    return float(np.median(rates))


def main() -> None:
    job = json.loads(open(sys.argv[1]).read())
    for name, path in job["models"].items():
        result = {"name": name, "perplexity": perplexity(path, job["windows"], job["threads"])}
        result["decode_tokens_per_s"] = decode(path, job["prompt"], job["new_tokens"], job["threads"], job["repeats"])
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
