"""Plain-text tables and human byte sizes for the CLI (no dependency, copy-paste friendly)."""

from __future__ import annotations

import sys


def format_bytes(value: int | float | None) -> str:
    """1536 -> '1.5 KiB'; None -> '-'."""
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def print_table(rows: list[list], headers: list[str], file=None) -> None:
    """Left-aligned columns, one header line and a rule."""
    file = file or sys.stdout
    cells = [[str(h) for h in headers]] + [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for number, row in enumerate(cells):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip(), file=file)
        if number == 0:
            print("  ".join("-" * width for width in widths), file=file)
