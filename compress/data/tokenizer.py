"""Byte-level BPE tokenizers trained on a corpus's *train* text, cached by corpus and size.

Byte-level means every UTF-8 string encodes and decodes back exactly (no unknown token), so
bits per byte computed from its tokens are exact. The result is a standard `tokenizer.json`
wrapped in `PreTrainedTokenizerFast`: `AutoTokenizer.from_pretrained(folder)` loads it.
Encoding with special tokens prepends `<|bos|>`, the way the pocket models were trained.

    >>> from compress.data.tokenizer import train_tokenizer
    >>> tok = train_tokenizer("to be or not to be, that is the question\\n" * 50, vocab_size=300)
    >>> tok.decode(tok("to be")["input_ids"], skip_special_tokens=True)
    'to be'
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from compress.cache import cache_dir
from compress.errors import UserError

BOS, EOS, PAD = "<|bos|>", "<|eos|>", "<|pad|>"
SPECIAL_TOKENS = (BOS, EOS, PAD)  # ids 0, 1, 2
MIN_VOCAB = 256 + len(SPECIAL_TOKENS)  # every byte, plus the special tokens
MAX_VOCAB = 65_536
KIND = "byte-level-bpe-v1"  # bump when training settings change, so caches do not mix

# A line break followed by a non-space character is always a pre-token boundary of the GPT-2
# byte-level regex, so pieces cut there encode exactly like the whole text, and much faster.
_PIECE_BOUNDARY = re.compile(r"(?<=\n)(?=\S)")


def text_pieces(text: str, group: int = 64) -> list[str]:
    """Cut text at line starts into pieces of `group` lines (exact for byte-level BPE)."""
    lines = _PIECE_BOUNDARY.split(text)
    return ["".join(lines[i : i + group]) for i in range(0, len(lines), group)]


def check_vocab_size(vocab_size: int) -> int:
    if not isinstance(vocab_size, int) or not MIN_VOCAB <= vocab_size <= MAX_VOCAB:
        raise UserError(f"vocab_size={vocab_size!r} is out of range; allowed: {MIN_VOCAB}..{MAX_VOCAB} (256 bytes + {len(SPECIAL_TOKENS)} special tokens at least)")
    return vocab_size


def _backend(vocab_size: int, text: str):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(text_pieces(text), trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, tokenizer.token_to_id(BOS))]
    )
    return tokenizer


def wrap(backend, model_max_length: int | None = None):
    """Wrap a `tokenizers.Tokenizer` as a transformers fast tokenizer with our special tokens."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        clean_up_tokenization_spaces=False,  # decoding must give back the exact text
        model_max_length=model_max_length or 1_000_000_000_000,
    )


def train_tokenizer(text: str, vocab_size: int = 1024):
    """Train a byte-level BPE tokenizer on `text`; returns a `PreTrainedTokenizerFast`.

        >>> from compress.data.tokenizer import train_tokenizer
        >>> train_tokenizer("hello world\\n" * 20, vocab_size=270).bos_token
        '<|bos|>'
    """
    check_vocab_size(vocab_size)
    if not text.strip():
        raise UserError("cannot train a tokenizer on empty text; give the corpus some text")
    return wrap(_backend(vocab_size, text))


def tokenizer_key(corpus_fingerprint: str, vocab_size: int) -> str:
    """Cache name of the tokenizer of a corpus (by its fingerprint) at one vocabulary size."""
    import tokenizers

    material = f"{KIND}|{vocab_size}|{corpus_fingerprint}|tokenizers-{tokenizers.__version__}"
    return f"bpe{vocab_size}-{hashlib.sha256(material.encode()).hexdigest()[:16]}"


def corpus_tokenizer(corpus, vocab_size: int = 1024):
    """The tokenizer for a `Corpus`: trained on `corpus.train` alone, cached by its hash.

    Returns (tokenizer, folder). Validation and test text never reach the trainer.

        >>> from compress.data.corpus import load_corpus       # doctest: +SKIP
        >>> tok, folder = corpus_tokenizer(load_corpus("plays"), 1024)   # doctest: +SKIP
    """
    from transformers import PreTrainedTokenizerFast

    check_vocab_size(vocab_size)
    folder = cache_dir("tokenizers") / tokenizer_key(corpus.fingerprint, vocab_size)
    if not (folder / "tokenizer.json").is_file():
        tokenizer = train_tokenizer(corpus.train, vocab_size)
        save_atomic(tokenizer, folder)
    return PreTrainedTokenizerFast.from_pretrained(str(folder)), folder


def save_atomic(tokenizer, folder: Path) -> None:
    """save_pretrained into a hidden sibling, then rename: readers never see half a tokenizer."""
    from compress.atomic import staged_dir

    try:
        with staged_dir(folder) as staging:
            tokenizer.save_pretrained(str(staging))
    except FileExistsError:
        if not (folder / "tokenizer.json").is_file():  # else another process won the race: same tokenizer
            raise


def encode(tokenizer, text: str) -> list[int]:
    """Token ids of `text` without special tokens, encoded piecewise (fast, same ids)."""
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    ids: list[int] = []
    for encoding in backend.encode_batch(text_pieces(text), add_special_tokens=False):
        ids.extend(encoding.ids)
    return ids
