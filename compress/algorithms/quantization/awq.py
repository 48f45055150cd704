"""`awq`: activation-aware weight quantization (Lin et al. 2023), stored packed like `rtn`.

Per block, on the calibration data: for every norm -> linears group of the architecture
(`compress.engines.mappings`), search the per-input-channel scale s = mean|x|^alpha that
minimises the block's output error once the group's weights are quantized, fold it into the
producer (norm weight / s, or the previous linear's rows / s) and the linears' inputs (· s), so
inference computes nothing extra. Then (optionally) search a clipping threshold per weight group,
and round to nearest into the same packed `QuantizedLinear` as `rtn`: an AWQ model decodes
exactly as fast as an RTN one. The maths is in `awq_search.py`.

    >>> import torch, compress, transformers
    >>> from compress.passes import AWQConfig
    >>> config = transformers.LlamaConfig(vocab_size=64, hidden_size=64, intermediate_size=128,
    ...     num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=4)
    >>> model = transformers.AutoModelForCausalLM.from_config(config)
    >>> tokens = torch.randint(0, 64, (4, 32))
    >>> model, [report] = compress.apply(model, [AWQConfig(bits=4, group_size=32)], data=tokens, progress=False)
    >>> type(model.model.layers[0].mlp.down_proj).__name__, len(report.details["alpha"])
    ('QuantizedLinear', 4)
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import Field

from compress.algorithms.quantization.awq_search import apply_clip, fake_quantize, search_clip, search_scales
from compress.algorithms.quantization.rtn import RTN, RTNConfig, plan_rtn
from compress.core.config import PassConfig
from compress.core.registry import register_pass
from compress.engines.mappings import block_mappings, fold_scales
from compress.formats.dense import weight_matrix
from compress.formats.quantized_linear import QuantizedLinear

# Linears whose outputs meet in the attention scores: the reference leaves them unclipped.
_NO_CLIP = ("q_proj", "k_proj", "query_key_value", "c_attn")


class AWQConfig(PassConfig):
    """Activation-aware scale search, then round-to-nearest into packed integers."""

    pass_name: ClassVar[str] = "awq"

    bits: int = Field(4, ge=2, le=8, description="Bits per weight, 2..8 (AWQ's paper: 3 and 4).")
    group_size: int | None = Field(128, ge=8, description="Inputs sharing one scale/zero per output row; null = per channel. As in rtn.")
    symmetric: bool = Field(False, description="Symmetric grid (no zero points) instead of min-max asymmetric (the paper's).")
    grid: int = Field(20, ge=2, le=200, description="Scale-search points: alpha in {0, 1/grid, ..., (grid-1)/grid}; the paper uses 20.")
    clip: Literal["search", "none"] = Field("search", description="'search': per-group clipping threshold search after scaling (llm-awq's auto_clip); 'none': min-max.")
    clip_tokens: int = Field(512, ge=16, le=65536, description="Calibration tokens per layer the clipping search uses (llm-awq: 512).")

    def tag(self) -> str:
        """Short variant name, e.g. 'awq-w4-g128'."""
        grouping = f"g{self.group_size}" if self.group_size else "pc"
        return f"awq-w{self.bits}-{grouping}" + ("-sym" if self.symmetric else "") + ("-noclip" if self.clip == "none" else "")

    def rtn(self) -> RTNConfig:
        return RTNConfig(bits=self.bits, group_size=self.group_size, symmetric=self.symmetric, targets=self.targets, ignore=self.ignore)


def plan_awq(model, config: AWQConfig):
    """Same packed bytes as rtn at these bits and groups."""
    return plan_rtn(model, config.rtn())


@register_pass(
    AWQConfig,
    engine="sequential",
    needs={"calibration"},
    description="Activation-aware weight quantization: per-channel scales searched on calibration data and folded into norms, then packed like rtn.",
    plan=plan_awq,
)
class AWQ:
    def __init__(self, config: AWQConfig, context=None) -> None:
        self.config = config
        self.rtn = RTN(config.rtn(), context)
        self.samples: dict[str, list[torch.Tensor]] = {}  # token rows per layer, for the clipping search
        self.observed: set[str] = set()
        self.alpha: dict[str, float] = {}
        self.gain: dict[str, float] = {}  # block-output error at the chosen alpha / at alpha = 0 (RTN)

    def _quantize(self, weight: torch.Tensor) -> torch.Tensor:
        return fake_quantize(weight, self.config.bits, self.config.group_size, self.config.symmetric)

    def observe(self, name, module, inputs, stats) -> None:
        stats.input_abs(name, inputs.shape[1]).add(inputs)
        self.observed.add(name)
        if self.config.clip == "search" and not name.endswith(_NO_CLIP):  # up to clip_tokens rows of every batch
            step = max(1, len(inputs) // self.config.clip_tokens)
            self.samples.setdefault(name, []).append(inputs[::step][: self.config.clip_tokens].clone())

    def clip_inputs(self, name: str) -> torch.Tensor:
        """`clip_tokens` rows taken with one stride over all calibration tokens (llm-awq's auto_clip sampling)."""
        rows = torch.cat(self.samples[name])
        return rows[:: max(1, len(rows) // self.config.clip_tokens)][: self.config.clip_tokens]

    def compress_block(self, block, block_name, stats, run_block) -> None:
        reference = run_block(block)
        observed = {name for name in self.observed if name.startswith(f"{block_name}.")}
        self.observed -= observed
        for mapping in block_mappings(block, pass_name="awq"):
            names = [f"{block_name}.{relative}" for relative in mapping.balance]
            if not all(name in observed for name in names):
                continue  # a linear of the group is not a target: leave the group as it is
            weights = [weight_matrix(module).detach().clone() for module in mapping.balance_modules]

            def loss(candidate, modules=mapping.balance_modules):
                for module, weight in zip(modules, candidate):
                    weight_matrix(module).copy_(weight)
                outputs = run_block(block)
                return sum(float((out - ref).float().pow(2).sum()) for out, ref in zip(outputs, reference)) / sum(r.numel() for r in reference)

            scales, alpha, losses = search_scales(weights, stats.input_abs(names[0]).mean().float(), loss, self._quantize, self.config.grid)
            for module, weight in zip(mapping.balance_modules, weights):
                weight_matrix(module).copy_(weight)
            fold_scales(mapping, scales)
            key = f"{block_name}.{mapping.smooth}"
            self.alpha[key] = alpha
            self.gain[key] = round(min(losses) / losses[0], 4) if losses[0] > 0 else 1.0
            for name in names:
                if name in self.samples:
                    self.samples[name] = [x / scales for x in self.samples[name]]
        if self.config.clip == "search":
            for name in sorted(observed):
                if not name.endswith(_NO_CLIP) and self.samples.get(name):
                    weight = weight_matrix(block.get_submodule(name[len(block_name) + 1 :]))
                    thresholds = search_clip(weight.detach(), self.clip_inputs(name), self._quantize, self.config.group_size)
                    apply_clip(weight, thresholds, self.config.group_size)
        for name in observed:
            self.samples.pop(name, None)

    def compress(self, name, module, stats=None) -> QuantizedLinear:
        return self.rtn.compress(name, module)

    def details(self) -> dict:
        return {
            **self.rtn.details(),
            "grid": self.config.grid,
            "clip": self.config.clip,
            "alpha": self.alpha,
            "loss_vs_rtn": self.gain,
        }
