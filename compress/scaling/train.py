"""Train and score one pocket-ladder member: its model, its loss, validation bits per byte.

Every training window is `<|bos|>` + seq_len-1 tokens of the train stream, predicting the next
seq_len tokens; validation uses the same window form over non-overlapping chunks, so each
validation token is predicted exactly once and bits/byte = sum NLL / ln 2 / UTF-8 bytes.
Data order and initialisation come from the seed alone: same seed, same weights.

The loop (AdamW, warmup + cosine, clipping) is the shared training engine, `compress.engines.train`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from compress.data.windows import WindowSampler, windows
from compress.engines.train import TrainSettings, autocast, make_accelerator, train


def pick_device(device: str | None) -> torch.device:
    from compress.devices import resolve_device

    return torch.device(resolve_device(device or "auto"))


def build_model(plan, recipe, special_ids: dict[str, int], seed: int):
    if getattr(recipe, "architecture", "llama") == "gpt2":
        return _build_gpt2(plan, recipe, special_ids, seed)
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=plan.vocab_size,
        hidden_size=plan.width,
        intermediate_size=plan.intermediate_size,
        num_hidden_layers=plan.layers,
        num_attention_heads=plan.heads,
        num_key_value_heads=plan.heads,
        max_position_embeddings=recipe.seq_len,
        initializer_range=recipe.init_std,
        tie_word_embeddings=True,
        bos_token_id=special_ids["bos"],
        eos_token_id=special_ids["eos"],
        pad_token_id=special_ids["pad"],
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def _build_gpt2(plan, recipe, special_ids: dict[str, int], seed: int):
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=plan.vocab_size,
        n_positions=recipe.seq_len,
        n_embd=plan.width,
        n_layer=plan.layers,
        n_head=plan.heads,
        n_inner=plan.intermediate_size,
        initializer_range=recipe.init_std,
        resid_pdrop=0.0,  # trained like the LLaMA members: no dropout on a single short pass
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        tie_word_embeddings=True,
        bos_token_id=special_ids["bos"],
        eos_token_id=special_ids["eos"],
        pad_token_id=special_ids["pad"],
    )
    torch.manual_seed(seed)
    return GPT2LMHeadModel(config)


@torch.no_grad()
def evaluate(model, stream: torch.Tensor, seq_len: int, bos_id: int, batch_size: int, device: torch.device) -> tuple[float, int]:
    """(sum of NLL in nats, tokens scored) over `stream`, every token scored once."""
    model.eval()
    total, scored = 0.0, 0
    full = len(stream) // seq_len
    groups = [torch.arange(i, min(i + batch_size, full)) * seq_len for i in range(0, full, batch_size)]
    pieces = [(stream, g, seq_len) for g in groups]
    if len(stream) % seq_len:  # the tail: one shorter window
        tail = len(stream) - full * seq_len
        pieces.append((stream, torch.tensor([full * seq_len]), tail))
    for source, starts, length in pieces:
        inputs, targets = windows(source, starts, length, bos_id)
        with autocast(device):
            logits = model(input_ids=inputs.to(device)).logits
        total += F.cross_entropy(logits.float().flatten(0, 1), targets.to(device).flatten(), reduction="sum").item()
        scored += targets.numel()
    return total, scored


def train_member(plan, recipe, train_ids: torch.Tensor, val_ids: torch.Tensor, val_bytes: int, *, special_ids, seed, device, progress=True, label=""):
    """Train one member from scratch on the shared engine; returns (model on CPU, metrics dict)."""
    model = build_model(plan, recipe, special_ids, seed).to(device)
    sampler = WindowSampler(train_ids, batch_size=recipe.batch_size, seq_len=recipe.seq_len, seed=seed, bos_id=special_ids["bos"])
    settings = TrainSettings(
        steps=plan.steps,
        lr=plan.lr,
        warmup_steps=min(plan.steps, max(recipe.min_warmup_steps, round(recipe.warmup_fraction * plan.steps))),
        min_lr_ratio=recipe.min_lr_ratio,
        weight_decay=recipe.weight_decay,
        betas=(recipe.beta1, recipe.beta2),
        grad_clip=recipe.grad_clip,
        label=f"{label}{plan.name}",
    )
    result = train(model, next_token_loss, sampler, settings, accelerator=make_accelerator(device), progress=progress)
    tail = result.losses[plan.steps - max(1, plan.steps // 10) :]  # train_loss = mean over the last 10% of steps
    nll, scored = evaluate(model, val_ids, recipe.seq_len, special_ids["bos"], recipe.eval_batch_size, device)
    metrics = {
        "train_loss": sum(tail) / len(tail),
        "val_loss": nll / scored,
        "val_bits_per_byte": nll / math.log(2) / val_bytes,
        "val_tokens": scored,
        "train_seconds": round(result.seconds, 2),
        "tokens_per_s": round(plan.tokens / result.seconds, 1),
        "device": device.type,
    }
    return model.to("cpu"), metrics


def next_token_loss(model, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the next token (logits in fp32)."""
    logits = model(input_ids=inputs).logits
    return F.cross_entropy(logits.float().flatten(0, 1), targets.flatten())
