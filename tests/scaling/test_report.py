import pytest

from compress.errors import UserError
from compress.scaling.report import write_report
from tests.scaling.scaling_synthetic import VARIANTS, synthetic_records


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return out, write_report(synthetic_records(), out)


def test_files_written(report):
    out, paths = report
    assert paths["markdown"] == out / "report.md" and paths["html"] == out / "report.html"
    assert len(paths["plots"]) == 10 and all(p.stat().st_size > 0 for p in paths["plots"])  # 4 axes + k-bit, x2
    assert not [p for p in out.rglob(".*")]  # no temp files left behind


def test_markdown_states_fit_and_effective_params(report):
    text = report[1]["markdown"].read_text()
    assert "N = non-embedding parameters" in text
    assert "| saturating | 2 | 40 | 0.4500 | 1.0000 | bits_per_byte | non-embedding params |" in text
    for variant in VARIANTS:
        assert f"| {variant} |" in text
    assert "residual / se" in text and "leave-one-out" in text
    assert "![bits_per_byte vs parameters](plots/bits_per_byte_vs_params.png)" in text
    assert "### Pareto sets" in text


def test_default_budget_and_recommendation(report):
    text = report[1]["markdown"].read_text()
    assert "Budget: weight_bytes ≤ 5 MB (default: the weight bytes of the second-largest dense model (toy-1000k)" in text
    assert "**toy-2500k rtn-w8**" in text
    assert report[1]["recommendation"].startswith("toy-2500k rtn-w8 on cpu")
    assert report[1]["fits"][0]["alpha"] == pytest.approx(0.45, abs=1e-6)


def test_html_is_self_contained(report):
    html = report[1]["html"].read_text()
    assert html.count("data:image/png;base64,") == 5
    assert 'src="plots/' not in html and "<table>" in html and "<strong>toy-2500k rtn-w8</strong>" in html


def test_budget_that_nothing_meets_is_stated(tmp_path):
    records = [r for r in synthetic_records() if r["variant"] == "dense"]
    paths = write_report(records, tmp_path, params="total", budget={"max_weight_bytes": 1000})
    text = paths["markdown"].read_text()
    assert "nothing fits: the smallest model" in text and "N = total parameters" in text
    assert paths["recommendation"].startswith("nothing fits")


def test_unknown_metric_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="measured: bits_per_byte"):
        write_report(synthetic_records(), tmp_path, metric="acc_norm")


def test_the_first_screen_is_the_verdict_card_and_the_html_fits_a_phone(report):
    text = report[1]["markdown"].read_text()
    assert text.startswith("# scalecompress report\n\n> **Verdict")
    first = text.split("## Environment")[0]
    for axis in ("equal weight bytes", "equal decode latency", "equal energy"):
        assert f"At {axis}" in first
    assert "Against their own dense source" in first and "bit-optimal precision" in first
    html = report[1]["html"].read_text()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert html.index('id="verdict"') < html.index("Environment") and 'class="scroll"' in html
    card = report[1]["verdict"]
    assert card["axes"]["weight_bytes"]["better"] + card["axes"]["weight_bytes"]["worse"] >= 1


def test_estimated_energy_is_labelled_and_not_ranked(tmp_path):
    records = synthetic_records()
    for r in records:
        r["energy_source"] = "estimate"
    paths = write_report(records, tmp_path)
    assert paths["verdict"]["axes"]["energy_j_per_token"]["ranked"] is False
    assert "At equal energy: not ranked" in paths["markdown"].read_text()
