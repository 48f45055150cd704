import math
from types import SimpleNamespace

import pytest
import torch

from compress.bench.accuracy.perplexity import (
    evaluate_perplexity,
    split_windows,
    window_length,
)
from compress.bench.accuracy.scores import language_model_scores
from compress.bench.text import encode

TEXT = (
    "First Witch\nWhen shall we three meet again\nIn thunder, lightning, or in rain?\n\n"
    "Second Witch\nWhen the hurlyburly's done,\nWhen the battle's lost and won. — naïve café ¶\n"
) * 6


def test_windows_are_non_overlapping_and_drop_unpredictable_tails():
    assert split_windows(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert split_windows(9, 4) == [(0, 4), (4, 8)]  # a 1-token tail predicts nothing
    assert split_windows(1, 4) == []


def test_window_is_capped_at_the_models_positions():
    def model(**config):
        return SimpleNamespace(config=SimpleNamespace(**config))

    assert window_length(model(max_position_embeddings=64), 512) == 64
    assert window_length(model(n_positions=1024), 512) == 512
    assert window_length(model(), 512) == 512  # no stated limit


def test_token_bytes_add_up_to_the_text(tokenizer):
    encoded = encode(tokenizer, TEXT)
    assert encoded.exact_bytes
    assert int(encoded.token_bytes.sum()) == len(TEXT.encode("utf-8"))
    assert (encoded.token_bytes >= 0).all()


def test_perplexity_equals_a_hand_computation(tokenizer, make_llama):
    model = make_llama(positions=32)
    result = evaluate_perplexity(model, tokenizer, TEXT, window=512, max_tokens=100, batch_size=2, progress=False)
    ids = tokenizer(TEXT, add_special_tokens=False)["input_ids"][:100]
    encoded = encode(tokenizer, TEXT)
    total_nll, predicted, predicted_bytes = 0.0, 0, 0
    with torch.no_grad():
        for start in range(0, 100, 32):  # windows of 32 (the model's limit): 32, 32, 32, 4
            window = ids[start : start + 32]
            logits = model(torch.tensor([window])).logits[0]
            log_probs = torch.log_softmax(logits.double(), dim=-1)
            for position in range(1, len(window)):
                total_nll -= float(log_probs[position - 1, window[position]])
                predicted += 1
                predicted_bytes += int(encoded.token_bytes[start + position])
    assert result["eval_window"] == 32
    assert result["eval_tokens"] == predicted == 31 * 3 + 3
    assert result["eval_bytes"] == predicted_bytes
    assert result["loss"] == pytest.approx(total_nll / predicted, rel=1e-5)
    assert result["perplexity"] == pytest.approx(math.exp(total_nll / predicted), rel=1e-5)
    assert result["bits_per_byte"] == pytest.approx(total_nll / math.log(2) / predicted_bytes, rel=1e-5)


def test_bits_per_byte_formula():
    scores = language_model_scores(nll_sum=[10.0, 6.0], tokens=[4, 4], byte_counts=[12, 20])
    assert scores["loss"] == pytest.approx(2.0)
    assert scores["perplexity"] == pytest.approx(math.exp(2.0))
    assert scores["bits_per_byte"] == pytest.approx(16.0 / math.log(2) / 32)
    assert (scores["eval_tokens"], scores["eval_bytes"]) == (8, 32)


def test_a_random_model_is_near_uniform(tokenizer, make_llama):
    # Small-init random model: perplexity close to the vocabulary size, nothing learned.
    result = evaluate_perplexity(make_llama(), tokenizer, TEXT, window=64, max_tokens=256, progress=False)
    assert 0.5 * len(tokenizer) < result["perplexity"] < 2 * len(tokenizer)


@pytest.fixture
def bos_tokenizer(tokenizer):
    """The test tokenizer made LLaMA-like: it puts <s> in front of every text."""
    import copy

    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    backend = copy.deepcopy(tokenizer.backend_tokenizer)
    backend.add_special_tokens(["<s>"])
    bos = backend.token_to_id("<s>")
    backend.post_processor = TemplateProcessing(single="<s> $A", special_tokens=[("<s>", bos)])
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>")


def test_bos_prefix_only_for_tokenizers_that_add_one(tokenizer, bos_tokenizer):
    from compress.bench.text import bos_prefix

    assert bos_prefix(tokenizer) is None  # GPT-2 style: has a BOS token but never adds it
    assert bos_prefix(bos_tokenizer) == bos_tokenizer.bos_token_id


def test_bos_windows_predict_every_text_token(bos_tokenizer, make_llama):
    model = make_llama(vocab=len(bos_tokenizer), positions=32)
    bos = bos_tokenizer.bos_token_id
    result = evaluate_perplexity(model, bos_tokenizer, TEXT, window=512, max_tokens=93, prefix_id=bos, progress=False)
    ids = bos_tokenizer(TEXT, add_special_tokens=False)["input_ids"][:93]
    total_nll = 0.0
    with torch.no_grad():
        for start in range(0, 93, 31):  # BOS + 31 text tokens = the model's 32 positions
            window = [bos] + ids[start : start + 31]
            log_probs = torch.log_softmax(model(torch.tensor([window])).logits[0].double(), dim=-1)
            total_nll -= sum(float(log_probs[p - 1, window[p]]) for p in range(1, len(window)))
    assert result["eval_tokens"] == 93
    assert result["eval_bytes"] == int(encode(bos_tokenizer, TEXT).token_bytes[:93].sum())
    assert result["loss"] == pytest.approx(total_nll / 93, rel=1e-5)
