"""Say when a compressed variant runs slower than the dense model it came from.

A format is only worth its bytes if it does not quietly cost time: W8A8 on a CPU without a
fast int8 GEMM, or a packed layer at a shape its kernel refuses, can be slower than fp32. Every
measured phase counts: prefill, decode, and loading the checkpoint. The sweep (its log and
report.md) and `scalecompress bench --results` call this on the records of one machine and
print every line it returns.

    >>> dense = {"model": "m", "variant": "dense", "device": "cpu", "decode_ms_per_token": 2.0, "prefill_ms": 10.0}
    >>> w8a8 = {"model": "m-sq", "variant": "smoothquant-a0.5-w8a8", "source_model": "m", "device": "cpu",
    ...         "decode_ms_per_token": 3.0, "prefill_ms": 9.0}
    >>> slower_than_dense([dense, w8a8])
    ['m-sq / smoothquant-a0.5-w8a8 is slower than its dense source m on cpu: decode 3.00 ms/token vs 2.00 (1.50x)']
"""

from __future__ import annotations

from typing import Any

DENSE = "dense"
# (record field, label, unit): lower is better for all of them.
_TIMINGS = (("decode_ms_per_token", "decode", "ms/token"), ("prefill_ms", "prefill", "ms"), ("load_seconds", "load", "s"))
TOLERANCE = 1.05  # within 5% is timing noise on a shared machine, not a finding


def slower_than_dense(records: list[dict[str, Any]], tolerance: float = TOLERANCE) -> list[str]:
    """One line per compressed record whose latency exceeds its dense source's on the same device."""
    dense = {(r.get("model"), r.get("device"), r.get("scenario")): r for r in records if r.get("variant") == DENSE}
    lines = []
    for record in records:
        if record.get("variant") in (None, DENSE):
            continue
        base = dense.get((record.get("source_model"), record.get("device"), record.get("scenario")))
        if base is None:
            continue
        slower = []
        for field, label, unit in _TIMINGS:
            mine, theirs = record.get(field), base.get(field)
            if mine and theirs and mine > tolerance * theirs:
                slower.append(f"{label} {mine:.2f} {unit} vs {theirs:.2f} ({mine / theirs:.2f}x)")
        if slower:
            lines.append(f"{record.get('model')} / {record['variant']} is slower than its dense source {record.get('source_model')} on {record.get('device')}: {'; '.join(slower)}")
    return lines
