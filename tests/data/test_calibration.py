import inspect

import pytest
import torch

from compress.data.calibration import calibration_batches, token_stream
from compress.data.plays import split_text
from compress.data.tokenizer import train_tokenizer
from compress.errors import UserError


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(split_text("validation")[:30_000], vocab_size=300)


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "calib.txt"
    path.write_text(split_text("validation")[:20_000])
    return str(path)


def test_shape_dtype_and_windows_come_from_the_text(tokenizer, source):
    batch = calibration_batches(tokenizer, n_samples=6, seq_len=40, seed=0, source=source)
    assert batch.shape == (6, 40) and batch.dtype == torch.long
    stream = token_stream(tokenizer, open(source).read())
    as_text = " ".join(map(str, stream))
    for row in batch.tolist():
        assert " ".join(map(str, row)) in as_text  # a contiguous window of the token stream


def test_same_seed_same_windows_other_seed_other_windows(tokenizer, source):
    first = calibration_batches(tokenizer, n_samples=4, seq_len=32, seed=3, source=source)
    assert torch.equal(first, calibration_batches(tokenizer, n_samples=4, seq_len=32, seed=3, source=source))
    assert not torch.equal(first, calibration_batches(tokenizer, n_samples=4, seq_len=32, seed=4, source=source))


def test_default_source_is_the_train_split():
    assert inspect.signature(calibration_batches).parameters["source"].default == "plays:train"


@pytest.mark.parametrize("held_out", ["plays:test", "plays:all"])
def test_test_plays_are_refused(tokenizer, held_out):
    with pytest.raises(UserError, match="held out"):
        calibration_batches(tokenizer, n_samples=2, seq_len=16, source=held_out)


def test_validation_plays_are_allowed(tokenizer):
    assert calibration_batches(tokenizer, n_samples=2, seq_len=16, source="plays:validation").shape == (2, 16)


def test_bad_sizes(tokenizer, source):
    with pytest.raises(UserError, match="fewer than seq_len"):
        calibration_batches(tokenizer, n_samples=2, seq_len=10**7, source=source)
    with pytest.raises(UserError, match="n_samples"):
        calibration_batches(tokenizer, n_samples=0, seq_len=16, source=source)
