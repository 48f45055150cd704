"""compress/export/llamacpp_eval.py: the llama.cpp measurements `scalecompress bench FILE.gguf` and
benchmarks/peer_llamacpp_worker.py share. Checked here against torch on a stand-in for
`llama_cpp.Llama` (the real one lives in the peer venv), and loaded by path in a fresh process
with nothing but numpy, as the worker does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from compress.export.llamacpp_eval import greedy_decode_seconds, window_nll

MODULE = Path(__file__).resolve().parents[2] / "compress" / "export" / "llamacpp_eval.py"


class FakeLlama:
    """The part of llama_cpp.Llama the measurements use: reset, eval, scores, n_tokens."""

    def __init__(self, vocab: int = 11, seed: int = 0):
        self.table = np.random.default_rng(seed).normal(size=(vocab, vocab)) * 3  # next-token logits by current token
        self.reset()

    def reset(self):
        self.tokens: list[int] = []

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)

    @property
    def scores(self) -> np.ndarray:
        return self.table[self.tokens]

    def eval(self, tokens):
        self.tokens += list(tokens)


def test_window_nll_is_torch_cross_entropy_on_the_same_logits():
    llm, window = FakeLlama(), [3, 1, 4, 1, 5, 9, 2, 6]
    expected = torch.nn.functional.cross_entropy(torch.tensor(llm.table[window[:-1]]), torch.tensor(window[1:]), reduction="sum")
    assert abs(window_nll(llm, window) - float(expected)) < 1e-9


def test_greedy_decode_feeds_back_the_argmax():
    llm = FakeLlama()
    assert greedy_decode_seconds(llm, [2, 7], 5) >= 0 and llm.n_tokens == 7
    for previous, chosen in zip(llm.tokens[1:-1], llm.tokens[2:]):
        assert chosen == int(np.argmax(llm.table[previous]))


def test_loads_by_path_without_compress_or_torch():
    code = (
        "import importlib.util, sys; "
        f"spec = importlib.util.spec_from_file_location('m', {str(MODULE)!r}); m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); "
        "print(sorted(n for n in ('compress', 'torch') if n in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr
