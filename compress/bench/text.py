"""Evaluation text and its tokens, with the UTF-8 bytes each token covers (for bits per byte).

    >>> from compress.bench.text import load_eval_text
    >>> load_eval_text("plays:test").startswith("Macbeth")
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def load_eval_text(source: str = "plays:test") -> str:
    """Text from 'plays:<split>', a file, a folder, a glob or 'hf:...' (see compress.data.sources)."""
    from compress.data.sources import load_text

    return load_text(source)


@dataclass(frozen=True)
class Encoded:
    ids: np.ndarray  # int64 token ids, no special tokens added
    token_bytes: np.ndarray  # UTF-8 bytes of text each token accounts for (gaps go to the next token)
    exact_bytes: bool  # False when the tokenizer has no offsets and bytes come from decoding tokens


def encode(tokenizer, text: str) -> Encoded:
    """Token ids of `text` without special tokens, and the bytes each token covers.

    Token i covers the text between the end of token i-1 and its own end, so the bytes of any
    run of tokens add up to the bytes of the text they span.
    """
    try:
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        offsets = encoded["offset_mapping"]
    except (NotImplementedError, TypeError, ValueError, KeyError):
        encoded, offsets = None, None
    if offsets is not None:
        ids = np.asarray(encoded["input_ids"], dtype=np.int64)
        byte_at = np.zeros(len(text) + 1, dtype=np.int64)  # byte offset of each character position
        byte_at[1:] = np.cumsum([len(ch.encode("utf-8")) for ch in text])
        ends = np.maximum.accumulate(np.asarray([end for _, end in offsets], dtype=np.int64)) if len(offsets) else np.zeros(0, np.int64)
        byte_ends = byte_at[ends]
        token_bytes = np.diff(np.concatenate([[0], byte_ends]))
        return Encoded(ids, token_bytes, True)
    ids = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
    pieces = [len(tokenizer.decode([i]).encode("utf-8")) for i in ids]
    return Encoded(np.asarray(ids, dtype=np.int64), np.asarray(pieces, dtype=np.int64), False)


def bos_prefix(tokenizer) -> int | None:
    """The BOS id when the tokenizer puts one in front of text by default (LLaMA-style), else None.

    GPT-2-style tokenizers add nothing, and their models are evaluated without a prefix.
    """
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return None
    try:
        ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    except (TypeError, ValueError):
        return None
    return bos if ids and ids[0] == bos else None
