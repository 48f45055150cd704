"""`bnb`: bitsandbytes quantization, nf4 / fp4 (QLoRA) or int8 (LLM.int8), in transformers' format.

Every selected linear (GPT-2 `Conv1D` included) becomes a `bitsandbytes` layer holding the
real quantized tensors, and `config.quantization_config` records how, so the folder
`compress.save` writes reloads with plain `transformers.AutoModelForCausalLM.from_pretrained`
(no scalecompress needed), on CPU or GPU. nf4: 4-bit NormalFloat codes per block of 64
weights with an absmax each (double quantization stores those absmaxes in 8 bits too); int8:
per-row int8 weights, and at run time the input columns above `threshold` go through fp16.

    >>> import torch, compress, transformers
    >>> from compress.passes import BnbConfig
    >>> config = transformers.LlamaConfig(vocab_size=64, hidden_size=64, intermediate_size=128,
    ...     num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=4)
    >>> model = transformers.AutoModelForCausalLM.from_config(config)
    >>> model, [report] = compress.apply(model, [BnbConfig(kind="nf4")], progress=False)
    >>> type(model.model.layers[0].mlp.up_proj).__name__, model.config.quantization_config["bnb_4bit_quant_type"]
    ('Linear4bit', 'nf4')
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field
from torch import nn

from compress.algorithms.quantization.grid import quantizable_linears
from compress.core.config import PassConfig
from compress.core.registry import register_pass
from compress.core.targets import is_linear
from compress.errors import UserError
from compress.formats.base import PackedModule
from compress.formats.bnb import is_bnb_linear, quantization_config, to_bnb_linear


class BnbConfig(PassConfig):
    """bitsandbytes weight quantization, saved in transformers' own bitsandbytes format."""

    pass_name: ClassVar[str] = "bnb"

    kind: Literal["nf4", "fp4", "int8"] = Field("nf4", description="'nf4' or 'fp4': 4-bit codes per block of 64 (QLoRA); 'int8': LLM.int8 with fp16 outlier columns.")
    double_quant: bool = Field(True, description="4-bit only: store the per-block absmax constants in 8 bits too (saves ~0.4 bits per weight).")
    compute_dtype: Literal["float32", "bfloat16", "float16"] = Field("float32", description="4-bit only: dtype the dequantized weight is multiplied in.")
    threshold: float = Field(6.0, ge=0.0, description="int8 only: input columns with any |x| above this run in fp16 (LLM.int8's outliers); 0 turns that off.")

    def tag(self) -> str:
        """Short variant name: 'bnb-nf4', 'bnb-fp4', 'bnb-int8'."""
        return f"bnb-{self.kind}"


def plan_bnb(model: nn.Module, config: BnbConfig) -> list[tuple[str, int, int]]:
    """(module, bytes now, bytes after), after from bitsandbytes' layouts (the quant-state JSON estimated)."""
    from compress.formats.dense import module_bytes, weight_matrix

    rows = []
    for name, module in quantizable_linears(model, config.targets, config.ignore, "bnb"):
        out_features, in_features = weight_matrix(module).shape
        bias = getattr(module, "bias", None)
        bias_bytes = bias.numel() * bias.element_size() if bias is not None else 0
        rows.append((name, module_bytes(module), _bnb_bytes(out_features, in_features, config) + bias_bytes))
    return rows


def _bnb_bytes(out_features: int, in_features: int, config: BnbConfig) -> int:
    weights = out_features * in_features
    if config.kind == "int8":
        return weights + 4 * out_features + 1  # int8 rows, an fp32 scale per row (SCB), a format byte
    blocks = -(-weights // 64)  # one absmax per 64 weights
    code_table, state_json = 16 * 4, 170  # the 16-value nf4/fp4 table; the quant state as JSON (~170 bytes)
    if config.double_quant:  # absmax as 8-bit codes, with an fp32 absmax per 256 of them and a 256-entry table
        statistics = blocks + 4 * -(-blocks // 256) + 256 * 4
    else:
        statistics = 4 * blocks
    return -(-weights // 2) + statistics + code_table + state_json


@register_pass(BnbConfig, engine="oneshot", description="bitsandbytes nf4/fp4/int8 (LLM.int8), saved so plain transformers reloads it.", plan=plan_bnb)
class Bnb:
    def __init__(self, config: BnbConfig, context=None) -> None:
        self.config = config
        self.converted: list[str] = []

    def compress_model(self, model: nn.Module) -> list[str]:
        config = self.config
        if any(isinstance(m, PackedModule) or is_bnb_linear(m) for m in model.modules()):
            raise UserError("bnb: the model already holds quantized layers; bnb must be its only quantization pass (its checkpoint is transformers' bitsandbytes format)")
        for name, module in quantizable_linears(model, config.targets, config.ignore, "bnb"):
            model.set_submodule(name, to_bnb_linear(module, kind=config.kind, double_quant=config.double_quant, compute_dtype=config.compute_dtype, threshold=config.threshold))
            self.converted.append(name)
        if self.converted and getattr(model, "config", None) is not None:
            dense = [name for name, module in model.named_modules() if name and is_linear(module)]
            model.config.quantization_config = quantization_config(
                kind=config.kind, double_quant=config.double_quant, compute_dtype=config.compute_dtype, threshold=config.threshold, skip=dense
            )
        return list(self.converted)

    def details(self) -> dict:
        config = self.config
        return {"kind": config.kind, "double_quant": config.double_quant, "compute_dtype": config.compute_dtype, "threshold": config.threshold, "format": "bitsandbytes"}
