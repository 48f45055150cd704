"""Plain-text tables for the CLI (no dependency, copy-paste friendly)."""

from __future__ import annotations

import sys

from compress.units import format_bytes  # noqa: F401 - one byte format everywhere


def print_table(rows: list[list], headers: list[str], file=None) -> None:
    """Left-aligned columns, one header line and a rule."""
    file = file or sys.stdout
    cells = [[str(h) for h in headers]] + [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for number, row in enumerate(cells):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip(), file=file)
        if number == 0:
            print("  ".join("-" * width for width in widths), file=file)
