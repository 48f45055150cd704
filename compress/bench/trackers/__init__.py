"""Trackers: one small interface each, a `track(phase)` context manager and a `result()` dict.

    >>> from compress.bench.trackers import LatencyTracker, MemoryTracker, EnergyTracker
"""

from compress.bench.trackers.energy import EnergyTracker
from compress.bench.trackers.latency import LatencyTracker
from compress.bench.trackers.memory import MemoryTracker

__all__ = ["EnergyTracker", "LatencyTracker", "MemoryTracker"]
