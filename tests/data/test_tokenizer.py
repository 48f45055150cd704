import pytest
from transformers import AutoTokenizer

from compress.data import tokenizer as tokmod
from compress.data.corpus import load_corpus
from compress.data.plays import split_text
from compress.errors import UserError

TEXT = split_text("validation")[:40_000]
TRICKY = "  Thou art — here, café «naïve» 😀\n\n\tEnter MARK ANTONY.\r\nO!  "


@pytest.fixture(scope="module")
def small_tokenizer():
    return tokmod.train_tokenizer(TEXT, vocab_size=300)


def test_saved_tokenizer_loads_with_auto_and_round_trips(small_tokenizer, tmp_path):
    small_tokenizer.save_pretrained(tmp_path)
    assert (tmp_path / "tokenizer.json").is_file()
    loaded = AutoTokenizer.from_pretrained(str(tmp_path))
    assert len(loaded) == 300
    ids = loaded(TRICKY)["input_ids"]
    assert ids[0] == loaded.bos_token_id == 0  # encoding prepends <|bos|>, as the models were trained
    assert loaded.decode(ids, skip_special_tokens=True) == TRICKY
    assert (loaded.eos_token, loaded.pad_token) == ("<|eos|>", "<|pad|>")


def test_training_is_deterministic(small_tokenizer):
    again = tokmod.train_tokenizer(TEXT, vocab_size=300)
    assert again.get_vocab() == small_tokenizer.get_vocab()


def test_piecewise_encode_equals_whole_encode(small_tokenizer):
    text = TEXT[:5000] + "\n   \n  x\n\nY" + TRICKY
    whole = small_tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokmod.encode(small_tokenizer, text) == whole


@pytest.mark.parametrize("size", [100, 258, 70_000, "1024"])
def test_vocab_size_out_of_range(size):
    with pytest.raises(UserError, match="vocab_size"):
        tokmod.train_tokenizer(TEXT, vocab_size=size)


def test_corpus_tokenizer_trains_on_train_text_once_then_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("SCALECOMPRESS_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "notes.txt"
    path.write_text(TEXT)
    corpus = load_corpus(str(path))
    seen = []
    real = tokmod.train_tokenizer

    def spy(text, vocab_size=1024):
        seen.append(text)
        return real(text, vocab_size)

    monkeypatch.setattr(tokmod, "train_tokenizer", spy)
    first, folder = tokmod.corpus_tokenizer(corpus, 280)
    second, folder_again = tokmod.corpus_tokenizer(corpus, 280)
    assert seen == [corpus.train]  # trained once, on the train text alone
    assert folder == folder_again and (folder / "tokenizer.json").is_file()
    assert first.get_vocab() == second.get_vocab()
    tokmod.corpus_tokenizer(corpus, 290)
    assert len(seen) == 2  # the vocabulary size is part of the key
