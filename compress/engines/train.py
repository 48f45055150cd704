"""The one training loop: pocket-ladder members from scratch and the `distill` pass share it.

Built on accelerate's `Accelerator`, so the same loop runs on one CPU, one GPU, or several
processes (`torchrun --nproc_per_node 2 ...` with gloo on CPU, `accelerate launch` on GPUs):
each process takes its slice of the same global batch and DDP averages the gradients, so the
global batch, and the result, do not depend on the number of processes.

The loop: AdamW (weight decay on tensors of two or more dimensions only: decay would only
shrink norms and biases), linear warmup then cosine to a floor, gradient-norm clipping,
gradient accumulation over micro-batches, bf16 autocast on CUDA (CPU stays fp32, where bf16
training is slower). With a checkpoint folder it saves model, optimizer, data order, RNG and
loss history every `checkpoint_every` steps and resumes from the newest checkpoint, so a
killed run ends bit-identical to an uninterrupted one on CPU; the folder is removed when the
run completes.

The train engine's algorithm interface (what `distill` implements; see INTERFACE.md):

    prepare(model) -> nn.Module         the module to train (the student, plus any learned heads)
    sampler() -> WindowSampler          the training batches, in a seed-fixed, resumable order
    settings() -> TrainSettings         steps, lr, schedule, batch, accumulation, checkpoints
    loss(module, inputs, targets) -> (loss, {"name": float})   call module(...) for the forward
    after_step(module)                  optional: re-impose constraints (pruning masks)
    finish(module) -> list[str]         optional: pack what was trained; names of touched modules

    >>> from compress.engines.train import lr_at
    >>> [round(lr_at(step, steps=100, peak=1.0, warmup=10, floor=0.1), 3) for step in (0, 9, 10, 99)]
    [0.1, 1.0, 1.0, 0.1]
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from compress.data.windows import WindowSampler
from compress.engines import checkpoints
from compress.errors import ScaleCompressError, UserError


@dataclass(frozen=True)
class TrainSettings:
    steps: int
    lr: float  # peak learning rate
    warmup_steps: int = 10
    min_lr_ratio: float = 0.1  # cosine ends at this fraction of the peak
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    accumulation: int = 1  # micro-batches per optimizer step (per process)
    checkpoint_every: int = 0  # steps between checkpoints; 0: none
    label: str = "train"  # progress bar and messages


@dataclass
class TrainResult:
    losses: list[float]  # per optimizer step, mean over the global batch
    steps: int
    tokens: int  # tokens the student was trained on (global)
    seconds: float  # wall time of the steps this process ran (not the resumed-over ones)
    tokens_per_s: float
    peak_rss_bytes: int | None
    peak_cuda_bytes: int | None
    resumed_from: int  # 0: started fresh
    processes: int
    backend: str | None
    logs: dict[str, float] = field(default_factory=dict)  # last step's named loss parts


def lr_at(step: int, steps: int, peak: float, warmup: int, floor: float) -> float:
    """Linear warmup to `peak`, then cosine down to `floor * peak` at the last step."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - 1 - warmup)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def autocast(device: torch.device | str):
    """bf16 autocast on CUDA; a no-op on CPU."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if torch.device(device).type == "cuda" else nullcontext()


def param_groups(parameters: list[nn.Parameter], weight_decay: float) -> list[dict]:
    decay = [p for p in parameters if p.dim() >= 2]
    no_decay = [p for p in parameters if p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_accelerator(device: str | torch.device | None = None):
    """An Accelerator for `device` ('cpu', 'cuda', None = what the launcher/machine gives)."""
    from accelerate import Accelerator

    cpu = device is not None and torch.device(device).type == "cpu" or not torch.cuda.is_available()
    return Accelerator(cpu=cpu, mixed_precision="no" if cpu else "bf16")


def _micro_batches(batch: tuple[torch.Tensor, ...], accelerator, accumulation: int):
    """This process's slice of the global batch, cut into `accumulation` equal micro-batches."""
    size = len(batch[0])
    parts = accelerator.num_processes * accumulation
    if size % parts:
        raise UserError(f"batch size {size} does not split into {accelerator.num_processes} process(es) x {accumulation} micro-batches; pick a batch size that is a multiple of {parts}")
    share = size // accelerator.num_processes
    start = accelerator.process_index * share
    mine = [t[start : start + share] for t in batch]
    step = share // accumulation
    return [tuple(t[i : i + step].to(accelerator.device) for t in mine) for i in range(0, share, step)]


def train(
    module: nn.Module,
    loss_fn: Callable,
    sampler: WindowSampler,
    settings: TrainSettings,
    *,
    accelerator=None,
    checkpoint_dir: Path | None = None,
    after_step: Callable[[nn.Module], None] | None = None,
    on_step: Callable[[int], None] | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train `module`'s parameters that require grad for `settings.steps` optimizer steps.

    `loss_fn(module, inputs, targets)` returns a scalar loss, or (loss, {name: float}) with
    named parts for the log; it must run the forward through the `module` it is given (the
    accelerate-wrapped one). The module is trained in place and left on its original device.
    `on_step(step)` runs after each completed step (tests use it to kill a run).
    """
    from compress.bench.trackers.memory import MemoryTracker

    accelerator = accelerator or make_accelerator()
    home = next(module.parameters()).device
    parameters = [p for p in module.parameters() if p.requires_grad]
    if not parameters:
        raise UserError(f"{settings.label}: no parameter is trainable; check which parameters the pass trains")
    optimizer = torch.optim.AdamW(param_groups(parameters, settings.weight_decay), lr=settings.lr, betas=settings.betas)
    wrapped, optimizer = accelerator.prepare(module, optimizer)
    losses: list[float] = []
    start = 0
    resume = checkpoints.latest(checkpoint_dir)
    if resume is not None:
        state, sampler_state = checkpoints.load(resume, accelerator=accelerator, model=wrapped, optimizer=optimizer)
        sampler.load_state_dict(sampler_state)
        start, losses = state["step"], state["losses"]
        if accelerator.is_main_process:
            print(f"{settings.label}: resuming from step {start} ({resume})", file=sys.stderr)
    batch_tokens = sampler.batch_size * sampler.seq_len
    show = progress and accelerator.is_main_process
    bar = tqdm(total=settings.steps * batch_tokens, initial=start * batch_tokens, desc=settings.label, unit="tok", unit_scale=True, disable=not show, dynamic_ncols=True, file=sys.stderr)
    tracker = MemoryTracker(accelerator.device.type)
    logs: dict[str, float] = {}
    started = time.perf_counter()
    wrapped.train()
    with tracker.track("train"):
        for step in range(start, settings.steps):
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, settings.steps, settings.lr, settings.warmup_steps, settings.min_lr_ratio)
            micro = _micro_batches(sampler.next_batch(), accelerator, settings.accumulation)
            value = 0.0
            for index, (inputs, targets) in enumerate(micro):
                sync = nullcontext() if index == len(micro) - 1 else accelerator.no_sync(wrapped)
                with sync:
                    out = loss_fn(wrapped, inputs, targets)
                    loss, logs = out if isinstance(out, tuple) else (out, {})
                    accelerator.backward(loss / settings.accumulation if settings.accumulation > 1 else loss)
                value += loss.item() / len(micro) if len(micro) > 1 else loss.item()
            accelerator.clip_grad_norm_(parameters, settings.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if after_step is not None:
                after_step(accelerator.unwrap_model(wrapped))
            if accelerator.num_processes > 1:
                value = accelerator.reduce(torch.tensor(value, dtype=torch.float64, device=accelerator.device), "mean").item()
            if not math.isfinite(value):
                raise ScaleCompressError(f"{settings.label}: training loss became {value} at step {step}; lower the learning rate (now peak {settings.lr:.3g})")
            losses.append(value)
            bar.update(batch_tokens)
            bar.set_postfix(step=f"{step + 1}/{settings.steps}", loss=f"{value:.3f}", refresh=False)
            done = step + 1
            if checkpoint_dir is not None and settings.checkpoint_every and done % settings.checkpoint_every == 0 and done < settings.steps:
                checkpoints.save(checkpoint_dir, done, accelerator=accelerator, model=wrapped, optimizer=optimizer, sampler_state=sampler.state_dict(), state={"losses": losses})
            if on_step is not None:
                on_step(done)
    bar.close()
    seconds = time.perf_counter() - started
    accelerator.wait_for_everyone()
    if checkpoint_dir is not None and accelerator.is_main_process:
        import shutil

        shutil.rmtree(checkpoint_dir, ignore_errors=True)  # complete: nothing to resume any more
    memory = tracker.result()["train"]
    trained = accelerator.unwrap_model(wrapped)
    trained.to(home)
    ran = settings.steps - start
    tokens_per_s = round(ran * batch_tokens / seconds, 1) if seconds > 0 else 0.0
    if show:
        from compress.units import format_bytes

        peak = memory.get("cuda_max_allocated_bytes") or memory.get("peak_rss_bytes")
        where = "CUDA peak" if memory.get("cuda_max_allocated_bytes") else "peak RSS"
        print(f"{settings.label}: {ran * batch_tokens:,} tokens in {seconds:.1f}s, {tokens_per_s:,.0f} tokens/s, {where} {format_bytes(peak)}", file=sys.stderr)
    return TrainResult(
        losses=losses,
        steps=settings.steps,
        tokens=settings.steps * batch_tokens,
        seconds=round(seconds, 3),
        tokens_per_s=tokens_per_s,
        peak_rss_bytes=memory.get("peak_rss_bytes"),
        peak_cuda_bytes=memory.get("cuda_max_allocated_bytes"),
        resumed_from=start,
        processes=accelerator.num_processes,
        backend=torch.distributed.get_backend() if torch.distributed.is_available() and torch.distributed.is_initialized() else None,
        logs=logs,
    )


def run(model: nn.Module, runs: list, context) -> None:
    """The framework's entry: train each pass of `runs` (consecutive `train`-engine passes) in order.

    Each algorithm prepares the module to train from the model, the loop trains it, and
    `finish` returns the touched modules, which the framework checks and reports. With
    `context.work_dir` set, checkpoints go to `<work_dir>/<pass>-<config hash>` and a rerun of
    the same job resumes there.
    """
    import hashlib
    import json

    from compress.formats.dense import module_bytes

    for pass_run in runs:
        algorithm = pass_run.algorithm
        started = time.perf_counter()
        before = {name: module_bytes(module) for name, module in model.named_modules() if name}
        module = algorithm.prepare(model)
        work_dir = getattr(context, "work_dir", None)
        checkpoint_dir = None
        if work_dir is not None:
            digest = hashlib.sha256(json.dumps(pass_run.config.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:10]
            checkpoint_dir = Path(work_dir) / f"{pass_run.name}-{digest}"
        result = train(
            module,
            algorithm.loss,
            algorithm.sampler(),
            algorithm.settings(),
            accelerator=make_accelerator(getattr(context, "device", None)),
            checkpoint_dir=checkpoint_dir,
            after_step=getattr(algorithm, "after_step", None),
            progress=context.progress,
        )
        module.eval()
        for name in algorithm.finish(module, result):
            pass_run.touch(name, before.get(name, 0), model.get_submodule(name))
        pass_run.seconds += time.perf_counter() - started
