"""GPTQ-style token perplexity and tokenizer-free bits per byte.

The evaluation text is tokenized whole (no special tokens), cut to `max_tokens`, and split into
non-overlapping windows of `window` tokens (a shorter last window is kept when it predicts
anything). Within a window every token but the first is predicted from the tokens before it —
unless the tokenizer adds a BOS token by default (LLaMA, Mistral, ...): then each window is BOS +
`window - 1` text tokens and every text token is predicted, as the model was trained to read.

    loss          = Σ NLL / predicted tokens           (nats per token)
    perplexity    = exp(loss)
    bits_per_byte = Σ NLL / ln 2 / UTF-8 bytes of the predicted tokens

This is GPTQ's protocol (its paper uses 2048-token windows; we default to 512, capped at the
model's max positions), not lm-evaluation-harness's rolling word perplexity.

    >>> from compress.bench.accuracy.perplexity import evaluate_perplexity
    >>> # result = evaluate_perplexity(model, tokenizer, text, window=512, max_tokens=16384)
    >>> # result["perplexity"], result["bits_per_byte"], result["eval_tokens"]
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from compress.bench.accuracy.fidelity import text_key
from compress.bench.accuracy.scores import language_model_scores
from compress.bench.modeling import input_device, logits_of, max_positions
from compress.bench.text import encode

# Logits for one batch are materialised in fp32; keep them under this many bytes.
_LOGITS_BUDGET_BYTES = 1 << 28


def window_length(model, window: int) -> int:
    """The window actually used: the configured one, capped at the model's max positions."""
    limit = max_positions(model)
    return min(window, limit) if limit else window


def split_windows(n_tokens: int, window: int, min_tokens: int = 2) -> list[tuple[int, int]]:
    """Non-overlapping [start, end) spans; a last span under `min_tokens` predicts nothing and is dropped."""
    spans = [(start, min(start + window, n_tokens)) for start in range(0, n_tokens, window)]
    return [(start, end) for start, end in spans if end - start >= min_tokens]


@torch.inference_mode()
def window_nll(model, batch: torch.Tensor, fidelity=None) -> torch.Tensor:
    """Per-window sum of next-token NLL (nats), fp32, for a [B, T] batch of ids.

    `fidelity` (a ReferenceRecorder or ReferenceComparer) sees each window's [T-1, vocab]
    log-probabilities, in order.
    """
    output = model(input_ids=batch, attention_mask=torch.ones_like(batch), use_cache=False)
    logits = logits_of(output)[:, :-1].float()
    targets = batch[:, 1:].to(logits.device)
    nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
    if fidelity is not None:
        logprobs = torch.log_softmax(logits, dim=-1)
        for row in logprobs:
            fidelity.observe(row)
    return nll.view(targets.shape).sum(dim=1).cpu()


def evaluate_perplexity(
    model,
    tokenizer,
    text: str,
    *,
    window: int = 512,
    max_tokens: int = 16384,
    batch_size: int = 4,
    prefix_id: int | None = None,
    progress: bool = True,
    fidelity=None,
) -> dict:
    """Token perplexity and bits per byte of `model` on `text`.

    With `prefix_id` (the BOS id of tokenizers that add one, see `text.bos_prefix`), every
    window is that token followed by `window - 1` text tokens, all of them predicted, as
    lm-evaluation-harness's rolling windows do; without it, GPTQ's protocol (first token of each
    window unpredicted). Returns {"loss", "perplexity", "bits_per_byte", "eval_tokens"
    (predicted tokens), "eval_bytes", "eval_window", "exact_bytes"}.

        >>> # evaluate_perplexity(model, tokenizer, "plain text " * 200, window=64)["eval_window"]
        >>> # 64
    """
    encoded = encode(tokenizer, text)
    ids = encoded.ids[:max_tokens]
    length = window_length(model, window)
    skip = 0 if prefix_id is not None else 1  # text tokens at a window's start that nothing predicts
    spans = split_windows(len(ids), length - (1 - skip), min_tokens=1 + skip)
    if not spans:
        raise ValueError(f"text gives {len(ids)} tokens; perplexity needs at least 2")
    vocab = int(getattr(model.config, "vocab_size", 0) or 0) or 50_000
    per_batch = max(1, min(batch_size, _LOGITS_BUDGET_BYTES // (length * vocab * 4)))
    device = input_device(model)
    prefix = [] if prefix_id is None else [prefix_id]
    nll_sums, counts, byte_counts = [], [], []
    # Equal-length windows batch together; the short tail window runs alone.
    groups: list[list[tuple[int, int]]] = []
    for span in spans:
        if groups and len(groups[-1]) < per_batch and (groups[-1][0][1] - groups[-1][0][0]) == (span[1] - span[0]):
            groups[-1].append(span)
        else:
            groups.append([span])
    bar = tqdm(total=sum(end - start for start, end in spans), desc="perplexity", unit="tok", disable=not progress, leave=False)
    for group in groups:
        rows = [np.concatenate([np.asarray(prefix, dtype=np.int64), ids[start:end]]) for start, end in group]
        sums = window_nll(model, torch.from_numpy(np.stack(rows)).to(device), fidelity)
        for (start, end), total in zip(group, sums.tolist()):
            nll_sums.append(total)
            counts.append(end - start - skip)
            byte_counts.append(int(encoded.token_bytes[start + skip : end].sum()))
            bar.update(end - start)
    bar.close()
    scores = language_model_scores(nll_sums, counts, byte_counts)
    scores.update(eval_window=length, exact_bytes=encoded.exact_bytes,
                  windows={"nll": [round(v, 6) for v in nll_sums], "tokens": counts, "bytes": byte_counts},
                  text_key=text_key(ids, length, prefix_id))
    return scores
