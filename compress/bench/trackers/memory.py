"""Peak memory per phase: process RSS (sampled by a thread, plus the kernel's high-water mark
where Linux lets us reset it) and CUDA `max_memory_allocated`.

    >>> from compress.bench.trackers.memory import MemoryTracker
    >>> tracker = MemoryTracker("cpu")
    >>> with tracker.track("inference"):
    ...     block = bytearray(8 << 20)
    >>> tracker.result()["inference"]["peak_rss_bytes"] > 8 << 20
    True
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path

import psutil

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _reset_high_water_mark() -> bool:
    # Writing "5" resets VmHWM to the current RSS (Linux >= 4.0): an exact peak, not a sample.
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def _high_water_mark() -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class MemoryTracker:
    """Peak RSS and CUDA peak allocation inside each `with track(phase):` block.

    Where Linux lets us reset the kernel's high-water mark, that exact peak is read at the end of
    the block and no thread runs (a sampler thread preempting the compute threads on a small
    machine would distort the latency phase that runs inside this block). Elsewhere a background
    thread samples RSS every `interval_s`.
    """

    def __init__(self, device: str = "cpu", interval_s: float = 0.02):
        self.device = device
        self.interval_s = interval_s
        self._process = psutil.Process()
        self._results: dict[str, dict[str, int | None]] = {}

    @contextmanager
    def track(self, phase: str = "main"):
        cuda = self.device == "cuda"
        if cuda:
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        exact = _reset_high_water_mark()
        peak = [self._process.memory_info().rss]
        stop = threading.Event()

        def sample():
            while not stop.wait(self.interval_s):
                peak[0] = max(peak[0], self._process.memory_info().rss)

        sampler = None if exact else threading.Thread(target=sample, name=f"rss-sampler-{phase}", daemon=True)
        if sampler is not None:
            sampler.start()
        try:
            yield
        finally:
            stop.set()
            if sampler is not None:
                sampler.join()
            rss = max(peak[0], self._process.memory_info().rss)
            hwm = _high_water_mark() if exact else None
            cuda_peak = None
            if cuda:
                import torch

                torch.cuda.synchronize()
                cuda_peak = int(torch.cuda.max_memory_allocated())
            self._results[phase] = {
                "peak_rss_bytes": int(max(rss, hwm or 0)),
                "cuda_max_allocated_bytes": cuda_peak,
            }

    def result(self) -> dict[str, dict[str, int | None]]:
        """{phase: {"peak_rss_bytes", "cuda_max_allocated_bytes"}} for every tracked phase."""
        return {phase: dict(values) for phase, values in self._results.items()}
