"""bitsandbytes layers built from dense linears, kept in transformers' own serialization.

A model whose linears are `bnb.nn.Linear4bit` (nf4/fp4, optional double quantization of the
absmax statistics) or `bnb.nn.Linear8bitLt` (LLM.int8 with its outlier threshold) saves its
real quantized tensors (`weight`, `weight.absmax`, `weight.quant_map`, ... or `weight`, `SCB`)
through `state_dict()`, exactly as `save_pretrained` writes them. With
`config.quantization_config` set to the matching `BitsAndBytesConfig`, the folder that
`compress.save` writes reloads with plain `transformers.AutoModelForCausalLM.from_pretrained`,
without this package. Runs on CPU through bitsandbytes' CPU backend (verified with 0.50.2, the
floor pyproject.toml pins; `tests/formats/test_bnb.py` runs on CPU) and on CUDA.

    >>> import torch
    >>> layer = to_bnb_linear(torch.nn.Linear(64, 32), kind="nf4")
    >>> type(layer).__name__, layer.weight.dtype
    ('Linear4bit', torch.uint8)
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from compress.errors import UserError
from compress.formats.dense import weight_matrix

Kind = Literal["nf4", "fp4", "int8"]
KINDS = ("nf4", "fp4", "int8")
COMPUTE_DTYPES = ("float32", "bfloat16", "float16")


def _bnb():
    try:
        import bitsandbytes
    except ImportError as error:  # declared a dependency, but an install may lack it
        raise UserError("the bnb pass needs bitsandbytes>=0.50.2 (pip install 'bitsandbytes>=0.50.2')") from error
    return bitsandbytes


def is_bnb_linear(module: nn.Module) -> bool:
    """Whether `module` is a bitsandbytes 4-bit or 8-bit linear layer."""
    return type(module).__name__ in ("Linear4bit", "Linear8bitLt") and type(module).__module__.startswith("bitsandbytes")


def logical_numel(module: nn.Module) -> int:
    """Parameters of the dense layer a bitsandbytes layer stands for (its packed weight counts fewer)."""
    bias = module.bias.numel() if module.bias is not None else 0
    return module.in_features * module.out_features + bias


@torch.no_grad()
def to_bnb_linear(
    module: nn.Module,
    *,
    kind: Kind = "nf4",
    double_quant: bool = True,
    compute_dtype: str = "float32",
    threshold: float = 6.0,
) -> nn.Module:
    """A bitsandbytes layer holding `module`'s weight (nn.Linear or GPT-2 Conv1D) quantized.

    The weight is quantized where it lies (CPU or CUDA); the bias is kept in its dtype.
    """
    bnb = _bnb()
    weight = weight_matrix(module).detach().float().contiguous()
    device = weight.device
    bias = getattr(module, "bias", None)
    out_features, in_features = weight.shape
    if kind == "int8":
        layer = bnb.nn.Linear8bitLt(in_features, out_features, bias=bias is not None, has_fp16_weights=False, threshold=threshold, device="meta")
        layer.weight = bnb.nn.Int8Params(weight.clone(), requires_grad=False, has_fp16_weights=False)
    elif kind in ("nf4", "fp4"):
        layer = bnb.nn.Linear4bit(
            in_features, out_features, bias=bias is not None, compute_dtype=getattr(torch, compute_dtype), compress_statistics=double_quant, quant_type=kind, device="meta"
        )
        layer.weight = bnb.nn.Params4bit(weight.clone(), requires_grad=False, compress_statistics=double_quant, quant_type=kind, quant_storage=torch.uint8)
    else:
        raise UserError(f"bnb: unknown kind {kind!r}; allowed: {', '.join(KINDS)}")
    if bias is not None:
        layer.bias = nn.Parameter(bias.detach().clone(), requires_grad=False)
    layer.train(module.training)  # LLM.int8 takes another path in training mode
    return layer.to(device)  # moving the weight to a device is what quantizes it


def quantization_config(*, kind: Kind, double_quant: bool, compute_dtype: str, threshold: float, skip: list[str]) -> dict[str, Any]:
    """The `config.quantization_config` transformers reads to rebuild these layers on load.

    `skip`: full names of linear layers left dense (transformers would convert them otherwise).
    """
    from transformers import BitsAndBytesConfig

    if kind == "int8":
        config = BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=threshold, llm_int8_skip_modules=skip)
    else:
        config = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=kind,
            bnb_4bit_use_double_quant=double_quant,
            bnb_4bit_compute_dtype=getattr(torch, compute_dtype),
            bnb_4bit_quant_storage="uint8",
            llm_int8_skip_modules=skip,
        )
    return config.to_dict()
