"""The roofline of decoding (issue 14): bytes read per token, the measured bandwidth, the fraction."""

import pytest
import torch
import transformers

from compress.bench.env import capture_env, cpu_flags
from compress.bench.kernels import kernel_counts
from compress.bench.roofline import bytes_read_per_token, cpu_read_bandwidth, cuda_bandwidth, roofline
from compress.model_info import weight_bytes
from tests.conftest import tiny_gpt2, tiny_llama


def test_tied_head_reads_the_whole_table_once():
    model = tiny_llama(vocab_size=128, hidden=64, tie=True)
    assert bytes_read_per_token(model) == weight_bytes(model)


def test_untied_embedding_is_read_one_row_per_token():
    model = tiny_llama(vocab_size=128, hidden=64, tie=False)
    table = model.model.embed_tokens.weight
    assert bytes_read_per_token(model) == weight_bytes(model) - table.numel() * 4 + 64 * 4


def test_gpt2_position_table_is_one_row_too():
    model = tiny_gpt2(vocab_size=128, hidden=64)  # tied token table; positions (256 x 64) read one row
    assert bytes_read_per_token(model) == weight_bytes(model) - 256 * 64 * 4 + 64 * 4


def test_limit_and_fraction_follow_from_bytes_and_bandwidth():
    model = torch.nn.Sequential(torch.nn.Linear(1000, 1000, bias=False))
    out = roofline(model, 2.0, {"bytes_per_s": 4e9, "method": "test"})
    assert out["bytes_read_per_token"] == 4_000_000
    assert out["bandwidth_limit_ms_per_token"] == pytest.approx(1.0)
    assert out["bandwidth_fraction"] == pytest.approx(0.5)
    assert roofline(model, 2.0, None)["bandwidth_fraction"] is None


def test_cpu_bandwidth_is_measured_at_the_asked_threads_and_cuda_skips_without_a_gpu():
    measured = cpu_read_bandwidth(threads=1)
    assert 1e8 < measured["bytes_per_s"] < 1e13 and "1 threads" in measured["method"]
    if not torch.cuda.is_available():
        assert cuda_bandwidth() is None


def test_env_records_the_vector_extensions():
    env = capture_env()
    assert env["cpu_flags"] == cpu_flags() and isinstance(env["cpu_flags"], list)
    if "avx2" in open("/proc/cpuinfo").read():
        assert "avx2" in env["cpu_flags"]


def test_kernel_choice_is_counted_per_phase():
    class Packed(torch.nn.Module):
        def kernel_for(self, rows):
            return "int4-gemv" if rows <= 16 else "dequant-gemm"

    model = torch.nn.Sequential(Packed(), Packed(), torch.nn.Linear(2, 2))
    assert kernel_counts(model, prefill_rows=96) == {"prefill": {"dequant-gemm": 2}, "decode": {"int4-gemv": 2}}
    assert kernel_counts(torch.nn.Linear(2, 2), prefill_rows=96) is None


def test_bench_prints_the_roofline_of_its_decode(llama, tokenizer, one_thread):
    from compress.bench import bench
    from compress.bench.report import format_record

    model = llama
    settings = {"tasks": ["latency"], "prompt_tokens": 8, "new_tokens": 4, "repeats": 1, "warmup": 0}
    record = bench(model, tokenizer, settings, model_name="tiny", progress=False)
    assert record["bandwidth_fraction"] == pytest.approx(record["bandwidth_limit_ms_per_token"] / record["decode_ms_per_token"])
    assert record["env"]["read_bandwidth"]["bytes_per_s"] > 0 and "cpu_flags" in record["env"]
    text = format_record(record)
    assert "bandwidth limit (decode)" in text and "of it reached" in text and "one row per token" in text
