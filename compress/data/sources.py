"""Text sources by name: the embedded plays, local files, folders, globs, Hugging Face datasets.

A *source* is one string, so that recipes, the CLI and Python calls all name data the same way:

    plays:<split>                          the embedded corpus: train, validation, test or all
    path/to/file.txt                       one UTF-8 text file
    path/to/folder                         every text file below it (TEXT_SUFFIXES), sorted
    'path/**/*.txt'                        a glob (quote it in the shell), sorted
    hf:<dataset>[/<config>]:<split>[:<column>]
                                           a Hugging Face dataset; <dataset> is `name` or
                                           `owner/name`, a third segment is the config
                                           (hf:Salesforce/wikitext/wikitext-2-raw-v1:test);
                                           the column defaults to "text"

    >>> from compress.data.sources import load_text
    >>> len(load_text("plays:validation")) > 100_000
    True
"""

from __future__ import annotations

import glob as globlib
import os
from dataclasses import dataclass
from pathlib import Path

from compress.errors import ModelLoadError, UserError

# Files a folder source reads; anything else needs an explicit glob (binary files are common
# in data folders and would fail UTF-8 decoding with a less helpful message).
TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".rst", ".text", ".tex", ".org")
DOCUMENT_SEPARATOR = "\n\n"
SOURCE_FORMS = "plays:<split>, a file, a folder, a glob, or hf:<dataset>[/<config>]:<split>[:<column>]"


@dataclass(frozen=True)
class HFSource:
    dataset: str
    config: str | None
    split: str
    column: str


def is_glob(source: str) -> bool:
    return any(char in source for char in "*?[")


def parse_hf(source: str) -> HFSource:
    """Split `hf:<dataset>[/<config>]:<split>[:<column>]` into its parts."""
    parts = source[len("hf:") :].split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise UserError(
            f"bad Hugging Face source {source!r}; write hf:<dataset>[/<config>]:<split>[:<column>], "
            "e.g. hf:Salesforce/wikitext/wikitext-2-raw-v1:test"
        )
    segments = parts[0].split("/")
    if len(segments) > 3:
        raise UserError(f"bad dataset {parts[0]!r} in {source!r}; use name, owner/name or owner/name/config")
    dataset = "/".join(segments[:2])
    config = segments[2] if len(segments) == 3 else None
    return HFSource(dataset=dataset, config=config, split=parts[1], column=parts[2] if len(parts) == 3 else "text")


def resolve_files(source: str) -> list[Path]:
    """The files a file, folder or glob source names, in a stable (sorted) order."""
    path = Path(source).expanduser()
    if is_glob(source):
        files = sorted(Path(p) for p in globlib.glob(os.path.expanduser(source), recursive=True) if Path(p).is_file())
        if not files:
            raise UserError(f"glob {source!r} matches no files; check the pattern (quote it in the shell)")
        return files
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
        if not files:
            raise UserError(f"folder {source!r} holds no text files ({', '.join(TEXT_SUFFIXES)}); pass a glob for other names")
        return files
    raise UserError(f"text source {source!r} is not a file, folder or glob that exists; allowed forms: {SOURCE_FORMS}")


def read_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise UserError(f"{path} is not UTF-8 text ({error.reason} at byte {error.start}); convert it or leave it out") from error
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror}") from error


def load_hf_text(spec: HFSource) -> str:
    """Rows of one column of a Hugging Face dataset split, joined by blank lines."""
    try:
        import datasets
    except ImportError as error:
        raise UserError("hf: sources need the 'datasets' package: pip install datasets") from error
    name = spec.dataset + (f"/{spec.config}" if spec.config else "")
    try:
        table = datasets.load_dataset(spec.dataset, spec.config, split=spec.split)
    except Exception as error:  # noqa: BLE001 - datasets raises many types; the user needs one line
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1"
        hint = "the hub is switched off (HF_HUB_OFFLINE=1) and it is not in the local cache" if offline else "check the name, split and network"
        raise ModelLoadError(f"cannot load dataset {name!r} split {spec.split!r}: {first_line[:200]} ({hint}); or pass a local text file instead") from error
    if spec.column not in table.column_names:
        raise UserError(f"dataset {name!r} has no column {spec.column!r}; allowed: {', '.join(table.column_names)}")
    return DOCUMENT_SEPARATOR.join(str(row) for row in table[spec.column] if row)


def load_documents(source: str) -> list[tuple[str, str]]:
    """(name, text) per document of a source: a play, a file, or one block for a dataset split."""
    from compress.data import plays

    if source == "plays":
        raise UserError("name the split of the embedded corpus: plays:train, plays:validation, plays:test or plays:all")
    if source.startswith("plays:"):
        return [(play.name, play.text) for play in plays.load_plays(source[len("plays:") :])]
    if source.startswith("hf:"):
        return [(source, load_hf_text(parse_hf(source)))]
    return [(str(path), read_file(path)) for path in resolve_files(source)]


def load_text(source: str) -> str:
    """All text of a source as one string, documents joined by a blank line.

        >>> from compress.data.sources import load_text
        >>> from compress.data.plays import split_text
        >>> load_text("plays:validation") == split_text("validation")
        True
    """
    if not isinstance(source, str) or not source:
        raise UserError(f"text source must be a non-empty string; allowed forms: {SOURCE_FORMS}")
    return DOCUMENT_SEPARATOR.join(text for _, text in load_documents(source))
