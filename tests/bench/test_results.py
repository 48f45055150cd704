import json
import math

import pytest

from compress.bench.results import (
    BenchRecord,
    ResultsStore,
    record_key,
    validate_record,
)
from compress.errors import UserError


def record(model="m", variant="dense", device="cpu", scenario="s1", **fields):
    return {"model": model, "variant": variant, "device": device, "scenario": scenario, **fields}


def test_append_then_read_back_in_order(tmp_path):
    store = ResultsStore(tmp_path / "deep" / "results.jsonl")
    assert store.records() == [] and not store.has("m")
    store.append(record(perplexity=12.5, energy_source="estimate"))
    store.append(record(variant="rtn-w4-g128", perplexity=13.0))
    rows = store.records()
    assert [r["variant"] for r in rows] == ["dense", "rtn-w4-g128"]
    assert rows[0]["perplexity"] == 12.5 and rows[0]["schema"] == 1 and rows[0]["passes"] == []
    assert store.has("m", "dense", "cpu", "s1") and store.has("m", "rtn-w4-g128", "cpu")
    assert not store.has("m", "dense", "cuda", "s1") and not store.has("m", "dense", "cpu", "s2")
    assert store.has(record_key(rows[1]))
    assert (tmp_path / "deep" / "results.jsonl").read_text().count("\n") == 2


def test_interrupted_last_line_is_skipped_and_next_append_starts_a_new_line(tmp_path):
    path = tmp_path / "results.jsonl"
    store = ResultsStore(path)
    store.append(record(model="a"))
    with open(path, "a") as handle:
        handle.write('{"model": "b", "variant": "dense", "dev')  # killed mid-write
    with pytest.warns(UserWarning, match="partial or damaged record"):
        assert [r["model"] for r in store.records()] == ["a"]
    store.append(record(model="c"))
    with pytest.warns(UserWarning, match="partial or damaged record"):
        assert [r["model"] for r in store.records()] == ["a", "c"]
    with pytest.warns(UserWarning, match="partial or damaged record"):
        assert store.has("c") and not store.has("b")


def test_garbage_in_the_middle_is_skipped_with_a_warning_naming_the_line(tmp_path):
    # One reader, tolerant anywhere: a damaged line must not make every later report fail.
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps(record(model="a")) + "\nnot json at all\n" + json.dumps(record(model="b")) + "\n")
    with pytest.warns(UserWarning, match="results.jsonl:2"):
        assert [r["model"] for r in ResultsStore(path).records()] == ["a", "b"]


def test_records_are_validated_and_json_safe(tmp_path):
    store = ResultsStore(tmp_path / "r.jsonl")
    store.append(record(perplexity=math.inf, loss=math.nan, eval_window=128))
    row = store.records()[0]
    assert row["perplexity"] is None and row["loss"] is None and row["eval_window"] == 128
    with pytest.raises(UserError, match="energy_source"):
        store.append(record(energy_source="guess"))
    with pytest.raises(UserError, match="device"):
        validate_record(record(device="tpu"))


def test_schema_lists_every_common_key():
    keys = set(BenchRecord.model_fields) - {"schema_"} | {"schema"}
    expected = {
        "model", "variant", "device", "scenario", "family", "source_model", "method", "bits", "group_size",
        "sparsity", "params", "non_embedding_params", "path", "passes", "loss", "perplexity", "bits_per_byte",
        "acc", "acc_norm", "eval_tokens", "prefill_ms", "prefill_ms_p90", "ttft_ms", "decode_ms_per_token",
        "decode_ms_per_token_p90", "tokens_per_s", "batch_size", "prompt_tokens", "new_tokens", "threads",
        "weight_bytes", "peak_rss_bytes", "load_peak_rss_bytes", "cuda_max_allocated_bytes", "energy_j",
        "energy_j_per_token", "energy_source", "energy_method", "env", "timestamp", "schema",
    }
    assert expected <= keys
