"""Zero-shot 4-way multiple choice on the test plays, scored as lm-evaluation-harness does.

Items (what comes next: a word or a speech) are built in `choice_items`. Each option is scored
by its log-likelihood given the context; `acc` takes the best option, `acc_norm` the best per
UTF-8 byte. The context runs once per item and its KV cache serves all 4 options.

    >>> from compress.bench.accuracy.choice import evaluate_choice
    >>> # evaluate_choice(model, tokenizer, n_items=500)   # {'acc': ..., 'acc_norm': ..., 'items': 500, ...}
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from compress.bench.accuracy.choice_items import (
    MIN_OFFSET,
    ChoiceItem,
    Unit,
    build_items,
)
from compress.bench.accuracy.scores import choice_scores
from compress.bench.modeling import (
    cache_argument,
    cache_of,
    input_device,
    last_logits_only,
    logits_of,
)

CHARS_PER_TOKEN = 8  # generous: text handed to the tokenizer before keeping the last N tokens
_LOGITS_BUDGET_BYTES = 1 << 28


def tokenize_items(
    tokenizer, items: list[ChoiceItem], context_tokens: int, max_positions: int | None = None
) -> list[tuple[list[int], list[list[int]]]]:
    """(last `context_tokens` context ids, ids of each option) per item, batched through the tokenizer.

    With `max_positions`, the context is cut further so that context + longest option fit.

    As lm-eval does, an option is encoded together with the text before it and split at that
    text's length, so tokenizers that add a word-start marker see the option as it really reads.
    The text before it is only the current line: the context ends at a line break or a space,
    where byte-level tokenizers do not merge across, so the context is encoded once per item.
    """
    contexts = [item.context(max(MIN_OFFSET, CHARS_PER_TOKEN * context_tokens)) for item in items]
    heads = [context[context.rfind("\n", 0, len(context) - 1) + 1 :] for context in contexts]  # the current line
    context_ids = tokenizer(contexts, add_special_tokens=False, verbose=False)["input_ids"]
    head_ids = tokenizer(heads, add_special_tokens=False)["input_ids"]
    joined = [head + option for head, item in zip(heads, items) for option in item.options]
    joined_ids = tokenizer(joined, add_special_tokens=False)["input_ids"]
    alone_ids = tokenizer([option for item in items for option in item.options], add_special_tokens=False)["input_ids"]
    out = []
    for index, item in enumerate(items):
        head = head_ids[index]
        options = []
        for k in range(len(item.options)):
            whole = joined_ids[index * len(item.options) + k]
            if whole[: len(head)] == head and len(whole) > len(head):
                options.append(whole[len(head) :])
            else:  # a merge across the boundary: fall back to the option on its own
                options.append(alone_ids[index * len(item.options) + k])
        keep = context_tokens
        if max_positions is not None:
            longest = max(len(option) for option in options)
            if longest >= max_positions:  # never with 200-character options and a sane tokenizer
                options = [option[: max_positions - 1] for option in options]
                longest = max_positions - 1
            keep = max(1, min(keep, max_positions - longest))
        out.append((context_ids[index][-keep:], options))
    return out


def _pad(rows: list[list[int]], width: int) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return ids, mask


def _gather(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(target) at each position, fp32, without materialising the full log-softmax twice."""
    logits = logits.float()
    return logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)


@torch.inference_mode()
def score_batch(model, contexts: list[list[int]], options: list[list[list[int]]], *, use_cache: bool = True) -> list[list[float]]:
    """Log-likelihood of each option given its item's context: [items][4].

    The context runs once per item and its KV cache is repeated for the 4 options; models
    without a repeatable cache get the same numbers from full sequences.
    """
    device = input_device(model)
    width = min(len(c) for c in contexts)
    if width < 1:
        raise ValueError("every multiple-choice item needs at least one context token")
    context = torch.tensor([c[-width:] for c in contexts], dtype=torch.long, device=device)
    n_options = len(options[0])
    flat = [option for item in options for option in item]
    longest = max(len(option) for option in flat)
    cont, cont_mask = _pad(flat, longest)
    cont, cont_mask = cont.to(device), cont_mask.to(device)
    cache = None
    if use_cache:
        output = model(input_ids=context, attention_mask=torch.ones_like(context), use_cache=True, **last_logits_only(model))
        cache = cache_of(output)
    if cache is not None and hasattr(cache, "batch_repeat_interleave"):
        first = logits_of(output)[:, -1].repeat_interleave(n_options, dim=0)
        logprobs = [_gather(first, cont[:, 0]).unsqueeze(1)]
        if longest > 1:
            cache.batch_repeat_interleave(n_options)
            feed = cont[:, :-1]
            mask = torch.cat([torch.ones(feed.shape[0], width, dtype=torch.long, device=device), cont_mask[:, :-1]], dim=1)
            rest = logits_of(model(input_ids=feed, attention_mask=mask, use_cache=True, **{cache_argument(model): cache}))
            logprobs.append(_gather(rest, cont[:, 1:]))
        token_logprobs = torch.cat(logprobs, dim=1)
    else:
        full = torch.cat([context.repeat_interleave(n_options, dim=0), cont], dim=1)
        mask = torch.cat([torch.ones(full.shape[0], width, dtype=torch.long, device=device), cont_mask], dim=1)
        logits = logits_of(model(input_ids=full, attention_mask=mask, use_cache=False))
        token_logprobs = _gather(logits[:, width - 1 : width - 1 + longest], cont)
    totals = (token_logprobs * cont_mask).sum(dim=1).cpu().view(-1, n_options)
    return totals.tolist()


def evaluate_choice(
    model,
    tokenizer,
    *,
    n_items: int = 500,
    seed: int = 1234,
    unit: Unit = "word",
    context_tokens: int = 64,
    batch_items: int = 16,
    max_positions: int | None = None,
    progress: bool = True,
) -> dict:
    """acc and acc_norm on what-comes-next items: {"acc", "acc_norm", "items", "context_tokens"}.

    `context_tokens` in the result is the median context length used (less than asked when
    the model's `max_positions` leaves no room).

        >>> # evaluate_choice(model, tokenizer, n_items=500)["acc"]   # 0.25 ± 0.05 for a random model
    """
    items = build_items(n_items, seed, unit)
    tokenized = tokenize_items(tokenizer, items, context_tokens, max_positions)
    vocab = int(getattr(model.config, "vocab_size", 0) or 0) or 50_000
    longest = max(len(option) for _, options in tokenized for option in options)
    per_batch = max(1, min(batch_items, _LOGITS_BUDGET_BYTES // (4 * longest * vocab * 4)))
    # Similar option lengths batch together (less padding); scores do not depend on the order.
    order = sorted(range(len(items)), key=lambda i: max(len(o) for o in tokenized[i][1]))
    scores: list[list[float] | None] = [None] * len(items)
    bar = tqdm(total=len(items), desc="choice", unit="item", disable=not progress, leave=False)
    for begin in range(0, len(order), per_batch):
        chunk = order[begin : begin + per_batch]
        results = score_batch(model, [tokenized[i][0] for i in chunk], [tokenized[i][1] for i in chunk])
        for index, result in zip(chunk, results):
            scores[index] = result
        bar.update(len(chunk))
    bar.close()
    byte_lengths = [[len(option.encode("utf-8")) for option in item.options] for item in items]
    result = choice_scores(scores, byte_lengths, [item.label for item in items])
    result["context_tokens"] = sorted(len(context) for context, _ in tokenized)[len(tokenized) // 2]
    return result
