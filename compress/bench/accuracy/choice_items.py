"""Multiple-choice items from the test plays: "what comes next?", with 4 options.

Two units of "next", both inside speeches and at least 1,000 characters into a play:

- `word` (default): the context ends after a word in the middle of a spoken line; the options
  are the true next word and 3 other words spoken in the same play (" morning:", with its
  leading space and punctuation, as lm-evaluation-harness writes continuations).
- `speech`: the context ends with a speaker's name line; the options are the true speech and 3
  other speeches of the same play, each 10–120 characters.

Why `word` is the default: measured on pocket-ladder members (14K–151K non-embedding params,
500 items each), next-speech acc stayed at chance (0.23–0.25) even when scored by mutual
information — models this small do not follow a dialogue — while next-word acc rose with size:
0.32, 0.35, 0.39, 0.44 (acc_norm 0.33 … 0.47). Next-speech is for much larger models.

Distractors and the answer's position come from a per-item RNG seeded by (seed, play, position),
and items from one seeded shuffle, so fewer items are a subset of more and every model and
tokenizer sees the same text. The true option is drawn from the same pool as the distractors,
so options are exchangeable and a model that knows nothing scores 25% in expectation.

    >>> items = build_items(500, seed=1234)
    >>> len(items), len(items[0].options), items == build_items(500, seed=1234)
    (500, 4, True)
    >>> items[0].options[items[0].label].startswith(" ")
    True
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from compress.errors import UserError

Unit = Literal["word", "speech"]
UNITS = ("word", "speech")
MIN_CHARS, MAX_CHARS = 10, 120  # speeches of one to three verse lines: cheap to score, still meaningful
MIN_OFFSET = 1000  # characters of play before an item: ≥ 128 tokens of context for any sane tokenizer


@dataclass(frozen=True)
class ChoiceItem:
    play: str
    position: int  # character offset in the play's text where the options would start
    options: tuple[str, str, str, str]
    label: int  # index of the true continuation in `options`

    def context(self, chars: int = MIN_OFFSET) -> str:
        """Up to `chars` characters of the play before the item."""
        from compress.data.plays import load_play

        return load_play(self.play).text[max(0, self.position - chars) : self.position]


def _spoken_lines(play):
    """(character offset, line) of every line inside a speech, in play order."""
    for start, text in _speeches(play):
        yield start, None  # marks the start of a speech
        offset = start
        for line in text.split("\n"):
            yield offset, line
            offset += len(line) + 1


@lru_cache(maxsize=4)
def candidates(unit: Unit) -> tuple[tuple[str, int, str], ...]:
    """(play, position, true continuation) for every usable item of the test plays."""
    from compress.data.plays import load_plays

    if unit not in UNITS:
        raise UserError(f"bench.choice_unit={unit!r}; allowed: {', '.join(UNITS)}")
    found = []
    for play in load_plays("test"):
        if unit == "speech":
            for speech_start, speech in _speeches(play):
                if MIN_CHARS <= len(speech) <= MAX_CHARS and speech_start >= MIN_OFFSET:
                    found.append((play.name, speech_start, speech))
            continue
        for offset, line in _spoken_lines(play):
            if line is None:
                continue
            column = 0
            for index, word in enumerate(line.split(" ")):
                if index >= 1 and word and offset + column - 1 >= MIN_OFFSET:
                    found.append((play.name, offset + column - 1, " " + word))  # position of the space
                column += len(word) + 1
    return tuple(found)


def _speeches(play):
    """(character offset, text) of every speech, found in the play's plain text in order."""
    cursor = 0
    for speech in play.speeches:
        where = play.text.find(f"{speech.speaker}\n{speech.text}", cursor)
        if where < 0:
            continue
        cursor = where + len(speech.speaker) + 1
        yield cursor, speech.text


def build_items(n_items: int = 500, seed: int = 1234, unit: Unit = "word") -> list[ChoiceItem]:
    """`n_items` items of `unit` drawn deterministically by `seed` from the test plays.

    Each item draws its 3 distractors as occurrences from its play (so frequent words are
    drawn as often as they are spoken, like the truth); an item whose 4 options are not all
    different is skipped rather than redrawn, which keeps the 4 options exchangeable: a blind
    model that favours frequent words gains nothing.
    """
    pool_items = candidates(unit)
    order = list(range(len(pool_items)))
    random.Random(seed).shuffle(order)
    spoken: dict[str, list[str]] = {}
    for play, _, text in pool_items:
        spoken.setdefault(play, []).append(text)
    chosen = []
    for index in order:
        play, position, true = pool_items[index]
        rng = random.Random(f"{seed}:{unit}:{play}:{position}")  # per item: independent of n_items
        occurrences = spoken[play]
        options = [true, *(occurrences[rng.randrange(len(occurrences))] for _ in range(3))]
        if len(set(options)) < 4:
            continue
        rng.shuffle(options)
        chosen.append(ChoiceItem(play, position, tuple(options), options.index(true)))
        if len(chosen) == n_items:
            return sorted(chosen, key=lambda item: (item.play, item.position))
    raise UserError(f"bench.choice_items={n_items}: the test plays give only {len(chosen)} {unit} items; use a smaller number")
