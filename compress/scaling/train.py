"""Train and score one pocket-ladder member: the loop, the LR schedule, validation bits per byte.

Every training window is `<|bos|>` + seq_len-1 tokens of the train stream, predicting the next
seq_len tokens; validation uses the same window form over non-overlapping chunks, so each
validation token is predicted exactly once and bits/byte = sum NLL / ln 2 / UTF-8 bytes.
Data order and initialisation come from the seed alone: same seed, same weights.

    >>> from compress.scaling.train import lr_at
    >>> [round(lr_at(step, steps=100, peak=1.0, warmup=10, floor=0.1), 3) for step in (0, 9, 10, 99)]
    [0.1, 1.0, 1.0, 0.1]
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from compress.errors import ScaleCompressError, UserError


def pick_device(device: str | None) -> torch.device:
    from compress.devices import resolve_device

    return torch.device(resolve_device(device or "auto"))


def autocast(device: torch.device):
    # bf16 autocast on CUDA (fast, no loss scaling); CPU stays fp32, where bf16 training is slower.
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()


def lr_at(step: int, steps: int, peak: float, warmup: int, floor: float) -> float:
    """Linear warmup to `peak`, then cosine down to `floor * peak` at the last step."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - 1 - warmup)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


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


def _windows(stream: torch.Tensor, starts: torch.Tensor, seq_len: int, bos_id: int):
    targets = stream[starts[:, None] + torch.arange(seq_len)]
    inputs = torch.cat([torch.full((len(starts), 1), bos_id, dtype=targets.dtype), targets[:, :-1]], dim=1)
    return inputs, targets


def _epoch_starts(n_tokens: int, seq_len: int, generator: torch.Generator) -> torch.Tensor:
    # A random phase per epoch, so windows do not always cut the text at the same places.
    offset = int(torch.randint(0, seq_len, (1,), generator=generator))
    count = (n_tokens - offset) // seq_len
    return offset + seq_len * torch.randperm(count, generator=generator)


def batches(stream: torch.Tensor, recipe, steps: int, seed: int, bos_id: int):
    """`steps` (inputs, targets) batches drawn by seed, epoch by epoch, without replacement."""
    if len(stream) < recipe.seq_len * 2:
        raise UserError(f"the train text has {len(stream)} tokens, too few for seq_len={recipe.seq_len}; give the corpus more text")
    generator = torch.Generator().manual_seed(seed)
    order = torch.empty(0, dtype=torch.long)
    for _ in range(steps):
        while len(order) < recipe.batch_size:
            order = torch.cat([order, _epoch_starts(len(stream), recipe.seq_len, generator)])
        starts, order = order[: recipe.batch_size], order[recipe.batch_size :]
        yield _windows(stream, starts, recipe.seq_len, bos_id)


def param_groups(model, weight_decay: float):
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]  # norms: decay would only shrink them
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


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
        inputs, targets = _windows(source, starts, length, bos_id)
        with autocast(device):
            logits = model(input_ids=inputs.to(device)).logits
        total += F.cross_entropy(logits.float().flatten(0, 1), targets.to(device).flatten(), reduction="sum").item()
        scored += targets.numel()
    return total, scored


def train_member(plan, recipe, train_ids: torch.Tensor, val_ids: torch.Tensor, val_bytes: int, *, special_ids, seed, device, progress=True, label=""):
    """Train one member from scratch; returns (model on CPU, metrics dict)."""
    model = build_model(plan, recipe, special_ids, seed).to(device)
    optimizer = torch.optim.AdamW(param_groups(model, recipe.weight_decay), lr=plan.lr, betas=(recipe.beta1, recipe.beta2))
    warmup = min(plan.steps, max(recipe.min_warmup_steps, round(recipe.warmup_fraction * plan.steps)))
    tail_losses: list[float] = []
    tail_from = plan.steps - max(1, plan.steps // 10)  # train_loss = mean over the last 10% of steps
    bar = tqdm(total=plan.tokens, desc=f"{label}{plan.name}", unit="tok", unit_scale=True, disable=not progress, leave=True, dynamic_ncols=True)
    started = time.perf_counter()
    model.train()
    for step, (inputs, targets) in enumerate(batches(train_ids, recipe, plan.steps, seed, special_ids["bos"])):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, plan.steps, plan.lr, warmup, recipe.min_lr_ratio)
        with autocast(device):
            logits = model(input_ids=inputs.to(device)).logits
        loss = F.cross_entropy(logits.float().flatten(0, 1), targets.to(device).flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        value = loss.item()
        if not math.isfinite(value):
            raise ScaleCompressError(f"{plan.name}: training loss became {value} at step {step}; lower the recipe's lr (now {plan.lr:.3g})")
        if step >= tail_from:
            tail_losses.append(value)
        bar.update(inputs.numel())
        bar.set_postfix(step=f"{step + 1}/{plan.steps}", loss=f"{value:.3f}", refresh=False)
    bar.close()
    train_seconds = time.perf_counter() - started
    nll, scored = evaluate(model, val_ids, recipe.seq_len, special_ids["bos"], recipe.eval_batch_size, device)
    metrics = {
        "train_loss": sum(tail_losses) / len(tail_losses),
        "val_loss": nll / scored,
        "val_bits_per_byte": nll / math.log(2) / val_bytes,
        "val_tokens": scored,
        "train_seconds": round(train_seconds, 2),
        "tokens_per_s": round(plan.tokens / train_seconds, 1),
        "device": device.type,
    }
    return model.to("cpu"), metrics
