import json

import pytest

from compress.cli import main

SMALL_FLAGS = [
    "--max-eval-tokens", "512", "--window", "64", "--choice-items", "20", "--prompt-tokens", "16",
    "--new-tokens", "4", "--repeats", "2", "--warmup", "1", "--threads", "1", "--no-progress",
]
JSON_KEYS = {
    "perplexity", "bits_per_byte", "acc", "acc_norm", "prefill_ms", "decode_ms_per_token", "tokens_per_s",
    "peak_rss_bytes", "weight_bytes", "energy_j", "energy_source",
}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from compress.checkpoint import save
    from compress.data.plays import split_text

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator([split_text("validation")[:60_000]], trainers.BpeTrainer(vocab_size=320, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=320, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128))
    return save(model, tmp_path_factory.mktemp("models") / "tiny-llama", tokenizer=tokenizer)


def run(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_json_prints_one_object_with_the_promised_keys(checkpoint, capsys):
    code, out, err = run(capsys, "bench", checkpoint, "--json", *SMALL_FLAGS)
    assert code == 0, err
    record = json.loads(out)  # stdout is exactly one JSON object
    assert JSON_KEYS <= set(record)
    assert record["model"] == "tiny-llama" and record["device"] == "cpu" and record["threads"] == 1
    assert record["perplexity"] > 1 and record["decode_ms_per_token"] > 0
    assert record["energy_source"] == "estimate" or record["energy_source"] in {"rapl", "nvml"}
    assert record["load_peak_rss_bytes"] > 0


def test_table_output_and_results_store_resume(checkpoint, tmp_path, capsys):
    results = tmp_path / "results.jsonl"
    code, out, err = run(capsys, "bench", checkpoint, "--tasks", "perplexity,latency", "--results", results, *SMALL_FLAGS)
    assert code == 0, err
    assert "[accuracy]" in out and "perplexity" in out and "[energy]" in out and "method" in out
    assert "choice" in out  # shown as '-' when not run
    lines = results.read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["acc"] is None
    code, out, err = run(capsys, "bench", checkpoint, "--tasks", "perplexity,latency", "--results", results,
                         "--skip-existing", "--json", *SMALL_FLAGS)
    assert code == 0 and "already in" in err
    assert json.loads(out)["timestamp"] == json.loads(lines[0])["timestamp"]
    assert len(results.read_text().splitlines()) == 1


def test_bad_flags_exit_2_with_one_line(checkpoint, tmp_path, capsys):
    code, _, err = run(capsys, "bench", checkpoint, "--device", "gpu", "--no-progress")
    assert code == 2 and err.count("\n") == 1 and "allowed: auto, cpu, cuda, cuda:N" in err
    code, _, err = run(capsys, "bench", tmp_path / "missing", "--no-progress")
    assert code == 2 and "does not exist" in err
    config = tmp_path / "bench.yaml"
    config.write_text("bench:\n  windw: 3\n")
    code, _, err = run(capsys, "bench", checkpoint, "--config", config, "--no-progress")
    assert code == 2 and "windw" in err and "window" in err
