"""Render a report's first screen in headless Chromium, on a desktop and on a 420 px phone width.

    python benchmarks/report_screenshot.py OUT/report.html docs/   # writes report-desktop.png, report-420px.png

Needs a Chromium binary (`apt-get install chromium`); exits 2 with a message without one. The
screenshots show what a reader sees first: the verdict card (checked here by its id in the DOM
Chromium parsed, and by the card's text appearing before anything else).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

SIZES = {"desktop": (1280, 900), "420px": (420, 900)}


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(html: Path, png: Path, width: int, height: int, binary: str) -> Path:
    """One screenshot of `html` at width × height (no shell: arguments are a list)."""
    png.parent.mkdir(parents=True, exist_ok=True)
    command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               f"--window-size={width},{height}", f"--screenshot={png.resolve()}", html.resolve().as_uri()]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    return png


def dom(html: Path, binary: str) -> str:
    command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", html.resolve().as_uri()]
    return subprocess.run(command, check=True, capture_output=True, text=True, timeout=120).stdout


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    html, out = Path(argv[1]), Path(argv[2])
    binary = chromium()
    if binary is None:
        print("report_screenshot: no chromium found; install it (apt-get install chromium)", file=sys.stderr)
        return 2
    parsed = dom(html, binary)
    card = parsed.find('id="verdict"')
    if card < 0 or card > parsed.find("<h2>Environment"):
        print("report_screenshot: the verdict card is not the first section", file=sys.stderr)
        return 1
    for name, (width, height) in SIZES.items():
        path = screenshot(html, out / f"report-{name}.png", width, height, binary)
        print(f"{path} ({width}x{height})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
