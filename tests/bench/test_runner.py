import sys
import types

import pytest
import torch

from compress.bench import (
    BenchConfig,
    ResultsStore,
    bench,
    bench_checkpoint,
    format_record,
)
from compress.bench.results import validate_record
from compress.errors import UserError

JSON_KEYS = {
    "perplexity", "bits_per_byte", "acc", "acc_norm", "prefill_ms", "decode_ms_per_token", "tokens_per_s",
    "peak_rss_bytes", "weight_bytes", "energy_j", "energy_source",
}


def check_complete(record, config):
    assert JSON_KEYS <= set(record)
    assert record["scenario"] == BenchConfig(**config).scenario_id()
    assert record["perplexity"] > 1 and 0 < record["bits_per_byte"] < 20
    assert record["eval_tokens"] > 0 and record["eval_window"] == 128
    assert 0 <= record["acc"] <= 1 and 0 <= record["acc_norm"] <= 1 and record["choice_items"] == 40
    assert 0 < record["prefill_ms"] <= record["prefill_ms_p90"]
    assert 0 < record["decode_ms_per_token"] <= record["decode_ms_per_token_p90"]
    assert record["tokens_per_s"] == pytest.approx(1000 / record["decode_ms_per_token"])
    assert record["ttft_ms"] >= record["prefill_ms"] * 0.5
    assert (record["batch_size"], record["prompt_tokens"], record["new_tokens"]) == (1, 16, 4)
    assert record["weight_bytes"] > 0 and record["peak_rss_bytes"] > record["weight_bytes"]
    assert record["energy_source"] in {"nvml", "rapl", "estimate"} and record["energy_method"]
    assert record["energy_j"] > 0 and record["energy_j_per_token"] > 0
    assert set(record["energy_phases"]) == {"accuracy", "latency"}
    assert record["env"]["torch"] == torch.__version__ and record["threads"] >= 1
    assert record["timestamp"].endswith("+00:00") and record["schema"] == 1
    validate_record(record)  # the store accepts it as is


def test_bench_tiny_llama_end_to_end(llama, tokenizer, small, one_thread):
    record = bench(llama, tokenizer, small, model_name="tiny-llama", progress=False)
    check_complete(record, small)
    assert (record["model"], record["variant"], record["method"], record["source_model"]) == ("tiny-llama", "dense", "dense", "tiny-llama")
    assert record["params"] == sum(p.numel() for p in llama.parameters())
    table = format_record(record)
    assert "perplexity" in table and "decode per token" in table and record["energy_method"] in table


def test_bench_tiny_gpt2_end_to_end_with_record_fields(gpt2, tokenizer, small, one_thread):
    record = bench(gpt2, tokenizer, small, model_name="tiny-gpt2", variant="rtn-w4-g64", progress=False,
                   family="pocket", method="rtn", bits=4, group_size=64, params=123)
    check_complete(record, small)
    assert (record["variant"], record["method"], record["bits"], record["family"], record["params"]) == ("rtn-w4-g64", "rtn", 4, "pocket", 123)
    assert record["source_model"] is None


def test_on_this_machine_energy_is_an_estimate_with_its_method(llama, tokenizer, small, one_thread):
    from pathlib import Path

    if Path("/sys/class/powercap").exists():
        pytest.skip("this machine has a powercap tree; the estimate fallback is covered in test_trackers")
    record = bench(llama, tokenizer, {**small, "tasks": ["latency"]}, progress=False)
    assert record["energy_source"] == "estimate"
    assert record["energy_method"].startswith("estimate: process CPU seconds × 10 W/core")
    assert record["perplexity"] is None and record["acc"] is None  # tasks not asked for stay null


def test_bench_leaves_the_model_as_it_found_it(llama, tokenizer, small, one_thread):
    llama.train()
    threads = torch.get_num_threads()
    before = {name: tensor.clone() for name, tensor in llama.state_dict().items()}
    bench(llama, tokenizer, {**small, "tasks": ["perplexity"], "threads": 2}, progress=False)
    assert llama.training and torch.get_num_threads() == threads
    assert all(torch.equal(before[name], tensor) for name, tensor in llama.state_dict().items())


def test_short_context_models_get_cut_windows_and_prompts_with_notes(make_llama, tokenizer, small, one_thread):
    model = make_llama(positions=64)
    record = bench(model, tokenizer, {**small, "prompt_tokens": 100, "choice_context_tokens": 64}, progress=False)
    assert record["eval_window"] == 64 and record["prompt_tokens"] == 60
    assert any("window 64" in note for note in record["notes"])
    assert any("latency prompt cut to 60" in note for note in record["notes"])


def test_an_encoder_is_skipped_with_a_note_not_a_crash(tokenizer, small, one_thread):
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    encoder = BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)).eval()
    record = bench(encoder, tokenizer, small, progress=False)
    assert record["perplexity"] is None and record["acc"] is None and record["decode_ms_per_token"] is None
    assert record["prefill_ms"] > 0 and record["weight_bytes"] > 0
    assert any("not a causal LM" in note for note in record["notes"])


def test_cuda_without_a_gpu_is_a_user_error(llama, tokenizer):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(UserError, match="no CUDA device"):
        bench(llama, tokenizer, {"device": "cuda"}, progress=False)


def test_lm_eval_tasks_without_the_harness_are_a_one_line_user_error(llama, tokenizer, monkeypatch):
    monkeypatch.setitem(sys.modules, "lm_eval", None)  # as if not installed
    with pytest.raises(UserError) as caught:
        bench(llama, tokenizer, {"tasks": ["hellaswag"]}, progress=False)
    message = str(caught.value)
    assert "\n" not in message and "pip install" in message and "lm-eval" in message


def test_lm_eval_tasks_run_on_the_in_memory_model(llama, tokenizer, monkeypatch, one_thread):
    seen = {}

    class FakeHFLM:
        def __init__(self, pretrained, tokenizer, batch_size):
            seen.update(model=pretrained, tokenizer=tokenizer)

    def simple_evaluate(model, tasks, num_fewshot, limit, log_samples):
        seen.update(tasks=tasks, limit=limit)
        return {"results": {"arc_easy": {"alias": "arc_easy", "acc,none": 0.31, "acc_stderr,none": 0.01, "acc_norm,none": 0.29}}}

    harness = types.ModuleType("lm_eval")
    harness.simple_evaluate = simple_evaluate
    models = types.ModuleType("lm_eval.models")
    huggingface = types.ModuleType("lm_eval.models.huggingface")
    huggingface.HFLM = FakeHFLM
    monkeypatch.setitem(sys.modules, "lm_eval", harness)
    monkeypatch.setitem(sys.modules, "lm_eval.models", models)
    monkeypatch.setitem(sys.modules, "lm_eval.models.huggingface", huggingface)
    record = bench(llama, tokenizer, {"tasks": ["arc_easy"], "lm_eval_limit": 10}, progress=False)
    assert seen["model"] is llama and seen["tokenizer"] is tokenizer
    assert seen["tasks"] == ["arc_easy"] and seen["limit"] == 10
    assert record["lm_eval"] == {"arc_easy": {"acc": 0.31, "acc_norm": 0.29}}


def test_bench_checkpoint_tracks_the_load_and_appends_to_a_store(llama, tokenizer, small, tmp_path, one_thread):
    from compress.checkpoint import save

    folder = save(llama, tmp_path / "tiny-llama", tokenizer=tokenizer)
    record = bench_checkpoint(str(folder), {**small, "tasks": ["perplexity"]}, progress=False)
    assert record["model"] == "tiny-llama" and record["path"] == str(folder) and record["variant"] == "dense"
    assert record["load_peak_rss_bytes"] > 0 and set(record["energy_phases"]) == {"load", "accuracy"}
    store = ResultsStore(tmp_path / "results.jsonl")
    store.append(record)
    assert store.has("tiny-llama", "dense", "cpu", BenchConfig(**{**small, "tasks": ["perplexity"]}).scenario_id())


def test_rtn_w4_g128_weight_bytes_are_small_and_match_the_saved_file(tokenizer, make_llama, tmp_path, one_thread):
    rtn = pytest.importorskip("compress.algorithms.quantization.rtn")
    from safetensors import safe_open

    import compress
    from compress.checkpoint import save

    model = make_llama(vocab=len(tokenizer), hidden=256, layers=2)
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear) and m is not model.lm_head)
    assert linear / sum(p.numel() for p in model.parameters()) >= 0.9
    dense = bench(model, tokenizer, {"tasks": ["perplexity"], "max_eval_tokens": 256, "window": 128}, progress=False)
    _, reports = compress.apply(model, [rtn.RTNConfig(bits=4, group_size=128)], progress=False)
    packed = bench(model, tokenizer, {"tasks": ["perplexity"], "max_eval_tokens": 256, "window": 128}, progress=False,
                   variant="rtn-w4-g128", params=dense["params"])
    assert packed["weight_bytes"] <= 0.20 * dense["weight_bytes"]
    assert packed["params"] == dense["params"]
    assert packed["perplexity"] == pytest.approx(dense["perplexity"], rel=0.2)  # 4-bit on a random model: close
    manifest = {"source_model": "tiny-dense", "passes": [report.to_dict() for report in reports]}
    folder = save(model, tmp_path / "rtn", tokenizer=tokenizer, manifest=manifest)
    with safe_open(str(folder / "model.safetensors"), "pt") as handle:
        stored = sum(handle.get_tensor(key).numel() * handle.get_tensor(key).element_size() for key in handle.keys())  # noqa: SIM118 - safe_open is not a dict
    # The saved file is compressed-tensors' pack-quantized layout, whose zero points are packed to 4 bits
    # (fp16 in memory): at 2 groups per row that is ~2% of a layer's bytes.
    assert packed["weight_bytes"] == pytest.approx(stored, rel=0.03)
    reloaded = bench_checkpoint(str(folder), {"tasks": ["perplexity"], "max_eval_tokens": 256, "window": 128}, progress=False)
    assert (reloaded["variant"], reloaded["method"], reloaded["bits"], reloaded["group_size"]) == ("rtn-w4-g128", "rtn", 4, 128)
    assert reloaded["source_model"] == "tiny-dense" and reloaded["params"] == dense["params"]
    assert reloaded["weight_bytes"] == packed["weight_bytes"]
    assert reloaded["perplexity"] == pytest.approx(packed["perplexity"], rel=1e-4)
