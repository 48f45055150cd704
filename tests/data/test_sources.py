import os
import subprocess
import sys

import pytest

from compress.data.plays import split_text
from compress.data.sources import load_text, parse_hf, resolve_files
from compress.errors import UserError


def test_file_folder_and_glob(tmp_path):
    (tmp_path / "b.txt").write_text("bee\n")
    (tmp_path / "a.md").write_text("ay\n")
    (tmp_path / "image.png").write_bytes(b"\x89PNG\xff")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "c.txt").write_text("secret\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.txt").write_text("dee\n")
    assert load_text(str(tmp_path / "b.txt")) == "bee\n"
    # folder: text suffixes only, hidden parts skipped, sorted, joined by a blank line
    assert [p.name for p in resolve_files(str(tmp_path))] == ["a.md", "b.txt", "d.txt"]
    assert load_text(str(tmp_path)) == "ay\n\n\nbee\n\n\ndee\n"
    assert load_text(str(tmp_path / "**" / "*.txt")) == "bee\n\n\ndee\n"


def test_plays_sources_match_the_split():
    assert load_text("plays:validation") == split_text("validation")


@pytest.mark.parametrize(
    "source, words",
    [("plays", "plays:train"), ("plays:nope", "allowed"), ("/no/such/file.txt", "allowed forms"), ("/no/such/*.txt", "matches no files"), ("", "non-empty")],
)
def test_bad_sources_say_what_is_allowed(source, words):
    with pytest.raises(UserError, match=words):
        load_text(source)


def test_non_utf8_file_is_a_user_error(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(UserError, match="not UTF-8"):
        load_text(str(path))


def test_parse_hf_forms():
    plain = parse_hf("hf:wikitext:test")
    assert (plain.dataset, plain.config, plain.split, plain.column) == ("wikitext", None, "test", "text")
    full = parse_hf("hf:Salesforce/wikitext/wikitext-2-raw-v1:train:page")
    assert (full.dataset, full.config, full.split, full.column) == ("Salesforce/wikitext", "wikitext-2-raw-v1", "train", "page")
    with pytest.raises(UserError, match="hf:<dataset>"):
        parse_hf("hf:wikitext")


@pytest.mark.slow
def test_hf_source_offline_fails_fast_with_one_line(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    code = (
        "from compress.errors import ModelLoadError\n"
        "from compress.data.sources import load_text\n"
        "try:\n    load_text('hf:nobody/no-such-dataset:train')\n"
        "except ModelLoadError as e:\n    print('ERR', e)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    lines = [line for line in done.stdout.splitlines() if line.startswith("ERR")]
    assert len(lines) == 1, done.stdout + done.stderr
    assert "nobody/no-such-dataset" in lines[0] and "HF_HUB_OFFLINE" in lines[0]
