"""The environment a benchmark ran in, recorded with every result.

    >>> from compress.bench.env import capture_env
    >>> sorted(capture_env())
    ['cpu', 'git_revision', 'gpu', 'hostname', 'python', 'threads', 'torch', 'transformers']
"""

from __future__ import annotations

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
    """{torch, transformers, python, cpu, gpu, threads, git_revision, hostname}."""
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
        "gpu": gpu,
        "threads": torch.get_num_threads(),
        "git_revision": git_revision(),
        "hostname": socket.gethostname(),
    }
