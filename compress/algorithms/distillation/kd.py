"""`distill`: train the compressed student to match its dense teacher (knowledge distillation).

The student is the model as the recipe has it so far (width- or depth-pruned, sparse, or
quantized); the teacher is the recipe's dense source, loaded once. The loss is

    alpha * KL(teacher || student) at temperature T, times T^2
    + beta * cross-entropy on the data + gamma * hidden-state loss (cosine or MSE)

on windows of the recipe's `data:` text (default: the training plays; the test plays are
refused). It runs on the `train` engine, so it checkpoints, resumes, and runs under
`torchrun`/`accelerate launch` like ladder training.

- A sparse student keeps its masks: weights that are exactly zero when training starts are
  zeroed again after every step.
- A quantized student (packed `QuantizedLinear` layers) trains quantization-aware: each packed
  layer becomes a fake-quantized float layer with a straight-through estimator and is packed
  back to the same storage at the end (`train: all`); `train: non_quantized` keeps packed
  layers frozen and trains the rest.
- Widths that differ between student and teacher (width pruning) get a learned linear map per
  matched hidden layer (TinyBERT, Minitron); it is dropped after training.

    >>> DistillConfig(tokens=65536, batch_size=8, seq_len=128).planned_steps()
    64
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from compress.algorithms.distillation.losses import cross_entropy, hidden_loss, kl_divergence, teacher_layer
from compress.algorithms.distillation.qat import FakeQuantLinear
from compress.core.config import PassConfig
from compress.core.registry import register_pass
from compress.core.targets import select_modules
from compress.engines.train import TrainSettings, autocast
from compress.formats.dense import weight_matrix
from compress.formats.quantized_linear import QuantizedLinear

DEFAULT_TOKENS = 262_144


class DistillConfig(PassConfig):
    """Knowledge distillation from the dense teacher into the compressed student."""

    pass_name: ClassVar[str] = "distill"

    tokens: int | None = Field(None, ge=1, description=f"Training tokens (global, rounded up to whole batches); default {DEFAULT_TOKENS:,} when steps is not set.")
    steps: int | None = Field(None, ge=1, description="Optimizer steps instead of tokens (give one of the two).")
    batch_size: int = Field(16, ge=1, description="Sequences per optimizer step, over all processes and micro-batches.")
    seq_len: int = Field(128, ge=8, description="Tokens per training window (keep it within the model's context).")
    lr: float = Field(1e-3, gt=0, le=1, description="Peak learning rate (AdamW); warmup then cosine decay.")
    warmup_fraction: float = Field(0.05, ge=0, lt=1, description="Share of steps in linear warmup (at least 1 step).")
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="Cosine decay ends at this fraction of lr.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW decoupled weight decay on matrices (0: the student should stay near its teacher).")
    grad_clip: float = Field(1.0, gt=0, description="Clip the global gradient norm to this.")
    accumulation: int = Field(1, ge=1, description="Micro-batches per step per process (memory; the global batch stays batch_size).")
    alpha: float = Field(1.0, ge=0, description="Weight of KL(teacher || student) on the logits.")
    temperature: float = Field(1.0, gt=0, description="Softmax temperature of the KL term (its loss is scaled by T^2).")
    beta: float = Field(0.0, ge=0, description="Weight of the cross-entropy on the data's next tokens.")
    gamma: float = Field(0.0, ge=0, description="Weight of the hidden-state loss on hidden_layers (0: off).")
    hidden_loss: Literal["cosine", "mse"] = Field("cosine", description="Hidden-state distance: 1 - cosine, or mean squared error.")
    hidden_layers: list[int] = Field([-1], description="Student hidden states matched when gamma > 0: 0 = embeddings, i = after layer i, -1 = last; the teacher's at the same relative depth.")
    train: Literal["all", "non_quantized"] = Field("all", description="'all': every parameter, packed layers quantization-aware; 'non_quantized': packed layers stay frozen.")
    seed: int = Field(0, description="Seeds the data order and any projection init: same seed, same student.")
    checkpoint_every: int = Field(50, ge=0, description="Steps between resumable checkpoints when the run has an output folder (0: none).")

    @model_validator(mode="after")
    def _consistent(self) -> DistillConfig:
        if self.tokens is not None and self.steps is not None:
            raise ValueError("give tokens or steps, not both (remove one)")
        if self.alpha == self.beta == self.gamma == 0:
            raise ValueError("alpha, beta and gamma are all 0: nothing to learn; set alpha: 1 (KL to the teacher)")
        return self

    def planned_steps(self) -> int:
        if self.steps is not None:
            return self.steps
        return max(1, math.ceil((self.tokens or DEFAULT_TOKENS) / (self.batch_size * self.seq_len)))

    def tag(self) -> str:
        """Short variant name, e.g. 'distill-t262k'."""
        return f"distill-t{round(self.planned_steps() * self.batch_size * self.seq_len / 1000)}k"


class _Student(nn.Module):
    """The trained module: the student plus the hidden-state projections (dropped afterwards)."""

    def __init__(self, model: nn.Module, projections: nn.ModuleList):
        super().__init__()
        self.model, self.projections = model, projections

    def forward(self, **inputs):
        return self.model(**inputs)


def _width(model: nn.Module) -> int:
    return int(model.config.hidden_size)


@register_pass(
    DistillConfig,
    engine="train",
    needs={"teacher", "train_data"},
    description="Knowledge distillation from the dense teacher (KL + CE + hidden states); keeps masks, trains packed layers quantization-aware.",
)
class Distill:
    def __init__(self, config: DistillConfig, context) -> None:
        self.config, self.context = config, context
        self.masks: dict[str, torch.Tensor] = {}
        self.fake: list[str] = []
        self.result = None

    def settings(self) -> TrainSettings:
        config = self.config
        steps = config.planned_steps()
        return TrainSettings(
            steps=steps,
            lr=config.lr,
            warmup_steps=min(steps, max(1, round(config.warmup_fraction * steps))),
            min_lr_ratio=config.min_lr_ratio,
            weight_decay=config.weight_decay,
            grad_clip=config.grad_clip,
            accumulation=config.accumulation,
            checkpoint_every=config.checkpoint_every,
            label="distill",
        )

    def sampler(self):
        return self.context.train_sampler(self.config.batch_size, self.config.seq_len, seed=self.config.seed)

    def prepare(self, model: nn.Module) -> nn.Module:
        config = self.config
        self.teacher = self.context.teacher()
        frozen = {id(p) for _, m in select_modules(model, config.ignore) for p in m.parameters()} if config.ignore else set()
        for name, module in list(model.named_modules()):
            if isinstance(module, QuantizedLinear) and config.train == "all":
                model.set_submodule(name, FakeQuantLinear.from_packed(module))
                self.fake.append(name)
            elif hasattr(module, "weight") and type(module).__name__ in ("Linear", "Conv1D") and module.weight is not None:
                weight = weight_matrix(module)
                if bool((weight == 0).any()):  # a pruned layer: its zeros stay zero
                    self.masks[name] = (module.weight != 0).detach().clone()
        for parameter in model.parameters():
            parameter.requires_grad_(id(parameter) not in frozen)
        projections = nn.ModuleList()
        if config.gamma > 0:
            torch.manual_seed(config.seed)
            student, teacher = _width(model), _width(self.teacher)
            for _ in config.hidden_layers:
                projections.append(nn.Identity() if student == teacher else nn.Linear(student, teacher, bias=False))
        return _Student(model, projections)

    def loss(self, module: nn.Module, inputs: torch.Tensor, targets: torch.Tensor):
        config = self.config
        hidden = config.gamma > 0
        out = module(input_ids=inputs, output_hidden_states=hidden)
        if next(self.teacher.parameters()).device != inputs.device:
            self.teacher.to(inputs.device)
        with torch.no_grad(), autocast(inputs.device):
            taught = self.teacher(input_ids=inputs, output_hidden_states=hidden)
        total, parts = 0.0, {}
        if config.alpha > 0:
            parts["kl"] = kl_divergence(out.logits, taught.logits, config.temperature)
            total = total + config.alpha * parts["kl"]
        if config.beta > 0:
            parts["ce"] = cross_entropy(out.logits, targets)
            total = total + config.beta * parts["ce"]
        if hidden:
            projections = (module.module if hasattr(module, "module") else module).projections
            student_states, teacher_states = out.hidden_states, taught.hidden_states
            terms = []
            for layer, projection in zip(config.hidden_layers, projections):
                index = layer % len(student_states)
                target = teacher_states[teacher_layer(index, len(student_states) - 1, len(teacher_states) - 1)]
                terms.append(hidden_loss(projection(student_states[index].float()), target, config.hidden_loss))
            parts["hidden"] = sum(terms) / len(terms)
            total = total + config.gamma * parts["hidden"]
        return total, {k: round(float(v.detach()), 5) for k, v in parts.items()}

    @torch.no_grad()
    def after_step(self, module: nn.Module) -> None:
        for name, mask in self.masks.items():
            module.model.get_submodule(name).weight.mul_(mask)

    def finish(self, module: nn.Module, result) -> list[str]:
        """Pack the quantization-aware layers; the touched modules are every layer that trained."""
        model = module.model
        for name in self.fake:
            model.set_submodule(name, model.get_submodule(name).pack())
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        self.result = result
        trained = {name for name, m in model.named_modules() if name and any(True for _ in m.parameters(recurse=False))}
        linear = [name for name, m in model.named_modules() if isinstance(m, QuantizedLinear) or type(m).__name__ in ("Linear", "Conv1D")]
        return [name for name in linear if name in trained or name in self.fake]

    def details(self) -> dict:
        result = self.result
        if result is None:
            return {}
        tail = result.losses[-max(1, len(result.losses) // 10) :]
        return {
            "train_tokens": result.tokens,
            "teacher_forward_tokens": result.tokens,  # one teacher forward per student training token
            "steps": result.steps,
            "resumed_from_step": result.resumed_from,
            "final_loss": round(sum(tail) / len(tail), 5),
            "loss_parts": result.logs,
            "tokens_per_s": result.tokens_per_s,
            "train_seconds": result.seconds,
            "peak_rss_bytes": result.peak_rss_bytes,
            "peak_cuda_bytes": result.peak_cuda_bytes,
            "processes": result.processes,
            "backend": result.backend,
            "masked_layers": len(self.masks),
            "quantization_aware_layers": len(self.fake),
        }
