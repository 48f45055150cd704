"""The results record and its append-only JSONL store.

One JSON object per line, one line per (model, variant, device, scenario). An append writes
the line unbuffered, then fsyncs; an interrupted append leaves at worst one partial line, and the
next append starts a new line after it. `read_jsonl` is the one reader of these files: it skips
a partial or damaged line wherever it sits (with a warning naming the file and line), so a sweep
killed at any moment resumes, and `report`/`recommend` keep working. A sweep resumes by asking
`has(...)` before each benchmark.

    >>> import tempfile, os
    >>> store = ResultsStore(os.path.join(tempfile.mkdtemp(), "results.jsonl"))
    >>> store.append({"model": "m", "variant": "dense", "device": "cpu", "scenario": "abc"})
    >>> store.has("m", "dense", "cpu", "abc"), len(store.records())
    (True, 1)
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from compress.errors import UserError, describe_validation_error
from compress.faults import fault_point

SCHEMA_VERSION = 1  # the one definition; the runner stamps records with it


class ResultsWarning(UserWarning):
    """A line of a results file was skipped (partial or damaged)."""


class BenchRecord(BaseModel):
    """One benchmark result, flat; a missing measurement is None (null in JSON)."""

    # Records are data shared with other stages and future versions: unknown keys are kept, not
    # rejected, so a newer writer's records still load here.
    model_config = ConfigDict(extra="allow")

    model: str = Field(..., description="Model name, e.g. 'pocket-d128-l4' or 'EleutherAI/pythia-70m'.")
    variant: str = Field("dense", description="'dense' for the uncompressed model, else e.g. 'rtn-w4-g64'.")
    device: Literal["cpu", "cuda"] = Field("cpu", description="Where it ran.")
    scenario: str = Field(..., description="Short hash of the bench settings (BenchConfig.scenario_id()).")
    family: str | None = Field(None, description="Ladder name, if the model belongs to one.")
    source_model: str | None = Field(None, description="Dense model it came from; equals model for dense.")
    method: str | None = Field(None, description="'dense', 'rtn', 'magnitude', ...")
    bits: int | None = Field(None, description="Weight bits, for quantized variants.")
    group_size: int | None = Field(None, description="Quantization group size.")
    sparsity: float | None = Field(None, description="Fraction of zero weights, 0..1.")
    params: int | None = Field(None, description="Total parameters as in the dense architecture.")
    non_embedding_params: int | None = Field(None, description="Parameters outside embeddings.")
    path: str | None = Field(None, description="Checkpoint path, if loaded from disk.")
    content_sha256: str | None = Field(None, description="SHA-256 of the checkpoint's weights file (its identity; from compression.json).")
    non_finite: list[str] = Field(default_factory=list, description="Measurements that came out NaN or infinite (stored as null).")
    passes: list[dict] = Field(default_factory=list, description="Pass configs applied; [] for dense.")
    loss: float | None = Field(None, description="Mean NLL per predicted token (nats).")
    perplexity: float | None = Field(None, description="exp(loss), GPTQ-style windows.")
    bits_per_byte: float | None = Field(None, description="Total NLL in bits / UTF-8 bytes of the predicted text.")
    acc: float | None = Field(None, description="Multiple-choice accuracy.")
    acc_norm: float | None = Field(None, description="Multiple-choice accuracy, log-likelihood per byte.")
    eval_tokens: int | None = Field(None, description="Predicted tokens in the perplexity evaluation.")
    prefill_ms: float | None = Field(None, description="Median prefill ms.")
    prefill_ms_p90: float | None = Field(None, description="p90 prefill ms.")
    ttft_ms: float | None = Field(None, description="Median time to first token, ms.")
    decode_ms_per_token: float | None = Field(None, description="Median ms per decode step.")
    decode_ms_per_token_p10: float | None = Field(None, description="p10 ms per decode step (with p90: the spread across repeats).")
    decode_ms_per_token_p90: float | None = Field(None, description="p90 ms per decode step.")
    tokens_per_s: float | None = Field(None, description="batch_size × 1000 / decode_ms_per_token.")
    batch_size: int | None = Field(None, description="Sequences per latency run.")
    prompt_tokens: int | None = Field(None, description="Prompt length for prefill.")
    new_tokens: int | None = Field(None, description="Tokens generated per latency run.")
    threads: int | None = Field(None, description="torch CPU threads.")
    weight_bytes: int | None = Field(None, description="Bytes of weights as stored (packed formats packed).")
    peak_rss_bytes: int | None = Field(None, description="Peak RSS while benchmarking (after load).")
    load_peak_rss_bytes: int | None = Field(None, description="Peak RSS while loading the model.")
    cuda_max_allocated_bytes: int | None = Field(None, description="torch.cuda.max_memory_allocated while benchmarking.")
    energy_j: float | None = Field(None, description="Joules over the accuracy and latency phases.")
    energy_j_per_token: float | None = Field(None, description="Latency-phase joules per generated token.")
    energy_source: Literal["nvml", "rapl", "estimate"] | None = Field(None, description="Where energy figures come from.")
    energy_method: str | None = Field(None, description="How energy was measured or estimated.")
    env: dict[str, Any] = Field(default_factory=dict, description="Versions, CPU, GPU, threads, git revision, host.")
    timestamp: str | None = Field(None, description="ISO-8601 UTC time of the run.")
    schema_: int = Field(SCHEMA_VERSION, alias="schema", description="Record schema version.")


def validate_record(record: dict) -> dict:
    """The record checked against the schema and returned as a plain dict (JSON-safe)."""
    try:
        parsed = BenchRecord.model_validate(record)
    except ValidationError as error:
        raise UserError(f"results record: {describe_validation_error(error, BenchRecord)}") from None
    data = parsed.model_dump(by_alias=True)
    # JSON has no NaN/inf: a diverged model's perplexity is stored as null, and named in
    # `non_finite` so that the accuracy gate and readers can say why it is missing.
    bad = [key for key, value in data.items() if isinstance(value, float) and not math.isfinite(value)]
    data["non_finite"] = sorted(set(data.get("non_finite") or []) | set(bad))
    from compress.atomic import finite_or_none

    return finite_or_none(data)


def record_key(record: dict) -> tuple[str, str, str, str]:
    """(model, variant, device, scenario): what makes two records the same measurement."""
    return (record.get("model"), record.get("variant"), record.get("device"), record.get("scenario"))


class ResultsStore:
    """Append-only JSONL file of bench records; safe to interrupt, resumable.

        >>> # store = ResultsStore("results.jsonl")
        >>> # if not store.has(model, variant, device, scenario): store.append(compress.bench(...))
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def append(self, record: dict) -> None:
        """Validate and append one record as one line (write, flush, fsync)."""
        data = (json.dumps(validate_record(record), sort_keys=False, allow_nan=False) + "\n").encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "ab+", buffering=0) as handle:  # unbuffered: each write reaches the file
            handle.seek(0, os.SEEK_END)
            if handle.tell() > 0:
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":  # an interrupted append left a partial line: start afresh
                    data = b"\n" + data
            half = len(data) // 2
            handle.write(data[:half])
            fault_point("results-append")  # the kill test dies here, leaving half a line
            handle.write(data[half:])
            os.fsync(handle.fileno())

    def records(self) -> list[dict]:
        """Every record in file order; partial or damaged lines skipped with a warning."""
        return read_jsonl(self.path) if self.path.exists() else []

    def keys(self) -> set[tuple[str, str, str, str]]:
        """The (model, variant, device, scenario) of every record."""
        return {record_key(record) for record in self.records()}

    def has(self, model: str | tuple, variant: str = "dense", device: str = "cpu", scenario: str | None = None) -> bool:
        """True when a record for this measurement exists (any scenario when scenario is None).

        `model` may also be a whole key, as `record_key` returns it.
        """
        if isinstance(model, (tuple, list)):
            model, variant, device, scenario = model
        for key in self.keys():
            if key[:3] == (model, variant, device) and (scenario is None or key[3] == scenario):
                return True
        return False


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """The records (JSON objects) of one results file, in file order.

    A line that is not a JSON object (cut short by a kill, or damaged) is skipped with a
    `ResultsWarning` naming the file and line; the records around it are kept.

        >>> import tempfile, pathlib, warnings
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "results.jsonl"
        >>> _ = path.write_text('{"a": 1}\\n{"a": \\n{"a": 2}\\n')
        >>> with warnings.catch_warnings(record=True):
        ...     [r["a"] for r in read_jsonl(path)]
        [1, 2]
    """
    path = Path(path)
    raw = path.read_bytes()
    records = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            record = None
        if not isinstance(record, dict):
            warnings.warn(f"{path}:{number}: skipped a partial or damaged record (an interrupted run, or an edit); the other lines are kept", ResultsWarning, stacklevel=2)
            continue
        records.append(record)
    return records
