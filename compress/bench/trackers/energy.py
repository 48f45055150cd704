"""Joules per phase from the best counter the machine has, and always the name of that source.

Order of preference: NVML's total-energy counter for a CUDA run (the whole GPU board), RAPL
package counters under /sys/class/powercap for a CPU run (all sockets, the whole package), else
an estimate from this process's CPU seconds times a stated watts-per-core figure.

    >>> from compress.bench.trackers.energy import EnergyTracker
    >>> tracker = EnergyTracker("cpu", rapl_root="/nonexistent")
    >>> with tracker.track("accuracy"):
    ...     _ = sum(i * i for i in range(10000))
    >>> result = tracker.result()
    >>> result["source"], result["joules"]["accuracy"] >= 0
    ('estimate', True)
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path

import psutil

RAPL_ROOT = Path("/sys/class/powercap")
_PACKAGE_ZONE = re.compile(r"^intel-rapl:\d+$")  # top-level package zones; sub-zones would double count


class RaplCounter:
    """Sum of the package energy counters (µJ), with wrap-around handled per zone."""

    def __init__(self, zones: list[Path]):
        self.zones = zones
        self.ranges = [int((zone / "max_energy_range_uj").read_text()) for zone in zones]

    def read(self) -> list[int]:
        return [int((zone / "energy_uj").read_text()) for zone in self.zones]

    def joules(self, before: list[int], after: list[int]) -> float:
        total = 0
        for start, end, wrap in zip(before, after, self.ranges):
            delta = end - start
            if delta < 0:  # the counter wrapped at max_energy_range_uj once during the phase
                delta += wrap
            total += delta
        return total / 1e6


def find_rapl(root: Path | str = RAPL_ROOT) -> tuple[RaplCounter | None, str | None]:
    """(counter, None) when RAPL package zones are readable, else (None, why not)."""
    root = Path(root)
    try:
        zones = sorted(p for p in root.iterdir() if _PACKAGE_ZONE.match(p.name))
    except OSError:
        return None, f"no RAPL counters under {root}"
    if not zones:
        return None, f"no RAPL counters under {root}"
    try:
        counter = RaplCounter(zones)
        counter.read()
    except PermissionError:
        return None, (
            f"RAPL counters under {root} are readable by root only; run as root or "
            f"`sudo chmod o+r {root}/intel-rapl:*/energy_uj` to measure instead of estimate"
        )
    except (OSError, ValueError) as error:
        return None, f"RAPL counters under {root} unreadable ({error})"
    return counter, None


class NvmlCounter:
    """NVML total energy of the GPU board that torch's current CUDA device is (mJ since driver load)."""

    def __init__(self):
        import pynvml
        import torch

        pynvml.nvmlInit()
        self._nvml = pynvml
        index = torch.cuda.current_device()
        handle = None
        uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
        if uuid is not None:  # CUDA_VISIBLE_DEVICES renumbers devices; the UUID does not lie
            text = str(uuid)
            try:
                handle = pynvml.nvmlDeviceGetHandleByUUID(text if text.startswith("GPU-") else f"GPU-{text}")
            except Exception:  # noqa: BLE001 - old drivers reject UUID lookups: fall back to the index
                handle = None
        self.handle = handle if handle is not None else pynvml.nvmlDeviceGetHandleByIndex(index)
        name = pynvml.nvmlDeviceGetName(self.handle)
        self.name = name.decode() if isinstance(name, bytes) else str(name)  # bytes in older bindings
        self.read()

    def read(self) -> int:
        return int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle))

    def joules(self, before: int, after: int) -> float:
        return (after - before) / 1e3


def find_nvml() -> tuple[NvmlCounter | None, str | None]:
    """(counter, None) when NVML reports total energy for the current GPU, else (None, why not)."""
    try:
        return NvmlCounter(), None
    except ImportError:
        return None, "nvidia-ml-py is not installed (pip install nvidia-ml-py)"
    except Exception as error:  # noqa: BLE001 - NVML raises its own family; any failure means no counter
        return None, f"NVML energy counter unavailable ({type(error).__name__}: {error})"


class EnergyTracker:
    """Joules spent inside each `with track(phase):` block, from `nvml`, `rapl` or `estimate`.

    `result()` returns {"joules": {phase: J}, "source", "method"}; the method says exactly what
    was measured, or how the estimate was made and why no counter was used.
    """

    def __init__(self, device: str = "cpu", *, cpu_watts_per_core: float = 10.0, rapl_root: Path | str = RAPL_ROOT):
        self.device = device
        self.cpu_watts_per_core = cpu_watts_per_core
        self._joules: dict[str, float] = {}
        self._process = psutil.Process()
        self._counter = None
        why_not = []
        if device == "cuda":
            self._counter, reason = find_nvml()
            if self._counter is not None:
                self.source = "nvml"
                self.method = (
                    f"nvml: nvmlDeviceGetTotalEnergyConsumption of {self._counter.name} "
                    "(whole board, other processes included; host CPU not included)"
                )
                return
            why_not.append(reason)
        else:
            self._counter, reason = find_rapl(rapl_root)
            if self._counter is not None:
                self.source = "rapl"
                self.method = (
                    f"rapl: package energy_uj of {len(self._counter.zones)} zone(s) under {rapl_root} "
                    "(whole CPU package, other processes included)"
                )
                return
            why_not.append(reason)
        self.source = "estimate"
        self.method = (
            f"estimate: process CPU seconds × {cpu_watts_per_core:g} W/core "
            f"(config `cpu_watts_per_core`){'; GPU not included' if device == 'cuda' else ''}; "
            f"{'; '.join(why_not)}"
        )

    def _read(self):
        if self._counter is not None:
            return self._counter.read()
        times = self._process.cpu_times()
        return times.user + times.system

    @contextmanager
    def track(self, phase: str = "main"):
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()
        before = self._read()
        try:
            yield
        finally:
            if self.device == "cuda":
                import torch

                torch.cuda.synchronize()
            after = self._read()
            if self._counter is not None:
                joules = self._counter.joules(before, after)
            else:
                joules = max(0.0, after - before) * self.cpu_watts_per_core
            self._joules[phase] = self._joules.get(phase, 0.0) + joules

    def result(self) -> dict:
        """{"joules": {phase: J}, "source": "nvml"|"rapl"|"estimate", "method": str}."""
        return {"joules": dict(self._joules), "source": self.source, "method": self.method}
