import pytest
import torch

from compress.bench.accuracy.choice import evaluate_choice, score_batch, tokenize_items
from compress.bench.accuracy.choice_items import MAX_CHARS, MIN_CHARS, build_items
from compress.bench.accuracy.scores import choice_scores
from compress.data.plays import load_play


@pytest.mark.parametrize("unit", ["word", "speech"])
def test_items_are_deterministic_and_well_formed(unit):
    items = build_items(500, seed=1234, unit=unit)
    assert items == build_items(500, seed=1234, unit=unit)
    assert items != build_items(500, seed=99, unit=unit)
    assert set(build_items(100, seed=1234, unit=unit)) <= set(items)  # a quick run is a subset of the full one
    assert len(items) == 500
    labels = [item.label for item in items]
    assert set(labels) == {0, 1, 2, 3}
    assert max(labels.count(k) for k in range(4)) < 0.35 * len(items)  # the true answer moves around
    for item in items[:100]:
        text = load_play(item.play).text
        true = item.options[item.label]
        assert len(set(item.options)) == 4
        assert text[item.position : item.position + len(true)] == true  # really what comes next
        assert all(option in text for option in item.options)  # distractors from the same play
        assert len(item.context()) == 1000 and item.position >= 1000
        if unit == "speech":
            assert item.context().endswith("\n")
            assert all(MIN_CHARS <= len(option) <= MAX_CHARS for option in item.options)
        else:
            assert all(option.startswith(" ") and " " not in option[1:] for option in item.options)
            assert item.context()[-1] not in " \n"


def test_too_many_items_is_a_user_error():
    from compress.errors import UserError

    with pytest.raises(UserError, match="bench.choice_items=100000"):
        build_items(100_000, unit="speech")
    with pytest.raises(UserError, match="bench.choice_unit='line'.*word, speech"):
        build_items(10, unit="line")


def test_context_is_cut_to_fit_the_models_positions(tokenizer):
    items = build_items(20, unit="speech")
    for context, options in tokenize_items(tokenizer, items, 128, max_positions=96):
        assert len(context) + max(len(option) for option in options) <= 96
        assert len(context) >= 1
    for context, _ in tokenize_items(tokenizer, items, 128):
        assert len(context) == 128


def test_cached_and_full_sequence_scoring_agree(tokenizer, make_llama, make_gpt2, one_thread):
    tokenized = tokenize_items(tokenizer, build_items(3, unit="speech") + build_items(3), 48)
    contexts = [c for c, _ in tokenized]
    options = [o for _, o in tokenized]
    for model in (make_llama(seed=1), make_gpt2(seed=1)):
        cached = torch.tensor(score_batch(model, contexts, options, use_cache=True))
        full = torch.tensor(score_batch(model, contexts, options, use_cache=False))
        assert cached.shape == (6, 4)
        assert torch.allclose(cached, full, atol=1e-3, rtol=1e-4)


def test_scores_match_a_single_sequence_forward(tokenizer, make_llama):
    model = make_llama(seed=2)
    context, options = tokenize_items(tokenizer, build_items(1, unit="speech"), 32)[0]
    batched = score_batch(model, [context], [options])[0]
    for option, score in zip(options, batched):
        ids = torch.tensor([context + option])
        with torch.no_grad():
            log_probs = torch.log_softmax(model(ids).logits[0].double(), dim=-1)
        expected = sum(float(log_probs[len(context) - 1 + k, token]) for k, token in enumerate(option))
        assert score == pytest.approx(expected, abs=1e-3)


def test_acc_and_acc_norm_follow_the_harness():
    scores = choice_scores(
        loglikelihoods=[[-10.0, -12.0, -30.0, -11.0], [-5.0, -4.0, -20.0, -9.0]],
        byte_lengths=[[5, 40, 10, 10], [10, 2, 100, 10]],
        labels=[1, 2],
    )
    # item 1: acc picks 0, per byte picks 1 (-0.3) ; item 2: acc picks 1, per byte picks 2 (-0.2)
    assert scores == {"acc": 0.0, "acc_norm": 1.0, "items": 2, "correct": [0, 0], "correct_norm": [1, 1]}  # per item: error bars


@pytest.mark.parametrize("unit", ["word", "speech"])
def test_a_random_model_scores_chance(tokenizer, make_llama, one_thread, unit):
    result = evaluate_choice(make_llama(hidden=16, layers=1), tokenizer, n_items=500, unit=unit,
                             context_tokens=16, batch_items=32, progress=False)
    assert result["items"] == 500
    assert 0.20 <= result["acc"] <= 0.30
    assert 0.20 <= result["acc_norm"] <= 0.30


def test_word_options_tokenize_as_they_read_in_the_text(tokenizer):
    items = build_items(30)
    for item, (context, options) in zip(items, tokenize_items(tokenizer, items, 100)):
        text = item.context(1000)
        context_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        whole = tokenizer(text + item.options[item.label], add_special_tokens=False)["input_ids"]
        assert context == context_ids[-100:]
        assert whole[: len(context_ids)] == context_ids and whole[len(context_ids) :] == options[item.label]
