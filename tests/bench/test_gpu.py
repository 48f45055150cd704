"""GPU paths of the benchmark: CUDA events, CUDA peak memory, NVML energy, a bench on cuda."""

import pytest
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def _busy(seconds: float) -> None:
    import time

    a = torch.randn(4096, 4096, device="cuda")
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        a = (a @ a).clamp_(-1, 1)
        torch.cuda.synchronize()


def test_latency_tracker_uses_cuda_events():
    from compress.bench.trackers import LatencyTracker

    tracker = LatencyTracker("cuda")
    a = torch.randn(2048, 2048, device="cuda")
    for _ in range(5):
        with tracker.track("matmul"):
            a @ a
    result = tracker.result()["matmul"]
    assert result["count"] == 5 and 0 < result["median_ms"] <= result["p90_ms"] < 1000
    assert tracker._cuda_events["matmul"]  # events, not host timers


def test_memory_tracker_reports_cuda_peak_per_phase():
    from compress.bench.trackers import MemoryTracker

    tracker = MemoryTracker("cuda")
    with tracker.track("big"):
        block = torch.empty(256 << 20, dtype=torch.uint8, device="cuda")
        del block
    with tracker.track("small"):
        block = torch.empty(1 << 20, dtype=torch.uint8, device="cuda")
        del block
    result = tracker.result()
    assert result["big"]["cuda_max_allocated_bytes"] >= 256 << 20
    assert result["small"]["cuda_max_allocated_bytes"] < 256 << 20  # the peak was reset between phases


def test_energy_on_cuda_comes_from_nvml_when_the_board_reports_it():
    from compress.bench.trackers import EnergyTracker

    tracker = EnergyTracker("cuda")
    with tracker.track("work"):
        _busy(1.5)
    result = tracker.result()
    assert result["source"] in {"nvml", "estimate"} and result["method"]
    if result["source"] == "nvml":
        joules = result["joules"]["work"]
        assert joules > 1.0 and joules < 1.5 * 1500  # 1.5 s of work, under an H200's ~1 kW ceiling
    else:  # e.g. a MIG slice, where NVML has no energy counter: the method must say why
        assert "NVML" in result["method"] and "GPU not included" in result["method"]


def test_bench_on_cuda_end_to_end_and_model_put_back(make_llama, tokenizer, small):
    from compress.bench import bench

    model = make_llama(hidden=64, layers=2)
    record = bench(model, tokenizer, {**small, "device": "cuda"}, model_name="tiny-cuda", progress=False)
    assert record["device"] == "cuda" and record["env"]["gpu"]
    assert record["cuda_max_allocated_bytes"] > 0 and record["perplexity"] > 1
    assert 0 < record["decode_ms_per_token"] <= record["decode_ms_per_token_p90"]
    assert record["energy_source"] in {"nvml", "estimate"} and record["energy_j"] is not None
    assert next(model.parameters()).device.type == "cpu"


def test_cuda_and_cpu_agree_on_accuracy(make_llama, tokenizer, small):
    from compress.bench import bench

    model = make_llama(hidden=64, layers=2)
    settings = {**small, "tasks": ["perplexity", "choice"]}
    on_cpu = bench(model, tokenizer, settings, progress=False)
    on_cuda = bench(model, tokenizer, {**settings, "device": "cuda"}, progress=False)
    assert on_cuda["loss"] == pytest.approx(on_cpu["loss"], rel=1e-3)
    assert abs(on_cuda["acc"] - on_cpu["acc"]) <= 0.05  # near-ties may flip on different kernels
