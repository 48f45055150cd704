import json

import pytest

from compress.cli import main
from compress.data.plays import split_text

MICRO = ["--sizes", "d8-l1,d16-l1,d16-l2", "--steps", "2", "--vocab-size", "300", "--no-progress"]


def run(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def corpus(tmp_path, monkeypatch):
    monkeypatch.setenv("SCALECOMPRESS_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "mine.txt"
    path.write_text(split_text("validation")[:30_000])
    return str(path)


def test_train_json_prints_the_manifest_then_show_reads_the_cache(corpus, capsys):
    code, out, _ = run(capsys, "ladder", "train", "--corpus", corpus, *MICRO, "--json")
    assert code == 0
    manifest = json.loads(out)
    assert [m["name"] for m in manifest["members"]] == ["pocket-d8-l1", "pocket-d16-l1", "pocket-d16-l2"]
    for member in manifest["members"]:
        assert {"name", "path", "params", "non_embedding_params", "tokens", "train_loss", "val_loss", "val_bits_per_byte", "embedding_share"} <= set(member)
    assert manifest["corpus"]["name"] == corpus and manifest["seed"] == 0 and "token_budget_rule" in manifest
    code, out, _ = run(capsys, "ladder", "show", "pocket", "--corpus", corpus, *MICRO[:-1], "--json")
    assert code == 0 and json.loads(out)["members"] == manifest["members"]
    code, out, _ = run(capsys, "ladder", "train", "--corpus", corpus, *MICRO)
    assert code == 0 and "pocket-d16-l2" in out and "val bits/byte" in out and "token budget" in out


def test_show_lists_ladders_and_hub_members(capsys):
    code, out, _ = run(capsys, "ladder", "show", "--json")
    assert code == 0
    names = {entry["name"]: entry for entry in json.loads(out)["ladders"]}
    assert {"pythia", "gpt2", "qwen2.5", "smollm2", "pocket"} <= set(names)
    assert names["pocket"]["kind"] == "trained" and names["pythia"]["members"] == 5
    code, out, _ = run(capsys, "ladder", "show", "gpt2")
    assert code == 0 and "gpt2-xl" in out


def test_untrained_ladder_and_bad_input_exit_2(corpus, capsys):
    code, _, err = run(capsys, "ladder", "show", "pocket", "--corpus", corpus)
    assert code == 2 and "ladder train" in err
    code, _, err = run(capsys, "ladder", "train", "--corpus", corpus, "--sizes", "d32", "--no-progress")
    assert code == 2 and "d<width>-l<layers>" in err
    code, _, err = run(capsys, "ladder", "train", "--corpus", corpus, "--vocab-size", "10", "--no-progress")
    assert code == 2 and "vocab_size" in err
    code, _, err = run(capsys, "ladder", "show", "nope")
    assert code == 2 and "allowed" in err


def test_help_teaches(capsys):
    code, out, _ = run(capsys, "ladder", "train", "--help")
    assert code == 0 and "--corpus" in out and "d<width>-l<layers>" in out


def test_train_refuses_a_hub_ladder(capsys):
    code, _, err = run(capsys, "ladder", "train", "pythia", "--no-progress")
    assert code == 2 and "nothing to train" in err
