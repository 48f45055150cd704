"""`evaluate` metric: token perplexity and bits per byte from per-window NLL sums.

Load it by path (`evaluate.load("name")` would go to the Hub):

    >>> from compress.bench.accuracy.metrics import load_metric
    >>> metric = load_metric("token_perplexity")
    >>> metric.compute(nll_sum=[2.772588722239781], tokens=[2], byte_counts=[4])["perplexity"]
    4.0
"""

import datasets
import evaluate

from compress.bench.accuracy.scores import language_model_scores

_DESCRIPTION = (
    "GPTQ-style token perplexity exp(Σ NLL / Σ predicted tokens) and tokenizer-free bits per byte "
    "(Σ NLL / ln 2 / Σ UTF-8 bytes of the predicted tokens), from one row per evaluation window."
)
_KWARGS = """
Args:
    nll_sum: summed next-token NLL (nats) of each window.
    tokens: predicted tokens in each window.
    byte_counts: UTF-8 bytes of the predicted tokens of each window.
Returns:
    loss, perplexity, bits_per_byte, eval_tokens, eval_bytes.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class TokenPerplexity(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="Frantar et al., GPTQ (arXiv 2210.17323), perplexity protocol",
            inputs_description=_KWARGS,
            features=datasets.Features(
                {"nll_sum": datasets.Value("float64"), "tokens": datasets.Value("int64"), "byte_counts": datasets.Value("int64")}
            ),
        )

    def _compute(self, nll_sum, tokens, byte_counts):
        return language_model_scores(nll_sum, tokens, byte_counts)
