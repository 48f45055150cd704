import time

import numpy as np
import pytest

from compress.bench.trackers import EnergyTracker, LatencyTracker, MemoryTracker
from compress.bench.trackers import energy as energy_module
from compress.bench.trackers.latency import percentile


def test_percentile_matches_numpy():
    values = [5.0, 1.0, 9.0, 3.0, 7.0, 2.0]
    for q in (0, 50, 90, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_latency_tracker_times_each_block_per_series():
    tracker = LatencyTracker("cpu")
    for _ in range(3):
        with tracker.track("sleep"):
            time.sleep(0.02)
    with tracker.track("fast"):
        pass
    result = tracker.result()
    assert set(result) == {"sleep", "fast"}
    assert result["sleep"]["count"] == 3
    assert 15 <= result["sleep"]["median_ms"] <= 500
    assert result["sleep"]["p90_ms"] >= result["sleep"]["median_ms"]
    assert result["fast"]["median_ms"] < result["sleep"]["median_ms"]


def test_memory_tracker_sees_an_allocation_in_its_phase():
    tracker = MemoryTracker("cpu")
    with tracker.track("small"):
        pass
    with tracker.track("big"):
        block = np.ones(64 << 20, dtype=np.uint8)  # 64 MiB, touched
        del block
    result = tracker.result()
    assert result["big"]["cuda_max_allocated_bytes"] is None
    assert result["big"]["peak_rss_bytes"] >= result["small"]["peak_rss_bytes"] + (48 << 20)


def test_energy_without_counters_is_a_named_estimate(tmp_path):
    tracker = EnergyTracker("cpu", cpu_watts_per_core=20.0, rapl_root=tmp_path / "none")
    with tracker.track("work"):
        deadline = time.process_time() + 0.2
        while time.process_time() < deadline:
            pass
    result = tracker.result()
    assert result["source"] == "estimate"
    assert "CPU seconds × 20 W/core" in result["method"] and "cpu_watts_per_core" in result["method"]
    assert "no RAPL counters" in result["method"]
    assert 20.0 * 0.15 <= result["joules"]["work"] <= 20.0 * 2.0  # /proc counts CPU time in 10 ms ticks


def _fake_rapl(root, zones):
    for name, (energy, wrap) in zones.items():
        zone = root / name
        zone.mkdir(parents=True)
        (zone / "energy_uj").write_text(f"{energy}\n")
        (zone / "max_energy_range_uj").write_text(f"{wrap}\n")
        (zone / "name").write_text("package-0\n")


def test_rapl_sums_packages_and_handles_wrap_around(tmp_path, monkeypatch):
    _fake_rapl(tmp_path, {
        "intel-rapl:0": (999_000_000, 1_000_000_000),  # about to wrap
        "intel-rapl:1": (5_000_000, 1_000_000_000),
        "intel-rapl:0:0": (123, 1_000_000_000),  # a sub-zone (core): inside package 0, not added again
    })
    monkeypatch.setattr(energy_module, "RAPL_ROOT", tmp_path)
    tracker = EnergyTracker("cpu", rapl_root=energy_module.RAPL_ROOT)
    assert tracker.source == "rapl" and "2 zone(s)" in tracker.method
    with tracker.track("phase"):
        (tmp_path / "intel-rapl:0" / "energy_uj").write_text("1000000\n")  # wrapped: +2 J across the wrap
        (tmp_path / "intel-rapl:1" / "energy_uj").write_text("8000000\n")  # +3 J
        (tmp_path / "intel-rapl:0:0" / "energy_uj").write_text("999999999\n")
    assert tracker.result()["joules"]["phase"] == pytest.approx(5.0)
    assert tracker.result()["source"] == "rapl"


def test_rapl_permission_error_falls_back_with_an_explanation(tmp_path, monkeypatch):
    _fake_rapl(tmp_path, {"intel-rapl:0": (1, 10)})

    def denied(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(energy_module.RaplCounter, "read", denied)
    counter, why = energy_module.find_rapl(tmp_path)
    assert counter is None and "root only" in why and "chmod" in why
    tracker = EnergyTracker("cpu", rapl_root=tmp_path)
    assert tracker.source == "estimate" and "root only" in tracker.method


def test_cuda_without_nvml_is_an_estimate_saying_gpu_is_excluded(monkeypatch):
    monkeypatch.setattr(energy_module, "find_nvml", lambda: (None, "NVML energy counter unavailable (test)"))
    tracker = EnergyTracker("cuda")  # choosing the source touches no CUDA device
    assert tracker.source == "estimate"
    assert "GPU not included" in tracker.method and "NVML energy counter unavailable" in tracker.method


def test_find_nvml_reports_why_not_without_a_driver():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present; tests/bench/test_gpu.py covers NVML")
    counter, why = energy_module.find_nvml()
    assert counter is None and why


def test_every_phase_result_carries_a_source(tmp_path):
    tracker = EnergyTracker("cpu", rapl_root=tmp_path)
    with tracker.track("a"):
        pass
    with tracker.track("b"):
        pass
    result = tracker.result()
    assert set(result["joules"]) == {"a", "b"} and result["source"] in {"nvml", "rapl", "estimate"} and result["method"]
