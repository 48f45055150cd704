"""`recommend --materialize`: the pick is rebuilt from its recorded passes and exported; the JSON
names the passes, the artifact and the best dense model within the same budget."""

from __future__ import annotations

import json

import pytest

import compress
from compress.cli import main
from compress.model_info import weight_bytes
from compress.passes import RTNConfig
from tests.conftest import tiny_llama

pytest.importorskip("compressed_tensors")


def test_materialize_rebuilds_the_pick_exactly_and_exports_it(tmp_path, capsys):
    dense = compress.save(tiny_llama(tie=False), tmp_path / "dense")
    model, _ = compress.apply(tiny_llama(tie=False), [RTNConfig(bits=4, group_size=32)], progress=False)
    rows = [
        {"variant": "dense", "passes": [], "bits_per_byte": 3.0, "weight_bytes": weight_bytes(tiny_llama(tie=False))},
        {"variant": "rtn-w4-g32", "passes": [{"pass": "rtn", "bits": 4, "group_size": 32}], "bits_per_byte": 3.01, "weight_bytes": weight_bytes(model)},
    ]
    results = tmp_path / "results.jsonl"
    base = {"model": "tiny", "device": "cpu", "scenario": "s", "family": "toy", "source_model": "tiny", "params": 1, "non_embedding_params": 1, "path": str(dense)}
    results.write_text("".join(json.dumps({**base, **row}) + "\n" for row in rows))
    budget = str(rows[1]["weight_bytes"] + 10)
    code = main(["recommend", str(results), "--max-weight-bytes", budget, "--materialize", str(tmp_path / "pick"), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    document = json.loads(captured.out)
    assert document["pick"]["variant"] == "rtn-w4-g32" and document["pick"]["passes"][0]["pass"] == "rtn"
    assert document["rebuilt"]["matches_record"] is True
    assert document["artifact"]["format"] == "compressed-tensors"
    config = json.loads((tmp_path / "pick" / "config.json").read_text())
    assert config["quantization_config"]["format"] == "pack-quantized"
    assert document["best_dense_within_budget"] is None  # the dense model does not fit the budget


def test_a_pick_compressed_tensors_cannot_hold_is_written_packed_not_dense(tmp_path, capsys):
    # 3-bit codes: compressed-tensors refuses them; a dense copy would break the byte budget the
    # pick was chosen for, so `auto` writes scalecompress's own packed checkpoint and says so
    import torch

    dense = compress.save(tiny_llama(tie=False), tmp_path / "dense")
    passes = [{"pass": "rtn", "bits": 3, "group_size": 32}]
    model, _ = compress.apply(tiny_llama(tie=False), [RTNConfig(bits=3, group_size=32)], progress=False)
    record = {"model": "tiny", "device": "cpu", "scenario": "s", "family": "toy", "source_model": "tiny", "params": 1, "non_embedding_params": 1,
              "path": str(dense), "variant": "rtn-w3-g32", "passes": passes, "bits_per_byte": 3.02, "weight_bytes": weight_bytes(model)}
    results = tmp_path / "results.jsonl"
    results.write_text(json.dumps(record) + "\n")
    code = main(["recommend", str(results), "--max-weight-bytes", str(record["weight_bytes"] + 10), "--materialize", str(tmp_path / "pick"), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    artifact = json.loads(captured.out)["artifact"]
    assert artifact["format"] == "scalecompress" and "3-bit" in artifact["note"] and "--format hf" in artifact["note"]
    loaded, _, _ = compress.load(tmp_path / "pick")
    assert weight_bytes(loaded) == record["weight_bytes"]  # the bytes the budget was met with
    ids = torch.randint(0, 128, (1, 12))
    with torch.no_grad():
        assert torch.equal(loaded(ids).logits, model(ids).logits)
