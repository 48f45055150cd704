"""`structured`: width pruning — remove attention heads and MLP channels, so every matrix
really shrinks and the result is an ordinary, smaller checkpoint.

What is removed, uniformly in every block (so `config.json` can describe the model):
- attention heads: for grouped-query attention whole KV groups (a key/value head with all the
  query heads that read it), else single heads; q/k/v rows and o_proj columns go together;
- MLP intermediate channels: the coupled group gate/up rows + down column, found by
  torch-pruning's dependency graph traced through one block's MLP.

Importance of a head group / channel, per block:
- `magnitude`: Σ w² over all weights of the group (torch-pruning's group L2 magnitude);
- `activation` (Minitron, Muralidharan et al. 2024): the L2 norm over calibration tokens of
  what the group writes into its output projection (a head's attention output, a channel's
  gated activation);
- `taylor` (LLM-Pruner, first order): Σ |w · ∂L/∂w| over the group's weights, gradients of the
  LM loss on the calibration data.

`num_attention_heads`, `num_key_value_heads`, `head_dim` and `intermediate_size` are rewritten,
so plain `transformers.AutoModelForCausalLM.from_pretrained` reloads the saved folder.

    >>> import torch, transformers, compress
    >>> from compress.passes import StructuredConfig
    >>> config = transformers.LlamaConfig(vocab_size=32, hidden_size=48, intermediate_size=64,
    ...     num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=4)
    >>> model = transformers.AutoModelForCausalLM.from_config(config)
    >>> data = torch.randint(0, 32, (2, 8))
    >>> _ = compress.apply(model, [StructuredConfig()], data, progress=False)
    >>> model.config.num_attention_heads, model.config.intermediate_size
    (3, 48)
"""

from __future__ import annotations

import copy
import warnings
from typing import Literal

import torch
import torch_pruning as tp
from pydantic import Field, model_validator
from torch import nn

from compress.algorithms.pruning.layout import decoder_layout
from compress.core.config import PassConfig
from compress.core.registry import register_pass
from compress.errors import UserError


class StructuredConfig(PassConfig):
    """Width pruning: remove the least important attention heads and MLP channels in every block."""

    pass_name = "structured"

    heads: float = Field(
        0.25, ge=0.0, lt=1.0,
        description="Fraction of attention heads to remove (GQA: of KV groups), rounded to the nearest whole count that leaves a head count dividing hidden_size.",
    )
    mlp: float = Field(0.25, ge=0.0, lt=1.0, description="Fraction of MLP intermediate channels to remove.")
    importance: Literal["magnitude", "activation", "taylor"] = Field(
        "activation", description="'magnitude': group L2 of weights; 'activation': output L2 on calibration data (Minitron); 'taylor': Σ|w·grad| (LLM-Pruner)."
    )
    round_to: int = Field(8, ge=1, description="Keep a multiple of this many MLP channels (matrix kernels prefer multiples of 8).")

    @model_validator(mode="after")
    def _no_targets(self) -> StructuredConfig:
        if self.targets != ["Linear"] or self.ignore:
            raise ValueError("structured prunes every block alike (so config.json can describe the result); targets/ignore do not apply to it: remove them")
        return self

    def tag(self) -> str:
        return f"structured-h{self.heads * 100:g}%-m{self.mlp * 100:g}%" + ("" if self.importance == "activation" else f"-{self.importance}")


def mlp_group(mlp: nn.Module, hidden_size: int) -> list[tuple[str, object]]:
    """(module name inside the MLP, torch-pruning function) of the channel group rooted at
    gate_proj's outputs, from the dependency graph of one MLP (every block has the same)."""
    probe = copy.deepcopy(mlp).float().requires_grad_(True)  # the graph is traced through autograd
    with torch.enable_grad():
        graph = tp.DependencyGraph().build_dependency(probe, example_inputs=torch.zeros(1, 1, hidden_size))
    names = {module: name for name, module in probe.named_modules()}
    group = graph.get_pruning_group(probe.gate_proj, tp.prune_linear_out_channels, idxs=[0])
    coupled = [(names[dep.target.module], dep.handler) for dep, _ in group if dep.target.module in names]
    if {name for name, _ in coupled} != {"gate_proj", "up_proj", "down_proj"}:
        raise UserError(f"structured: the MLP's dependency graph couples {sorted({n for n, _ in coupled})}, not gate/up/down; this MLP is not supported")
    return list(dict.fromkeys(coupled))


class _Statistics:
    """Per-block importance sums filled by hooks on o_proj / down_proj inputs, or by gradients."""

    def __init__(self, blocks: int, heads: int, channels: int) -> None:
        self.heads = torch.zeros(blocks, heads, dtype=torch.float64)
        self.channels = torch.zeros(blocks, channels, dtype=torch.float64)


def _activation_scores(model, layers, tokens, batch_size, head_dim) -> _Statistics:
    attention, mlp = layers[0].self_attn, layers[0].mlp
    stats = _Statistics(len(layers), attention.o_proj.in_features // head_dim, mlp.down_proj.in_features)
    handles = []
    for index, layer in enumerate(layers):
        def heads(module, args, index=index):
            x = args[0].detach().float().reshape(-1, stats.heads.shape[1], head_dim)
            stats.heads[index] += x.square().sum(dim=(0, 2)).double()

        def channels(module, args, index=index):
            stats.channels[index] += args[0].detach().float().reshape(-1, stats.channels.shape[1]).square().sum(0).double()

        handles += [layer.self_attn.o_proj.register_forward_pre_hook(heads), layer.mlp.down_proj.register_forward_pre_hook(channels)]
    try:
        for start in range(0, len(tokens), batch_size):
            model(input_ids=tokens[start : start + batch_size], use_cache=False)
    finally:
        for handle in handles:
            handle.remove()
    stats.heads, stats.channels = stats.heads.sqrt(), stats.channels.sqrt()
    return stats


def _weight_scores(model, layers, head_dim, *, tokens=None, batch_size=8) -> _Statistics:
    """Magnitude (Σ w²) or, with tokens, first-order Taylor (Σ |w·grad|) per head and channel."""
    if tokens is not None:
        trainable = {parameter: parameter.requires_grad for parameter in model.parameters()}
        model.requires_grad_(True)
        try:
            with torch.enable_grad():
                model.zero_grad(set_to_none=True)
                for start in range(0, len(tokens), batch_size):
                    batch = tokens[start : start + batch_size]
                    (model(input_ids=batch, labels=batch, use_cache=False).loss * len(batch) / len(tokens)).backward()
        finally:
            for parameter, flag in trainable.items():
                parameter.requires_grad_(flag)

    def score(linear: nn.Linear) -> torch.Tensor:
        weight = linear.weight.detach().float()
        if tokens is None:
            return weight.square()
        return (weight * linear.weight.grad.float()).abs()

    attention, mlp = layers[0].self_attn, layers[0].mlp
    stats = _Statistics(len(layers), attention.o_proj.in_features // head_dim, mlp.down_proj.in_features)
    heads = stats.heads.shape[1]
    for index, layer in enumerate(layers):
        attn = layer.self_attn
        q = score(attn.q_proj).reshape(heads, -1).sum(1)
        kv_heads = attn.k_proj.out_features // head_dim
        kv = (score(attn.k_proj) + score(attn.v_proj)).reshape(kv_heads, -1).sum(1)
        o = score(attn.o_proj).reshape(attn.o_proj.out_features, heads, head_dim).sum(dim=(0, 2))
        stats.heads[index] = (q + o + kv.repeat_interleave(heads // kv_heads) / (heads // kv_heads)).double()
        mlp = layer.mlp
        stats.channels[index] = (score(mlp.gate_proj).sum(1) + score(mlp.up_proj).sum(1) + score(mlp.down_proj).sum(0)).double()
    if tokens is not None:
        model.zero_grad(set_to_none=True)
    return stats


def _lowest(scores: torch.Tensor, count: int) -> list[int]:
    return sorted(int(i) for i in torch.argsort(scores, stable=True)[:count])


@register_pass(
    StructuredConfig,
    engine="oneshot",
    needs={"calibration"},
    description="Width pruning: remove attention heads (whole KV groups under GQA) and MLP channels uniformly; plain transformers reloads the result.",
)
class Structured:
    """Remove `heads` of the attention heads and `mlp` of the MLP channels of every block."""

    def __init__(self, config: StructuredConfig, context) -> None:
        self.config = config
        self.context = context
        self.summary: dict = {}
        self.note = ""

    def compress_model(self, model: nn.Module) -> list[str]:
        config, hf = self.config, model.config
        layout = decoder_layout(model, "structured", width=True)
        layers = layout.layers
        heads, kv_heads = hf.num_attention_heads, hf.num_key_value_heads or hf.num_attention_heads
        head_dim = layers[0].self_attn.head_dim
        group = heads // kv_heads
        gqa = group > 1
        units = kv_heads if gqa else heads  # what is removed whole: KV groups, or heads
        remove_units = self._head_removals(units, group if gqa else 1, hf.hidden_size, "KV groups" if gqa else "heads")
        channels = hf.intermediate_size
        keep_channels = max(config.round_to, round(channels * (1 - config.mlp) / config.round_to) * config.round_to)
        remove_channels = channels - min(keep_channels, channels)
        if not remove_units and not remove_channels:
            raise UserError("structured: heads and mlp both remove nothing; set heads or mlp above 0")
        stats = self._scores(model, layers, head_dim)
        couple = mlp_group(layers[0].mlp, hf.hidden_size)
        names = []
        for index, layer in enumerate(layers):
            attn, mlp = layer.self_attn, layer.mlp
            if remove_units:
                unit_scores = stats.heads[index].reshape(units, -1).sum(1) if gqa else stats.heads[index]
                dropped = _lowest(unit_scores, remove_units)
                q_heads = [u * group + g for u in dropped for g in range(group)] if gqa else dropped
                kv_drop = dropped if gqa else q_heads
                rows = lambda hs: [h * head_dim + d for h in hs for d in range(head_dim)]  # noqa: E731
                tp.prune_linear_out_channels(attn.q_proj, rows(q_heads))
                tp.prune_linear_out_channels(attn.k_proj, rows(kv_drop))
                tp.prune_linear_out_channels(attn.v_proj, rows(kv_drop))
                tp.prune_linear_in_channels(attn.o_proj, rows(q_heads))
                names += [f"{layout.path}.{index}.self_attn.{p}" for p in ("q_proj", "k_proj", "v_proj", "o_proj")]
            if remove_channels:
                dropped_channels = _lowest(stats.channels[index], remove_channels)
                for name, prune in couple:
                    prune(mlp.get_submodule(name), dropped_channels)
                names += [f"{layout.path}.{index}.mlp.{name}" for name, _ in couple]
        new_heads = heads - (remove_units * group if gqa else remove_units)
        new_kv = kv_heads - remove_units if gqa else new_heads
        for layer in layers:
            layer.self_attn.num_key_value_groups = new_heads // new_kv
            layer.mlp.intermediate_size = channels - remove_channels
        hf.num_attention_heads, hf.num_key_value_heads, hf.head_dim = new_heads, new_kv, head_dim
        hf.intermediate_size = channels - remove_channels
        self.summary = {
            "heads": [heads, new_heads],
            "kv_heads": [kv_heads, new_kv],
            "intermediate_size": [channels, channels - remove_channels],
            "importance": config.importance,
            "stored": "smaller dense matrices",
            **({"heads_note": self.note} if self.note else {}),
        }
        return names

    def _head_removals(self, units: int, heads_per_unit: int, hidden_size: int, what: str) -> int:
        """How many heads (or KV groups) to remove: the count nearest `heads` x units that leaves a
        head count dividing hidden_size (transformers' configs require it), fewer on a tie."""
        wanted = self.config.heads * units
        if not self.config.heads:
            return 0
        allowed = [r for r in range(1, units) if hidden_size % ((units - r) * heads_per_unit) == 0]
        if not allowed:
            raise UserError(f"structured: no number of {what} (of {units}) can be removed leaving a head count that divides hidden_size {hidden_size}; set heads to 0")
        chosen = min(allowed, key=lambda r: (abs(r - wanted), r))
        if abs(chosen - wanted) >= 0.5:
            self.note = (f"heads={self.config.heads} asks for {wanted:g} of {units} {what}; {chosen} are removed, the nearest count "
                         f"leaving a head count that divides hidden_size {hidden_size} (transformers requires it); allowed: {allowed}")
            warnings.warn(f"structured: {self.note}", stacklevel=2)
        return chosen

    def _scores(self, model, layers, head_dim) -> _Statistics:
        if self.config.importance == "magnitude":
            return _weight_scores(model, layers, head_dim)
        tokens = self.context.calibration().to(next(model.parameters()).device)
        batch_size = self.context.data_config.batch_size
        if self.config.importance == "taylor":
            return _weight_scores(model, layers, head_dim, tokens=tokens, batch_size=batch_size)
        return _activation_scores(model, layers, tokens, batch_size, head_dim)

    def details(self) -> dict:
        return self.summary
