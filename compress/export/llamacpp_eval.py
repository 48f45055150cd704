"""llama.cpp measurements shared by `scalecompress bench FILE.gguf` (compress/export/served.py)
and benchmarks/peer_llamacpp_worker.py. The worker runs inside the peer venv, which has
llama-cpp-python and numpy but not this package, and loads this file by path: so it imports
numpy only, never `compress`.

Perplexity is scored on token ids exactly as the torch side does: the logits at position i
score token i+1 within one window (no BOS added, no tokenizer involved).
"""

import time

import numpy as np


def window_nll(llm, window: list[int]) -> float:
    """Summed negative log-likelihood of window[1:] given its prefix (`llm` built with logits_all=True)."""
    llm.reset()
    llm.eval(window)
    scores = np.asarray(llm.scores[: len(window)], dtype=np.float64)
    top = scores.max(axis=1, keepdims=True)
    log_probs = scores - (top + np.log(np.exp(scores - top).sum(axis=1, keepdims=True)))
    return -float(log_probs[np.arange(len(window) - 1), window[1:]].sum())


def greedy_decode_seconds(llm, prompt: list[int], new_tokens: int) -> float:
    """Seconds to decode `new_tokens` greedily after `prompt`, one token per step (KV cache)."""
    llm.reset()
    llm.eval(prompt)
    token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
    started = time.perf_counter()
    for _ in range(new_tokens):
        llm.eval([token])
        token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
    return time.perf_counter() - started
