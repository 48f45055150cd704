"""Wall-clock latency per named series, with CUDA events on GPU so kernels are really finished.

    >>> from compress.bench.trackers.latency import LatencyTracker
    >>> tracker = LatencyTracker("cpu")
    >>> for _ in range(3):
    ...     with tracker.track("step"):
    ...         _ = sum(range(1000))
    >>> tracker.result()["step"]["count"]
    3
"""

from __future__ import annotations

import statistics
import time
from contextlib import contextmanager


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100), as numpy's default."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class LatencyTracker:
    """Times each `with track(series):` block; `result()` gives median/p90/mean per series in ms.

    On CUDA the block is bracketed by CUDA events and read after one final synchronize, so a
    decode loop is not stalled by a host sync per token and still times finished kernels.
    """

    def __init__(self, device: str = "cpu"):
        self.device = device
        self._cpu_ms: dict[str, list[float]] = {}
        self._cuda_events: dict[str, list[tuple]] = {}

    @contextmanager
    def track(self, series: str = "main"):
        if self.device == "cuda":
            import torch

            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            yield
            end.record()
            self._cuda_events.setdefault(series, []).append((start, end))
        else:
            began = time.perf_counter_ns()
            yield
            self._cpu_ms.setdefault(series, []).append((time.perf_counter_ns() - began) / 1e6)

    def samples(self, series: str) -> list[float]:
        """All timings of one series in ms, in the order they were taken."""
        if self._cuda_events.get(series):
            import torch

            torch.cuda.synchronize()
            return [start.elapsed_time(end) for start, end in self._cuda_events[series]]
        return list(self._cpu_ms.get(series, []))

    def result(self) -> dict[str, dict[str, float]]:
        """{series: {"median_ms", "p10_ms", "p90_ms", "mean_ms", "count"}} for every series seen."""
        out = {}
        for series in sorted(set(self._cpu_ms) | set(self._cuda_events)):
            values = self.samples(series)
            if values:
                out[series] = {
                    "median_ms": statistics.median(values),
                    "p10_ms": percentile(values, 10),
                    "p90_ms": percentile(values, 90),
                    "mean_ms": statistics.fmean(values),
                    "count": len(values),
                }
        return out
