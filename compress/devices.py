"""The one device syntax of every command: auto, cpu, cuda or cuda:N.

    >>> resolve_device("cpu")
    'cpu'
    >>> resolve_device("gpu")
    Traceback (most recent call last):
    ...
    compress.errors.UserError: --device 'gpu' is not a device; allowed: auto, cpu, cuda, cuda:N
"""

from __future__ import annotations

import re

from compress.errors import UserError, preview

DEVICE_SYNTAX = "auto, cpu, cuda, cuda:N"


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def resolve_device(text: str | None, *, flag: str = "--device", default: str = "cpu") -> str:
    """'auto' -> 'cuda' when a GPU is visible else 'cpu'; 'cuda'/'cuda:N' checked against the machine."""
    value = (text or default).strip().lower()
    if value == "auto":
        return "cuda" if cuda_available() else "cpu"
    if value == "cpu":
        return "cpu"
    match = re.fullmatch(r"cuda(?::(\d+))?", value)
    if not match:
        raise UserError(f"{flag} {preview(text)} is not a device; allowed: {DEVICE_SYNTAX}")
    if not cuda_available():
        raise UserError(f"{flag} {text}: torch sees no CUDA device on this machine; use --device cpu (or auto)")
    if match.group(1) is not None:
        import torch

        index = int(match.group(1))
        if index >= torch.cuda.device_count():
            raise UserError(f"{flag} {text}: this machine has {torch.cuda.device_count()} CUDA device(s), numbered from 0")
    return value


def bench_device(text: str | None, *, flag: str = "--device") -> str | None:
    """A --device flag for the benchmark ('cpu' or 'cuda'; 'cuda:N' selects GPU N first); None stays None."""
    if text is None:
        return None
    value = resolve_device(text, flag=flag)
    if value.startswith("cuda:"):
        import torch

        torch.cuda.set_device(int(value.split(":")[1]))
        return "cuda"
    return value
