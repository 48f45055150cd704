"""The environment a benchmark ran in, recorded with every result.

    >>> from compress.bench.env import capture_env
    >>> sorted(capture_env())
    ['cpu', 'cpu_flags', 'git_revision', 'gpu', 'hostname', 'load_average', 'python', 'threads', 'torch', 'transformers']

The machine's read bandwidth (the roofline's yardstick, compress/bench/roofline.py) is measured
once per process, device and thread count by `read_bandwidth` and kept with the record's env.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo, else what platform says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# The vector extensions the speed of packed kernels depends on (the issue 14 thresholds are for AVX2).
VECTOR_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16", "neon", "asimd", "sve")


@lru_cache(maxsize=1)
def cpu_flags() -> list[str]:
    """The CPU's vector extensions among VECTOR_FLAGS (from /proc/cpuinfo flags/Features)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key = line.split(":", 1)[0].strip().lower()
            if key in ("flags", "features"):
                present = set(line.split(":", 1)[1].split())
                return [flag for flag in VECTOR_FLAGS if flag in present]
    except OSError:
        pass
    return []


@lru_cache(maxsize=8)
def read_bandwidth(device: str = "cpu", threads: int | None = None) -> dict | None:
    """{bytes_per_s, method}: the device's measured bandwidth, once per process, device and threads."""
    from compress.bench import roofline

    if device.startswith("cuda"):
        return roofline.cuda_bandwidth(device)
    return roofline.cpu_read_bandwidth(threads)


@lru_cache(maxsize=1)
def git_revision() -> str | None:
    """HEAD of the git checkout the `compress` package runs from, or None outside one."""
    here = Path(__file__).resolve().parent
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    revision = done.stdout.strip()
    return revision if done.returncode == 0 and revision else None


def capture_env() -> dict:
    """{torch, transformers, python, cpu, cpu_flags, gpu, threads, load_average, git_revision, hostname}."""
    import torch
    import transformers

    from compress.devices import cuda_available

    gpu = None
    if cuda_available():
        gpu = torch.cuda.get_device_name(torch.cuda.current_device())
    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "gpu": gpu,
        "threads": torch.get_num_threads(),
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "git_revision": git_revision(),
        "hostname": socket.gethostname(),
    }
