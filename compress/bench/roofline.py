"""The memory-bandwidth limit of decoding, and how close a measured decode comes to it.

Decoding one token (batch 1) must read every weight once: the bandwidth limit of a decode step is
the bytes read per token divided by the machine's read bandwidth. Bytes read per token, as
counted here: every weight byte as stored (packed layers at their packed size, the output head
included; tied weights once) except the input embedding table (token and position), of which
a lookup reads one row per token. KV-cache and activation traffic are not counted, so the limit
is a floor, and `fraction` (limit ÷ measured) an upper bound of the share reached.

Bandwidth: on CPU, a STREAM-like read (`sum` of a float32 buffer 4× the last-level cache, at
least 256 MiB) at the bench's thread count, best of 5 after a warmup; on CUDA, a device-to-device
copy (bytes read + written ÷ time). Measured once per process and thread count (env.py caches it).

    >>> from compress.bench.roofline import bytes_read_per_token
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Linear(4, 10))
    >>> bytes_read_per_token(model) == (4 * 10 + 10) * 4 + 4 * 4  # head + one embedding row
    True
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch import nn

MIN_BUFFER_BYTES = 256 << 20
REPEATS = 5


def last_level_cache_bytes() -> int | None:
    """The largest CPU cache in bytes (Linux sysfs), or None."""
    sizes = []
    for entry in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        text = entry.read_text().strip().upper()
        try:
            sizes.append(int(text[:-1]) * {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[text[-1]] if text[-1] in "KMG" else int(text))
        except (ValueError, KeyError, OSError):
            continue
    return max(sizes) if sizes else None


def cpu_read_bandwidth(threads: int | None = None) -> dict:
    """{bytes_per_s, method}: best of REPEATS timed reads (torch sum) of a buffer beyond the caches."""
    cache = last_level_cache_bytes() or (32 << 20)
    size = max(MIN_BUFFER_BYTES, 4 * cache)
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        buffer = torch.ones(size // 4, dtype=torch.float32)  # written once: every page is resident
        buffer.sum()  # warmup
        best = float("inf")
        for _ in range(REPEATS):
            started = time.perf_counter()
            buffer.sum()
            best = min(best, time.perf_counter() - started)
        used = torch.get_num_threads()
    finally:
        torch.set_num_threads(previous)
    del buffer
    return {"bytes_per_s": size / best, "method": f"cpu read: torch sum of a {size >> 20} MiB float32 buffer, {used} threads, best of {REPEATS}"}


def cuda_bandwidth(device: str = "cuda") -> dict | None:
    """{bytes_per_s, method} of a device-to-device copy, or None without CUDA."""
    if not torch.cuda.is_available():
        return None
    size = 1 << 30
    source = torch.empty(size, dtype=torch.uint8, device=device)
    target = torch.empty_like(source)
    target.copy_(source)
    torch.cuda.synchronize(device)
    best = float("inf")
    for _ in range(REPEATS):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        target.copy_(source)
        stop.record()
        torch.cuda.synchronize(device)
        best = min(best, start.elapsed_time(stop) / 1000)
    del source, target
    return {"bytes_per_s": 2 * size / best, "method": f"cuda copy of {size >> 20} MiB (read + write), best of {REPEATS}"}


def bytes_read_per_token(model: nn.Module) -> int:
    """Weight bytes one decode step reads: all weights, the embedding tables as one row each."""
    from compress.model_info import weight_bytes

    total = weight_bytes(model)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    head_tensors = {id(t) for t in head.parameters()} | {id(t) for t in head.buffers()} if head is not None else set()
    for module in model.modules():
        rows = getattr(module, "num_embeddings", None)
        if not rows or module is head:
            continue
        tensors = [*module.parameters(recurse=False), *module.buffers(recurse=False)]
        if any(id(t) in head_tensors for t in tensors):
            continue  # tied to the output head: the head reads the whole table anyway
        table = weight_bytes(module)
        total -= table - table // rows
    return total


def roofline(model: nn.Module, decode_ms_per_token: float | None, bandwidth: dict | None) -> dict:
    """The record's roofline fields for one decode figure."""
    out = {"bytes_read_per_token": bytes_read_per_token(model), "read_bandwidth_bytes_per_s": None,
           "bandwidth_method": None, "bandwidth_limit_ms_per_token": None, "bandwidth_fraction": None}
    if bandwidth is None:
        return out
    limit_ms = 1000.0 * out["bytes_read_per_token"] / bandwidth["bytes_per_s"]
    out.update(read_bandwidth_bytes_per_s=bandwidth["bytes_per_s"], bandwidth_method=bandwidth["method"],
               bandwidth_limit_ms_per_token=limit_ms)
    if decode_ms_per_token:
        out["bandwidth_fraction"] = limit_ms / decode_ms_per_token
    return out
