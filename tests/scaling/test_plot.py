import pytest
from tests.scaling.scaling_synthetic import SIZES, synthetic_records

from compress.scaling.placement import ladders, place_on
from compress.scaling.plot import plot_ladder

AXES = ["params", "weight_bytes", "decode_ms_per_token", "energy_j_per_token"]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    records = synthetic_records()
    for r in records:
        if r["variant"] == "magnitude-2:4" and r["model"] == "toy-1000k":
            r["bits_per_byte"] = 6.5  # far off the scale: pinned to the edge, not squashing the rest
    (ladder,) = ladders(records)
    rows = place_on(ladder, params="non_embedding", metric="bits_per_byte")
    return plot_ladder(ladder, rows, tmp_path_factory.mktemp("plots"), params="non_embedding",
                       metric="bits_per_byte")


def test_four_plots_in_png_and_svg(written):
    assert sorted(written) == sorted(AXES)
    for axis in AXES:
        png, svg = written[axis]["png"], written[axis]["svg"]
        assert png.name == f"bits_per_byte_vs_{axis}.png" and svg.suffix == ".svg"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
        text = svg.read_text()
        assert "<svg" in text[:2000] and text.rstrip().endswith("</svg>") and len(text) > 20_000


def test_no_temp_files_left(written):
    folder = written["params"]["png"].parent
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []


def test_axis_without_measurements_is_skipped(tmp_path):
    records = [dict(r, energy_j_per_token=None) for r in synthetic_records() if r["variant"] == "dense"]
    (ladder,) = ladders(records)
    written = plot_ladder(ladder, [], tmp_path, metric="bits_per_byte")
    assert "energy_j_per_token" not in written and len(written) == 3
    assert len(ladder.dense) == len(SIZES)
