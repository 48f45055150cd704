import pytest

from compress.data.corpus import load_corpus
from compress.data.plays import split_text
from compress.errors import UserError

# Speaker lines that occur only in the two test plays (Macbeth, Much Ado About Nothing).
TEST_PLAY_MARKERS = ("LADY MACBETH", "BENEDICK", "DOGBERRY", "BANQUO")


def test_plays_corpus_is_train_and_validation_only():
    corpus = load_corpus("plays")
    assert corpus.train == split_text("train")
    assert corpus.validation == split_text("validation")
    test_text = split_text("test")
    for marker in TEST_PLAY_MARKERS:
        assert marker in test_text
        assert marker not in corpus.train and marker not in corpus.validation
    assert "macbeth" in corpus.split_rule and corpus.describe()["train_bytes"] > 4_000_000


def test_custom_file_is_split_by_fraction_at_a_line_break(tmp_path):
    text = "".join(f"line {i}\n" for i in range(1000))
    path = tmp_path / "notes.txt"
    path.write_text(text)
    corpus = load_corpus(str(path))
    assert corpus.train + corpus.validation == text
    assert corpus.train.endswith("\n") and 0.08 < len(corpus.validation) / len(text) < 0.12
    assert corpus.split_rule.startswith("by fraction")


def test_ten_or_more_files_split_by_document(tmp_path):
    for i in range(12):
        (tmp_path / f"doc{i:02d}.txt").write_text(f"document {i}\n")
    corpus = load_corpus(str(tmp_path))
    assert corpus.validation == "document 9\n"
    assert "document 9" not in corpus.train and "document 11" in corpus.train
    assert corpus.split_rule.startswith("by document")


def test_hash_follows_the_text(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("one\ntwo\nthree\n" * 20)
    first = load_corpus(str(path)).hash
    assert load_corpus(str(path)).hash == first
    path.write_text("one\ntwo\nfour\n" * 20)
    assert load_corpus(str(path)).hash != first


@pytest.mark.parametrize("source, words", [("plays:train", "single split"), ("/no/such/dir", "allowed forms")])
def test_bad_corpus(source, words):
    with pytest.raises(UserError, match=words):
        load_corpus(source)


def test_tiny_text_cannot_split(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text("x")
    with pytest.raises(UserError, match="too small"):
        load_corpus(str(path))


def test_plays_fingerprint_needs_no_parsing(monkeypatch):
    from compress.data import plays

    first = load_corpus("plays").fingerprint

    def refuse(split):
        raise AssertionError("a cache lookup must not parse the plays")

    monkeypatch.setattr(plays, "split_text", refuse)
    corpus = load_corpus("plays")
    assert corpus.fingerprint == first and len(first) == 64
