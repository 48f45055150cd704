import json

import pytest

from compress.cli import main

# A small store with a known answer: dense a < b < c < d; b-int4 is b at a quarter of its bytes.
ROWS = [
    ("a", "dense", 100_000, 3.0, 400_000, 0.5),
    ("b", "dense", 300_000, 2.6, 1_200_000, 0.9),
    ("c", "dense", 1_000_000, 2.3, 4_000_000, 2.0),
    ("d", "dense", 3_000_000, 2.1, 12_000_000, 5.0),
    ("c", "rtn-w4-g64", 1_000_000, 2.35, 1_100_000, 0.8),
    ("d", "rtn-w8", 3_000_000, 2.11, 3_000_000, 1.6),
]


@pytest.fixture
def results(tmp_path):
    path = tmp_path / "results.jsonl"
    lines = []
    for model, variant, params, bpb, weight_bytes, decode_ms in ROWS:
        lines.append(json.dumps({
            "model": model, "variant": variant, "device": "cpu", "scenario": "s", "family": "toy",
            "source_model": model, "method": "dense" if variant == "dense" else "rtn", "params": params,
            "non_embedding_params": params, "bits_per_byte": bpb, "weight_bytes": weight_bytes,
            "decode_ms_per_token": decode_ms, "energy_j_per_token": decode_ms / 100, "energy_source": "estimate",
        }))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_recommend_json(results, capsys):
    assert main(["recommend", str(results), "--max-memory", "2MB", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert {"metric", "budget", "pick", "runner_ups", "binding", "blocked", "reason", "n_candidates",
            "n_within_budget"} <= set(document)
    assert (document["pick"]["model"], document["pick"]["variant"]) == ("c", "rtn-w4-g64")
    assert document["budget"] == {"max_weight_bytes": 2_000_000}
    assert document["binding"] == ["max_weight_bytes"]
    assert [r["model"] for r in document["runner_ups"]] == ["b", "a"]


def test_recommend_human_output_with_latency(results, capsys):
    assert main(["recommend", str(results), "--max-weight-bytes", "5MB", "--max-decode-ms", "1.0"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("pick: c rtn-w4-g64 on cpu")
    assert "Binding: max_decode_ms" in out and "rank" in out


def test_nothing_fits_is_one_line_and_exit_1(results, capsys):
    assert main(["recommend", str(results), "--max-weight-bytes", "100k"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nothing fits: the smallest model, a dense on cpu, needs 400 kB" in err[0]


def test_bad_flags_exit_2(results, capsys):
    assert main(["recommend", str(results), "--max-memory", "2 megs"]) == 2
    err = capsys.readouterr().err
    assert "--max-memory is deprecated" in err and "--max-weight-bytes" in err.splitlines()[-1]
    assert main(["recommend", str(results), "--metric", "bleu"]) == 2
    assert main(["recommend", str(results.parent / "missing.jsonl")]) == 2


def test_report_command_json(results, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", str(results), "--out", str(out), "--params", "total", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["markdown"] == str(out / "report.md") and (out / "report.html").is_file()
    assert len(document["plots"]) == 8
    assert document["recommendation"].startswith("d rtn-w8 on cpu")  # default budget: c's 4 MB
    assert "N = total parameters" in (out / "report.md").read_text()
