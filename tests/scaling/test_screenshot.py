"""The verdict card renders in headless Chromium at 420 px (skipped where no Chromium is installed)."""

import struct

import pytest

from benchmarks.report_screenshot import chromium, dom, screenshot
from compress.scaling.render import to_html

pytestmark = pytest.mark.skipif(chromium() is None, reason="no chromium binary (apt-get install chromium)")


def test_the_card_is_the_first_thing_a_phone_shows(tmp_path):
    blocks = [("h1", "scalecompress report"),
              ("card", "Verdict", ["At equal weight bytes: 3 of 8 compressed models beat the dense curve."]),
              ("h2", "Environment"), ("table", ["", "value"], [["CPU", "x" * 200]])]
    page = tmp_path / "report.html"
    page.write_text(to_html(blocks))
    parsed = dom(page, chromium())
    assert parsed.index('id="verdict"') < parsed.index("Environment")
    png = screenshot(page, tmp_path / "phone.png", 420, 700, chromium())
    width, height = struct.unpack(">II", png.read_bytes()[16:24])
    assert (width, height) == (420, 700)
