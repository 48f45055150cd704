"""A training corpus = a train text and a validation text, split by a fixed, stated rule.

The pocket ladder (and the tokenizer it trains) read a `Corpus`. Two kinds exist:

- `plays` (the default): the embedded Shakespeare corpus split *by play* as fixed in
  `compress.data.plays` (34 train, 2 validation). The two test plays are never read here, so
  nothing trained from a Corpus can have seen them.
- any other source (a file, folder, glob or `hf:` dataset, see `compress.data.sources`):
  with 10 or more documents (files), every 10th document in sorted order (the 10th, 20th, ...)
  is validation; with fewer, the last 10% of the text, cut at a line break, is validation.

    >>> from compress.data.corpus import load_corpus
    >>> corpus = load_corpus("plays")
    >>> corpus.name, len(corpus.hash)
    ('plays', 64)
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

from compress.data.sources import DOCUMENT_SEPARATOR, load_documents
from compress.errors import UserError

VALIDATION_EVERY = 10  # with >= 10 documents, every 10th one is validation
VALIDATION_FRACTION = 0.1  # with fewer, this tail fraction of the text is validation


class Corpus:
    """Train and validation text plus a `fingerprint` that identifies them cheaply.

    The texts load on first use, so a cache lookup keyed by the fingerprint (a warm
    `ladder train`) does not parse the plays.
    """

    def __init__(self, name: str, split_rule: str, *, texts: tuple[str, str] | None = None,
                 loader: Callable[[], tuple[str, str]] | None = None, fingerprint: str | None = None):
        if texts is None and loader is None:
            raise ValueError("Corpus needs texts or a loader")
        self.name = name  # "plays" or the source string the user gave
        self.split_rule = split_rule  # one sentence a manifest can show
        self._texts = texts
        self._loader = loader
        self._fingerprint = fingerprint

    def __repr__(self) -> str:
        return f"Corpus(name={self.name!r}, split_rule={self.split_rule!r})"

    def _load(self) -> tuple[str, str]:
        if self._texts is None:
            self._texts = self._loader()
        return self._texts

    @property
    def train(self) -> str:
        return self._load()[0]

    @property
    def validation(self) -> str:
        return self._load()[1]

    @property
    def hash(self) -> str:
        """sha256 of both texts (what the manifest states)."""
        digest = hashlib.sha256()
        for part in ("train", self.train, "validation", self.validation):
            digest.update(part.encode("utf-8"))
            digest.update(b"\0")
        return digest.hexdigest()

    @property
    def fingerprint(self) -> str:
        """A stable identity of the texts that keys caches; for the plays, computed without parsing."""
        return self._fingerprint or self.hash

    def describe(self) -> dict:
        return {
            "name": self.name,
            "hash": self.hash,
            "split_rule": self.split_rule,
            "train_bytes": len(self.train.encode("utf-8")),
            "validation_bytes": len(self.validation.encode("utf-8")),
        }


def _plays_fingerprint() -> str:
    # The texts follow from the raw markdown of the train and validation plays and the parser.
    from compress.data import plays

    digest = hashlib.sha256(Path(plays.__file__).read_bytes())
    files = plays.play_files()
    for split in ("train", "validation"):
        for name in plays.split_names(split):
            digest.update(f"\0{split}:{name}\0".encode())
            digest.update(files[name].read_bytes())
    return digest.hexdigest()


def plays_corpus() -> Corpus:
    from compress.data import plays

    validation = ", ".join(plays.VALIDATION_PLAYS)
    return Corpus(
        "plays",
        (
            f"by play: train = {len(plays.split_names('train'))} plays, validation = {validation}; "
            f"the test plays ({', '.join(plays.TEST_PLAYS)}) are never read"
        ),
        loader=lambda: (plays.split_text("train"), plays.split_text("validation")),
        fingerprint=_plays_fingerprint(),
    )


def split_documents(name: str, documents: list[tuple[str, str]]) -> Corpus:
    """Apply the custom-corpus split rule to (name, text) documents."""
    texts = [text for _, text in documents if text.strip()]
    if len(texts) >= VALIDATION_EVERY:
        train = [t for i, t in enumerate(texts) if (i + 1) % VALIDATION_EVERY]
        validation = [t for i, t in enumerate(texts) if not (i + 1) % VALIDATION_EVERY]
        rule = f"by document: every {VALIDATION_EVERY}th of {len(texts)} documents (sorted) is validation"
        return Corpus(name, rule, texts=(DOCUMENT_SEPARATOR.join(train), DOCUMENT_SEPARATOR.join(validation)))
    text = DOCUMENT_SEPARATOR.join(texts)
    cut = int(len(text) * (1 - VALIDATION_FRACTION))
    line_break = text.find("\n", cut)
    if 0 <= line_break < len(text) - 1:
        cut = line_break + 1
    train, validation = text[:cut], text[cut:]
    if not train.strip() or not validation.strip():
        raise UserError(f"corpus {name!r} is too small to split into train and validation text; give it more text")
    rule = f"by fraction: the last {VALIDATION_FRACTION:.0%} of the text (cut at a line break) is validation"
    return Corpus(name, rule, texts=(train, validation))


def load_corpus(source: str | None = None) -> Corpus:
    """The corpus a ladder trains on: "plays" (default) or any text source.

        >>> from compress.data.corpus import load_corpus
        >>> load_corpus("plays").split_rule.startswith("by play")
        True
    """
    if source in (None, "", "plays"):
        return plays_corpus()
    if source.startswith("plays:"):
        raise UserError(f"corpus {source!r}: use 'plays' (split by play into train and validation); a single split cannot train a ladder")
    return split_documents(source, load_documents(source))
