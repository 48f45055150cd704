"""`smoothquant`: migrate activation outliers into the weights (Xiao et al. 2022), then W8A8.

Per block, on the calibration data: for every norm -> linears group (`compress.engines.mappings`)
take each input channel's activation range max|X_j| and the weights' range max|W_j| over the
group, and divide the channel by

    s_j = max|X_j|^alpha / max|W_j|^(1 - alpha)

folded into the norm (weight and bias / s) and the linears' input columns (· s): the function
is unchanged, the activations are flatter, the weights a little less so. Then every selected
linear becomes an `Int8Linear`: int8 per-channel weights, per-token int8 activations, a real
int8 GEMM (`compress.formats.w8a8`). alpha = 0.5 is the paper's default (0.75–0.85 for models
with strong outliers).

    >>> import torch, compress, transformers
    >>> from compress.passes import SmoothQuantConfig
    >>> config = transformers.LlamaConfig(vocab_size=64, hidden_size=64, intermediate_size=128,
    ...     num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=4)
    >>> model = transformers.AutoModelForCausalLM.from_config(config)
    >>> model, [report] = compress.apply(model, [SmoothQuantConfig()], data=torch.randint(0, 64, (4, 32)), progress=False)
    >>> type(model.model.layers[0].self_attn.q_proj).__name__, report.details["format"]
    ('Int8Linear', 'w8a8')
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import Field
from torch import nn

from compress.core.config import PassConfig
from compress.core.registry import register_pass
from compress.core.targets import select_linears
from compress.engines.mappings import block_mappings, fold_scales
from compress.formats.dense import module_bytes, weight_matrix
from compress.formats.w8a8 import Int8Linear


class SmoothQuantConfig(PassConfig):
    """Smoothing folded into the norms, then int8 weights x per-token int8 activations."""

    pass_name: ClassVar[str] = "smoothquant"

    alpha: float = Field(0.5, ge=0.0, le=1.0, description="Migration strength: 0 leaves activations alone, 1 moves all their range into the weights. Paper: 0.5; 0.75-0.85 for outlier-heavy models.")

    def tag(self) -> str:
        """Short variant name, e.g. 'smoothquant-a0.5-w8a8'."""
        return f"smoothquant-a{self.alpha:g}-w8a8"


def smoothing_scales(activation_max: torch.Tensor, weight_max: torch.Tensor, alpha: float) -> torch.Tensor:
    """s_j = max|X_j|^alpha / max|W_j|^(1-alpha), floored at 1e-5 as in the reference; 1 for channels never active.

    >>> smoothing_scales(torch.tensor([4.0, 0.0]), torch.tensor([1.0, 2.0]), 0.5).tolist()
    [2.0, 1.0]
    """
    activation_max = activation_max.double()
    scales = (activation_max.pow(alpha) / weight_max.double().clamp(min=1e-5).pow(1 - alpha)).clamp(min=1e-5)
    return torch.where(activation_max > 0, scales, torch.ones_like(scales))


def plan_smoothquant(model: nn.Module, config: SmoothQuantConfig) -> list[tuple[str, int, int]]:
    """(module, bytes now, bytes after): one byte per weight, an fp32 scale per output, the bias."""
    rows = []
    for name, module in select_linears(model, config.targets, config.ignore):
        out_features, in_features = weight_matrix(module).shape
        bias = getattr(module, "bias", None)
        rows.append((name, module_bytes(module), out_features * in_features + out_features * 4 + (bias.numel() * bias.element_size() if bias is not None else 0)))
    return rows


@register_pass(
    SmoothQuantConfig,
    engine="sequential",
    needs={"calibration"},
    description="SmoothQuant: activation outliers migrated into weights (folded into norms), then W8A8 on a real int8 GEMM.",
    plan=plan_smoothquant,
)
class SmoothQuant:
    def __init__(self, config: SmoothQuantConfig, context=None) -> None:
        self.config = config
        self.observed: set[str] = set()
        self.smoothed: list[str] = []
        self.kernel = None

    def observe(self, name, module, inputs, stats) -> None:
        stats.abs_max(name, inputs.shape[1]).add(inputs)
        self.observed.add(name)

    def compress_block(self, block, block_name, stats, run_block) -> None:
        observed = {name for name in self.observed if name.startswith(f"{block_name}.")}
        self.observed -= observed
        for mapping in block_mappings(block, pass_name="smoothquant"):
            names = [f"{block_name}.{relative}" for relative in mapping.balance]
            if not mapping.producer_is_norm or not all(name in observed for name in names):
                continue
            weight_max = torch.stack([weight_matrix(m).detach().abs().amax(dim=0) for m in mapping.balance_modules]).amax(dim=0)
            fold_scales(mapping, smoothing_scales(stats.abs_max(names[0]).max, weight_max, self.config.alpha))
            self.smoothed.append(f"{block_name}.{mapping.smooth}")

    def compress(self, name, module, stats=None) -> Int8Linear:
        layer = Int8Linear.from_linear(module)
        self.kernel = layer.kernel_name()
        return layer

    def details(self) -> dict:
        return {"alpha": self.config.alpha, "format": Int8Linear.format_name, "kernel": self.kernel, "smoothed": self.smoothed}
