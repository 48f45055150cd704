"""The accuracy formulas, in one place: the evaluators and the `evaluate` metric modules use these.

    >>> import math
    >>> language_model_scores(nll_sum=[2 * math.log(4)], tokens=[2], byte_counts=[4])["perplexity"]
    4.0
    >>> choice_scores([[-3.0, -1.0, -2.0, -9.0]], [[30, 1, 1, 1]], [0])
    {'acc': 0.0, 'acc_norm': 1.0, 'items': 1, 'correct': [0], 'correct_norm': [1]}
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def language_model_scores(nll_sum: Sequence[float], tokens: Sequence[int], byte_counts: Sequence[int]) -> dict:
    """Loss, perplexity and bits per byte from per-window sums.

    loss = Σ NLL / Σ predicted tokens (nats); perplexity = exp(loss);
    bits_per_byte = Σ NLL / ln 2 / Σ UTF-8 bytes of the predicted tokens.
    """
    total_nll = float(sum(nll_sum))
    total_tokens = int(sum(tokens))
    total_bytes = int(sum(byte_counts))
    if total_tokens <= 0 or total_bytes <= 0:
        raise ValueError("no predicted tokens to score")
    loss = total_nll / total_tokens
    return {
        "loss": loss,
        "perplexity": math.exp(loss) if loss < 700 else math.inf,
        "bits_per_byte": total_nll / math.log(2) / total_bytes,
        "eval_tokens": total_tokens,
        "eval_bytes": total_bytes,
    }


def choice_scores(loglikelihoods: Sequence[Sequence[float]], byte_lengths: Sequence[Sequence[int]], labels: Sequence[int]) -> dict:
    """lm-evaluation-harness multiple-choice scores.

    acc picks the option with the highest log-likelihood; acc_norm divides each by the option's
    UTF-8 byte length first. Ties go to the first option, as `argmax` does. Per-item 0/1
    outcomes ("correct", "correct_norm") are kept for error bars.
    """
    if not labels:
        raise ValueError("no items to score")
    correct, correct_norm = [], []
    for scores, lengths, label in zip(loglikelihoods, byte_lengths, labels):
        normed = [score / max(1, length) for score, length in zip(scores, lengths)]
        correct.append(int(_argmax(scores) == label))
        correct_norm.append(int(_argmax(normed) == label))
    return {"acc": sum(correct) / len(labels), "acc_norm": sum(correct_norm) / len(labels), "items": len(labels),
            "correct": correct, "correct_norm": correct_norm}


def _argmax(values: Sequence[float]) -> int:
    return max(range(len(values)), key=lambda i: (values[i], -i))
