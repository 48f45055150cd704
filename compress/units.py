"""Human units for sizes and counts: '2MB' in, '1.95 MB' out (decimal, as flags read them).

    >>> parse_size("2MB"), format_bytes(1_950_000), format_count(779_000)
    (2000000, '1.95 MB', '779K')
"""

from __future__ import annotations

import math
import re

from compress.errors import UserError

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def tensor_bytes(tensors) -> int:
    """Bytes held by tensors (numel x element size): the one byte count every size figure uses."""
    return sum(t.numel() * t.element_size() for t in tensors if t is not None)


def is_number(value) -> bool:
    """True for a finite int/float (not bool): a measurement that is present."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def parse_size(text: str | float | int, *, flag: str = "--max-weight-bytes") -> int:
    """Bytes from a human size: '2MB' (10^6), '1.5GiB' (2^30), '500k', '2e6', '1_000_000'.

        >>> parse_size("2MB"), parse_size("1.5GiB"), parse_size("500k")
        (2000000, 1610612736, 500000)
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value, unit = float(text), ""
    else:
        match = re.fullmatch(r"\s*([0-9][0-9_]*(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*", str(text))
        if not match or match.group(2).lower() not in _UNITS:
            raise UserError(f"{flag}: cannot read {text!r} as a size; write a number with an optional unit, "
                            "e.g. 500k, 2MB, 1.5GiB (units: B, kB, MB, GB, TB, KiB, MiB, GiB, TiB)")
        value, unit = float(match.group(1).replace("_", "")), match.group(2).lower()
    size = value * _UNITS[unit]
    if not (math.isfinite(size) and size > 0):
        raise UserError(f"{flag}: a size must be positive; got {text!r}")
    return int(round(size))


def format_bytes(value: float | None) -> str:
    """'1.95 MB' (decimal units, as `parse_size` reads them); '—' for a missing value."""
    if not is_number(value):
        return "—"
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.3g} {unit}"
    return f"{value:.0f} B"


def format_count(value: float | None) -> str:
    """'779K', '1.77M', '7.0B' for parameter counts; '—' for a missing value."""
    if not is_number(value):
        return "—"
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.3g}{unit}"
    return f"{value:.0f}"
