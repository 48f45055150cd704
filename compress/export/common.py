"""What every export format needs: the source model, its weights as the dense model reads
them, the original layer types, and atomic output.

A packed layer (`QuantizedLinear`, sparse formats) replaced an `nn.Linear` or a GPT-2 `Conv1D`;
the consumer's reader expects the original layer, so `original_types` rebuilds the model's
skeleton on the meta device (no memory, no weights) and reads which one each name had.

    >>> import torch
    >>> from compress.export.common import dense_weight
    >>> dense_weight(torch.nn.Linear(3, 2)).shape
    torch.Size([2, 3])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from compress.errors import UserError
from compress.formats.base import PackedModule
from compress.formats.dense import weight_matrix


class Source(NamedTuple):
    model: nn.Module
    tokenizer: Any
    path: Path | None  # the checkpoint folder the model came from, when it came from one


def resolve_source(model_or_path: Any, tokenizer: Any = None) -> Source:
    """A loaded model from a model object or a checkpoint folder this package (or HF) saved."""
    if isinstance(model_or_path, nn.Module):
        return Source(model_or_path, tokenizer, None)
    from compress.checkpoint import load

    path = Path(str(model_or_path)).expanduser()
    if not path.is_dir():
        raise UserError(f"export: {model_or_path!s} is not a checkpoint folder; pass a folder written by `scalecompress run`/compress.save or save_pretrained")
    loaded = load(path)
    return Source(loaded.model, tokenizer if tokenizer is not None else loaded.tokenizer, path)


def original_types(model: nn.Module) -> dict[str, str]:
    """Class name of every module of the dense architecture, by name (e.g. 'Linear', 'Conv1D')."""
    import transformers

    config = getattr(model, "config", None)
    if config is None:
        return {name: type(m).__name__ for name, m in model.named_modules()}
    with torch.device("meta"):
        skeleton = transformers.AutoModelForCausalLM.from_config(config) if _is_causal(model) else type(model)(config)
    return {name: type(m).__name__ for name, m in skeleton.named_modules()}


def _is_causal(model: nn.Module) -> bool:
    return any("CausalLM" in a or "LMHead" in a for a in (getattr(model.config, "architectures", None) or [type(model).__name__]))


def dense_weight(module: nn.Module, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The weight (out, in) of a linear layer, packed or dense, in `dtype`."""
    if isinstance(module, PackedModule):
        weight = module.dequantize()
    else:
        weight = weight_matrix(module).detach()
    return weight.to(dtype)


def model_dtype(model: nn.Module) -> torch.dtype:
    """The dtype of the model's floating-point parameters (embeddings decide)."""
    embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    if embeddings is not None and getattr(embeddings, "weight", None) is not None:
        return embeddings.weight.dtype
    floats = [p.dtype for p in model.parameters() if p.is_floating_point()]
    return floats[0] if floats else torch.float32


def dense_state_dict(model: nn.Module, types: dict[str, str] | None = None) -> dict[str, torch.Tensor]:
    """The state dict of the model with every packed layer written back as its dense original
    (`weight` in the original layout, `bias`), dequantized exactly into fp32 (or the model's dtype
    when that is wider). Tied tensors appear once."""
    from compress.saving import tied_names

    types = types if types is not None else original_types(model)
    dtype = torch.float32 if model_dtype(model).itemsize <= 4 else model_dtype(model)
    aliases = set(tied_names(model))
    packed = {name: m for name, m in model.named_modules() if isinstance(m, PackedModule)}
    state: dict[str, torch.Tensor] = {}
    for key, tensor in model.state_dict().items():
        if key in aliases or tensor is None or any(key.startswith(f"{name}.") for name in packed):
            continue
        state[key] = tensor.detach().to("cpu").contiguous()
    for name, module in packed.items():
        weight = module.dequantize().to(dtype)
        state[f"{name}.weight"] = (weight.t() if types.get(name) == "Conv1D" else weight).contiguous()
        bias = getattr(module, "bias", None)
        if bias is not None:
            state[f"{name}.bias"] = bias.detach().to("cpu").contiguous()
    return state


def dense_copy(model: nn.Module) -> nn.Module:
    """A deep copy whose packed layers are fp32 `nn.Linear`s with the dequantized weights: the
    reference every export's round trip is compared with."""
    import copy

    clone = copy.deepcopy(model)
    for name, module in [(n, m) for n, m in clone.named_modules() if isinstance(m, PackedModule)]:
        bias = getattr(module, "bias", None)
        linear = nn.Linear(module.in_features, module.out_features, bias=bias is not None)
        linear.weight.data = module.dequantize().float()
        if bias is not None:
            linear.bias.data = bias.detach().float()
        clone.set_submodule(name, linear)
    return clone.float().eval()


def folder_bytes(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
