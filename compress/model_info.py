"""What a model is: architecture, parameter counts (total and non-embedding), stored bytes.

Packed layers count at the size of the dense layer they replace for parameters, and at their
packed size for bytes, so a 4-bit model has the params of its source and a quarter of its bytes.

    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Linear(4, 4))
    >>> count_params(model), weight_bytes(model)
    ((60, 20), 240)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from torch import nn

from compress.formats.base import PackedModule
from compress.formats.bnb import is_bnb_linear
from compress.formats.bnb import logical_numel as bnb_logical_numel


@dataclass(frozen=True)
class ModelInfo:
    source: str
    architecture: str
    model_type: str
    params: int  # all parameters, shared tensors once, packed layers at their dense size
    non_embedding_params: int  # without token/position embeddings and the output head (Kaplan)
    dtype: str
    weight_bytes: int  # bytes of parameters + persistent buffers as stored (packed bytes count)
    compressed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def storage_key(tensor) -> tuple[int, int]:
    """Identifies the memory a tensor views: tied weights share one key. Empty tensors are unique."""
    if not tensor.numel():
        return (id(tensor), 0)
    return (tensor.untyped_storage().data_ptr(), tensor.storage_offset())


def _unique_tensors(model: nn.Module, include_buffers: bool):
    seen: set[tuple[int, int]] = set()
    tensors = list(model.named_parameters(remove_duplicate=False))
    if include_buffers:
        tensors += list(model.state_dict(keep_vars=True).items())
    for name, tensor in tensors:
        if tensor is None or tensor.device.type == "meta":
            continue
        key = storage_key(tensor)
        if key in seen:
            continue
        seen.add(key)
        yield name, tensor


def weight_bytes(model: nn.Module) -> int:
    """Bytes of all parameters and persistent buffers as held (and saved), shared ones once."""
    from compress.units import tensor_bytes

    return tensor_bytes(t for _, t in _unique_tensors(model, include_buffers=True))


def count_params(model: nn.Module) -> tuple[int, int]:
    """(total, non_embedding) parameter counts at the dense architecture's size.

    Packed layers count as the dense layer they replace. Non-embedding excludes every
    `nn.Embedding` (tokens, positions) and the output head, as Kaplan et al. count N.
    """
    counted: set[int] = set()
    total = 0
    embedding = 0
    for module in model.modules():
        if isinstance(module, PackedModule):
            total += module.logical_numel()
            if getattr(module, "format_name", "") == "packed_embedding":
                embedding += module.logical_numel()  # a packed token table (0 when tied: the head counts it)
            continue
        if is_bnb_linear(module):  # bitsandbytes packs two 4-bit weights per stored element
            total += bnb_logical_numel(module)
            continue
        for param in module.parameters(recurse=False):
            if id(param) in counted:
                continue
            counted.add(id(param))
            total += param.numel()
            if isinstance(module, nn.Embedding):
                embedding += param.numel()
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if output is not None:
        if isinstance(output, PackedModule):
            embedding += output.logical_numel()
        else:
            weight = getattr(output, "weight", None)
            input_embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
            tied = weight is not None and input_embeddings is not None and weight is getattr(input_embeddings, "weight", None)
            if weight is not None and not tied:
                embedding += weight.numel()
    return total, total - embedding


def model_info(model: nn.Module, source: str = "") -> ModelInfo:
    """Describe a model in memory: architecture, parameter counts, dtype, stored bytes."""
    config = getattr(model, "config", None)
    architectures = getattr(config, "architectures", None) or [type(model).__name__]
    total, non_embedding = count_params(model)
    floating = [p.dtype for p in model.parameters() if p.is_floating_point()]
    return ModelInfo(
        source=source,
        architecture=architectures[0],
        model_type=getattr(config, "model_type", "unknown"),
        params=total,
        non_embedding_params=non_embedding,
        dtype=str(floating[0]).replace("torch.", "") if floating else "unknown",
        weight_bytes=weight_bytes(model),
        compressed=any(isinstance(m, PackedModule) for m in model.modules()),
    )
