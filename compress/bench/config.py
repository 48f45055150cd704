"""What a benchmark measures and how: the `bench:` section of a recipe, and `scalecompress bench` flags.

    >>> from compress.bench.config import BenchConfig
    >>> config = BenchConfig(tasks=["perplexity"], max_eval_tokens=2048)
    >>> len(config.scenario_id())
    10
    >>> config.scenario_id() == BenchConfig(tasks=["perplexity"], max_eval_tokens=2048, eval_batch_size=8).scenario_id()
    True
"""

from __future__ import annotations

import difflib
import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from compress.errors import UserError

BUILTIN_TASKS = ("perplexity", "choice", "latency")
DEVICES = ("cpu", "cuda")

# Fields that change no measured number: left out of the scenario hash so that, e.g., a bigger
# evaluation batch or a different accuracy gate reuses the records already in the store.
_NOT_IN_SCENARIO = {"device", "eval_batch_size", "choice_batch_items", "max_ppl_increase"}


class BenchConfig(BaseModel):
    """Benchmark settings. Defaults fit a ~5M-parameter model in under 2 minutes on 2 CPU cores."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    device: Literal["cpu", "cuda"] = Field(
        "cpu", description="Where the model runs: 'cpu' or 'cuda' (the model is moved there for the run and back after)."
    )
    tasks: list[str] = Field(
        default_factory=lambda: list(BUILTIN_TASKS),
        description=(
            "What to run. Built in: 'perplexity' (token perplexity + bits per byte), 'choice' "
            "(4-way next-speech multiple choice), 'latency' (prefill/decode timing). Any other "
            "name is an lm-evaluation-harness task (needs `pip install lm-eval` and its data). "
            "Memory and energy are always measured."
        ),
    )
    text_source: str = Field(
        "plays:test",
        description="Text for perplexity and latency prompts: 'plays:test', a file, a glob or 'hf:...'.",
    )
    max_eval_tokens: int = Field(
        16384, ge=2, description="Cap on tokens fed to the perplexity evaluation (keeps 1B models on CPU in minutes)."
    )
    window: int = Field(
        512, ge=2, description="Perplexity window in tokens (non-overlapping); capped at the model's max positions."
    )
    eval_batch_size: int = Field(4, ge=1, description="Windows per forward pass in the perplexity evaluation.")
    choice_items: int = Field(
        500, ge=1, description="Multiple-choice items (4 options each) drawn from the test plays."
    )
    choice_unit: Literal["word", "speech"] = Field(
        "word",
        description=(
            "What the multiple-choice items ask for: the next 'word' of a spoken line (the pocket "
            "ladder scores above chance) or the next 'speech' (at chance below ~100M params)."
        ),
    )
    choice_context_tokens: int = Field(
        64,
        ge=1,
        description="Tokens of the play before each item that the model sees (64 + a 200-character option fits 128 positions).",
    )
    choice_seed: int = Field(1234, description="Seed that picks the items and their distractors.")
    choice_batch_items: int = Field(16, ge=1, description="Items per forward pass (each item is 4 sequences).")
    prompt_tokens: int = Field(
        96, ge=1, description="Prompt length P for prefill latency (96 + 32 new tokens fit a 128-position model)."
    )
    new_tokens: int = Field(32, ge=2, description="Tokens G generated greedily (KV cache) for decode latency.")
    batch_size: int = Field(1, ge=1, description="Sequences per latency run (1 = single-stream).")
    repeats: int = Field(5, ge=1, description="Timed latency runs; medians and p90s are taken over them.")
    warmup: int = Field(1, ge=0, description="Untimed latency runs first (allocator, caches, lazy init).")
    threads: int | None = Field(
        None, ge=1, description="torch CPU threads during the benchmark; None keeps the process setting."
    )
    cpu_watts_per_core: float = Field(
        10.0,
        gt=0,
        description="Watts per busy core for the energy estimate used where no RAPL/NVML counter is readable.",
    )
    lm_eval_limit: int | None = Field(
        None, ge=1, description="Examples per lm-evaluation-harness task (None = the whole task)."
    )
    max_ppl_increase: float | None = Field(
        None,
        ge=0,
        description="Accuracy gate for recipes: fail when perplexity rises more than this fraction over dense (0.05 = +5%).",
    )

    @field_validator("tasks")
    @classmethod
    def _check_tasks(cls, tasks: list[str]) -> list[str]:
        cleaned = []
        for task in tasks:
            name = task.strip()
            if not name:
                raise ValueError(f"empty task name; allowed: {', '.join(BUILTIN_TASKS)} or an lm-eval task name")
            close = difflib.get_close_matches(name, BUILTIN_TASKS, n=1, cutoff=0.75)
            if name not in BUILTIN_TASKS and close:  # a misspelt built-in, not an lm-eval task
                raise ValueError(f"unknown task {name!r}; did you mean {close[0]!r}? (built in: {', '.join(BUILTIN_TASKS)}; other names are lm-eval tasks)")
            if name not in cleaned:
                cleaned.append(name)
        return cleaned

    @property
    def lm_eval_tasks(self) -> list[str]:
        """Tasks that are not built in, in the order given."""
        return [task for task in self.tasks if task not in BUILTIN_TASKS]

    def scenario_id(self) -> str:
        """Short stable hash of every setting that changes a measured number."""
        settings = self.model_dump(exclude=_NOT_IN_SCENARIO)
        blob = json.dumps(settings, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:10]


def as_config(config: BenchConfig | dict | None, **overrides) -> BenchConfig:
    """A `BenchConfig` from a config, a dict (e.g. a recipe's `bench:` section) or None.

    Bad fields raise `UserError` naming the field, the value and what is allowed.

        >>> as_config({"repeats": 3}, device="cpu").repeats
        3
    """
    if config is None:
        data: dict = {}
    elif isinstance(config, BenchConfig):
        data = config.model_dump()
    elif isinstance(config, dict):
        data = dict(config)
    else:
        raise UserError(f"bench config must be a BenchConfig or a dict, got {type(config).__name__}")
    data.update({key: value for key, value in overrides.items() if value is not None})
    try:
        return BenchConfig(**data)
    except ValidationError as error:
        raise UserError(_describe(error)) from None


def _describe(error: ValidationError) -> str:
    from compress.errors import describe_validation_error

    return "bench: " + describe_validation_error(error, BenchConfig)
