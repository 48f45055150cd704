"""`evaluate` metric: multiple-choice acc and acc_norm from per-option log-likelihoods.

Load it by path (`evaluate.load("name")` would go to the Hub):

    >>> from compress.bench.accuracy.metrics import load_metric
    >>> metric = load_metric("multiple_choice")
    >>> metric.compute(loglikelihoods=[[-3.0, -1.0, -2.0, -9.0]], byte_lengths=[[30, 1, 1, 1]], labels=[0])
    {'acc': 0.0, 'acc_norm': 1.0, 'items': 1}
"""

import datasets
import evaluate

from compress.bench.accuracy.scores import choice_scores

_DESCRIPTION = (
    "lm-evaluation-harness style multiple choice: acc picks the option with the highest "
    "log-likelihood, acc_norm the highest log-likelihood per UTF-8 byte of the option."
)
_KWARGS = """
Args:
    loglikelihoods: per item, the log-likelihood of each option given the context.
    byte_lengths: per item, the UTF-8 byte length of each option.
    labels: per item, the index of the correct option.
Returns:
    acc, acc_norm, items.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class MultipleChoice(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="Gao et al., lm-evaluation-harness (acc, acc_norm)",
            inputs_description=_KWARGS,
            features=datasets.Features(
                {
                    "loglikelihoods": datasets.Sequence(datasets.Value("float64")),
                    "byte_lengths": datasets.Sequence(datasets.Value("int64")),
                    "labels": datasets.Value("int64"),
                }
            ),
        )

    def _compute(self, loglikelihoods, byte_lengths, labels):
        return choice_scores(loglikelihoods, byte_lengths, labels)
