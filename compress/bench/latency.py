"""The latency scenario: prefill a P-token prompt, then decode G tokens greedily with the KV cache.

A manual decode loop (not `generate`) so that every token is timed on its own and the loop works
for any causal LM, including models whose Linear layers are packed custom modules. Warmup runs
come first and are not timed. Figures over the timed repeats:

    prefill_ms            forward pass over the prompt (median; p90 too)
    ttft_ms               prompt ids in -> first token id on the host (prefill + pick + copy)
    decode_ms_per_token   one decode step (forward of 1 token per sequence + greedy pick), median
                          and p90 over every step of every repeat
    tokens_per_s          batch_size × 1000 / decode_ms_per_token: steady-state decode throughput

    >>> from compress.bench.latency import measure_latency
    >>> # measure_latency(model, prompt_ids, new_tokens=32, repeats=5, warmup=1)["decode_ms_per_token"]
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
from tqdm.auto import tqdm

from compress.bench.modeling import (
    cache_argument,
    cache_of,
    input_device,
    last_logits_only,
    logits_of,
)
from compress.bench.trackers.latency import LatencyTracker


def prompt_batch(ids, prompt_tokens: int, batch_size: int) -> torch.Tensor:
    """[batch_size, prompt_tokens] ids: consecutive slices of the text's tokens (wrapping when short)."""
    needed = prompt_tokens * batch_size
    if len(ids) == 0:
        raise ValueError("no tokens for a latency prompt")
    flat = torch.as_tensor(ids[:needed], dtype=torch.long)
    while flat.numel() < needed:
        flat = torch.cat([flat, flat])[:needed]
    return flat.view(batch_size, prompt_tokens)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timer(tracker: LatencyTracker | None, series: str):
    return tracker.track(series) if tracker is not None else nullcontext()


@torch.inference_mode()
def _run_once(model, prompt: torch.Tensor, new_tokens: int, tracker: LatencyTracker | None, cache_name: str) -> None:
    last_only = last_logits_only(model)  # as `generate` does: no logits for the prompt's other positions
    _sync(prompt.device)
    with _timer(tracker, "ttft"):
        with _timer(tracker, "prefill"):
            output = model(input_ids=prompt, use_cache=True, **last_only)
        next_ids = logits_of(output)[:, -1].argmax(dim=-1, keepdim=True)
        next_ids.cpu()  # the first token reaches the host: that is what TTFT means
    cache = cache_of(output)
    if cache is None:
        raise RuntimeError("the model returned no KV cache; decode latency needs use_cache support")
    for _ in range(new_tokens - 1):
        with _timer(tracker, "decode"):
            output = model(input_ids=next_ids, use_cache=True, **{cache_name: cache}, **last_only)
            next_ids = logits_of(output)[:, -1].argmax(dim=-1, keepdim=True)
        cache = cache_of(output)
    _sync(prompt.device)


@torch.inference_mode()
def _prefill_only(model, prompt: torch.Tensor, tracker: LatencyTracker | None) -> None:
    _sync(prompt.device)
    with _timer(tracker, "prefill"):
        model(input_ids=prompt)
    _sync(prompt.device)


def measure_latency(
    model,
    prompt: torch.Tensor,
    *,
    new_tokens: int = 32,
    repeats: int = 5,
    warmup: int = 1,
    decode: bool = True,
    progress: bool = True,
) -> dict:
    """Prefill/TTFT/decode figures for `prompt` ([batch, P] ids). With decode=False (encoders)
    only the forward pass over the prompt is timed.

    Returns the record's latency fields: prefill_ms, prefill_ms_p90, ttft_ms,
    decode_ms_per_token, decode_ms_per_token_p90, tokens_per_s, batch_size, prompt_tokens,
    new_tokens, generated_tokens (all runs, warmup included, for energy per token).
    """
    device = input_device(model)
    prompt = prompt.to(device)
    tracker = LatencyTracker("cuda" if device.type == "cuda" else "cpu")
    cache_name = cache_argument(model)
    bar = tqdm(total=warmup + repeats, desc="latency", unit="run", disable=not progress, leave=False)
    for run in range(warmup + repeats):
        timing = tracker if run >= warmup else None
        if decode:
            _run_once(model, prompt, new_tokens, timing, cache_name)
        else:
            _prefill_only(model, prompt, timing)
        bar.update(1)
    bar.close()
    stats = tracker.result()
    batch = int(prompt.shape[0])
    out = {
        "prefill_ms": stats["prefill"]["median_ms"],
        "prefill_ms_p90": stats["prefill"]["p90_ms"],
        "ttft_ms": stats["ttft"]["median_ms"] if "ttft" in stats else None,
        "decode_ms_per_token": None,
        "decode_ms_per_token_p10": None,
        "decode_ms_per_token_p90": None,
        "tokens_per_s": None,
        "batch_size": batch,
        "prompt_tokens": int(prompt.shape[1]),
        "new_tokens": new_tokens if decode else None,
        "generated_tokens": batch * new_tokens * (warmup + repeats) if decode else 0,
    }
    if decode and "decode" in stats:
        median = stats["decode"]["median_ms"]
        out.update(
            decode_ms_per_token=median,
            decode_ms_per_token_p10=stats["decode"]["p10_ms"],
            decode_ms_per_token_p90=stats["decode"]["p90_ms"],
            tokens_per_s=batch * 1000.0 / median if median > 0 else None,
        )
    return out
