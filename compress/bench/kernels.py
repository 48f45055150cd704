"""Which kernel each packed layer runs, counted per phase, for the bench record.

Packed layers that pick their kernel by the number of rows of a call expose
`kernel_for(rows: int) -> str`; the record counts layers per kernel name for the prefill's row
count (batch × prompt tokens) and for decode (batch rows, one token each).

    >>> import torch
    >>> class Packed(torch.nn.Module):
    ...     def kernel_for(self, rows): return "int4-gemv" if rows <= 16 else "dequant-gemm"
    >>> kernel_counts(torch.nn.Sequential(Packed(), Packed()), prefill_rows=96, decode_rows=1)
    {'prefill': {'dequant-gemm': 2}, 'decode': {'int4-gemv': 2}}
"""

from __future__ import annotations

from collections import Counter

from torch import nn


def kernel_counts(model: nn.Module, *, prefill_rows: int, decode_rows: int = 1) -> dict[str, dict[str, int]] | None:
    """{"prefill": {kernel: layers}, "decode": {...}}, or None when no layer says its kernel."""
    choosers = [m.kernel_for for m in model.modules() if callable(getattr(m, "kernel_for", None))]
    if not choosers:
        return None
    return {phase: dict(sorted(Counter(choose(rows) for choose in choosers).items()))
            for phase, rows in (("prefill", prefill_rows), ("decode", decode_rows))}
