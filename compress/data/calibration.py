"""Calibration data: N windows of L tokens drawn deterministically by seed from a text source.

GPTQ, AWQ, SparseGPT, Wanda and SmoothQuant all calibrate on random windows of training text
(GPTQ: 128 windows of 2048 tokens). The windows come from the train split by default; the held
-out test plays are refused, so a compressed model is never tuned on the text it is scored on.

    >>> from compress.data.calibration import calibration_batches        # doctest: +SKIP
    >>> batch = calibration_batches(tokenizer, n_samples=8, seq_len=64, seed=0)   # doctest: +SKIP
    >>> batch.shape                                                           # doctest: +SKIP
    torch.Size([8, 64])
"""

from __future__ import annotations

from compress.data.sources import load_text
from compress.errors import UserError

DEFAULT_SOURCE = "plays:train"
_FORBIDDEN = {"plays:test": "the test plays", "plays:all": "every play, the test plays included"}
_CHUNK_CHARS = 32_768  # tokenized in chunks cut at blank lines: fast, and no length warnings


def _chunks(text: str) -> list[str]:
    chunks, start = [], 0
    while start < len(text):
        end = start + _CHUNK_CHARS
        if end < len(text):
            cut = text.rfind("\n\n", start, end)
            end = cut + 2 if cut > start else end
        chunks.append(text[start:end])
        start = end
    return chunks


def token_stream(tokenizer, text: str) -> list[int]:
    """All token ids of `text`, no special tokens; works with any Hugging Face tokenizer."""
    ids: list[int] = []
    for row in tokenizer(_chunks(text), add_special_tokens=False)["input_ids"]:
        ids.extend(row)
    return ids


def check_source(source: str) -> str:
    if source in _FORBIDDEN:
        raise UserError(
            f"calibration source {source!r} would draw from {_FORBIDDEN[source]}, which are held out for scoring; "
            "use plays:train (default), plays:validation, or your own text"
        )
    return source


def calibration_batches(tokenizer, n_samples: int = 128, seq_len: int = 512, seed: int = 0, source: str = DEFAULT_SOURCE):
    """Draw `n_samples` windows of `seq_len` tokens from `source` -> LongTensor[n_samples, seq_len].

    The same tokenizer, source and seed always give the same windows. `source` is any text
    source of `compress.data.sources` except the held-out test plays.

        >>> from compress.data.calibration import calibration_batches          # doctest: +SKIP
        >>> calibration_batches(tok, n_samples=4, seq_len=32, seed=1).dtype     # doctest: +SKIP
        torch.int64
    """
    import torch

    if not isinstance(n_samples, int) or n_samples < 1:
        raise UserError(f"calibration n_samples={n_samples!r} must be a positive integer, e.g. 128")
    if not isinstance(seq_len, int) or seq_len < 2:
        raise UserError(f"calibration seq_len={seq_len!r} must be an integer >= 2, e.g. 512")
    ids = token_stream(tokenizer, load_text(check_source(source)))
    if len(ids) < seq_len:
        raise UserError(f"calibration source {source!r} has {len(ids)} tokens, fewer than seq_len={seq_len}; use a shorter seq_len or more text")
    stream = torch.tensor(ids, dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, len(ids) - seq_len + 1, (n_samples,), generator=generator)
    return stream[starts[:, None] + torch.arange(seq_len)]
