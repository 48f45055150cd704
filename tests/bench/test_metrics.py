import math

import pytest

from compress.bench.accuracy.metrics import METRICS, load_metric, metric_path
from compress.bench.accuracy.scores import choice_scores, language_model_scores
from compress.errors import UserError


def test_metric_scripts_ship_with_the_package():
    for name in METRICS:
        assert metric_path(name).is_file()
    with pytest.raises(UserError, match="allowed: token_perplexity, multiple_choice"):
        metric_path("bleu")


@pytest.mark.slow  # importing evaluate + datasets takes seconds
def test_local_evaluate_modules_give_the_benchmarks_numbers():
    windows = {"nll_sum": [40.0, 35.5, 7.25], "tokens": [15, 15, 3], "byte_counts": [50, 47, 9]}
    lm = load_metric("token_perplexity").compute(**windows)
    assert lm == pytest.approx(language_model_scores(**windows))
    assert lm["perplexity"] == pytest.approx(math.exp(82.75 / 33))
    items = {
        "loglikelihoods": [[-3.0, -1.0, -2.0, -9.0], [-1.0, -2.0, -3.0, -4.0]],
        "byte_lengths": [[30, 1, 1, 1], [1, 1, 1, 1]],
        "labels": [0, 0],
    }
    assert load_metric("multiple_choice").compute(**items) == choice_scores(**items) == {
        "acc": 0.5, "acc_norm": 1.0, "items": 2, "correct": [0, 1], "correct_norm": [1, 1]}
