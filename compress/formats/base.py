"""The contract every packed weight format follows, so checkpoints save and reload generically.

A packed module replaces one `nn.Linear` (or GPT-2 `Conv1D`) and keeps its weights *really*
smaller (packed integer buffers + fp16 scales). It describes itself with a JSON-able `spec()`;
`compress.checkpoint.save` writes the specs of every packed module into `compression.json`, and
`compress.checkpoint.load` rebuilds empty modules from them with `from_spec()` before reading
the safetensors state dict.

    >>> from compress.formats.base import FORMATS
    >>> isinstance(FORMATS, dict)
    True
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from compress.errors import ScaleCompressError

FORMATS: dict[str, type[PackedModule]] = {}


def register_format(cls: type[PackedModule]) -> type[PackedModule]:
    """Class decorator: make a packed format loadable by its `format_name`."""
    name = cls.format_name
    if name in FORMATS and FORMATS[name] is not cls:
        raise ScaleCompressError(f"packed format {name!r} is registered twice ({FORMATS[name].__module__} and {cls.__module__})")
    FORMATS[name] = cls
    return cls


class PackedModule(nn.Module):
    """Base class of modules that hold a compressed weight and compute with it."""

    format_name: ClassVar[str] = ""
    # Buffers whose dtype is part of the format (fp16 scales): `model.to(bf16)` moves them, never casts them.
    fixed_dtype_buffers: ClassVar[tuple[str, ...]] = ()
    in_features: int
    out_features: int

    def kernel_for(self, rows: int) -> str:
        """The kernel a forward on `rows` token rows would run (recorded by the benchmarks)."""
        return "dequantize-gemm"

    def spec(self) -> dict[str, Any]:
        """Constructor arguments (JSON-able) that rebuild an empty module of the same shapes."""
        raise ScaleCompressError(f"{type(self).__name__} does not implement spec()")

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> PackedModule:
        """An empty module (buffers allocated, not filled) of the shapes `spec` describes."""
        raise ScaleCompressError(f"{cls.__name__} does not implement from_spec()")

    def dequantize(self) -> torch.Tensor:
        """A dense copy of the weight, shaped (out_features, in_features), for analysis."""
        raise ScaleCompressError(f"{type(self).__name__} does not implement dequantize()")

    def logical_numel(self) -> int:
        """Parameters of the dense layer this module stands for (weight + bias)."""
        bias = getattr(self, "bias", None)
        return self.in_features * self.out_features + (bias.numel() if bias is not None else 0)


    def _apply(self, fn, recurse=True):
        fixed = {name: self._buffers[name] for name in self.fixed_dtype_buffers if self._buffers.get(name) is not None}
        for name in fixed:
            self._buffers[name] = None
        try:
            super()._apply(fn, recurse)
        finally:
            for name, tensor in fixed.items():
                # Learn the target device from an empty probe, so the values are never cast.
                device = fn(torch.empty(0, dtype=tensor.dtype, device=tensor.device)).device
                self._buffers[name] = torch.empty_like(tensor, device=device) if tensor.is_meta else tensor.to(device)
        return self


def build_packed(spec: dict[str, Any]) -> PackedModule:
    """Rebuild an empty packed module from a manifest entry (`{"format": name, ...}`)."""
    _load_builtin_formats()
    name = spec.get("format")
    if name not in FORMATS:
        raise ScaleCompressError(
            f"checkpoint uses packed format {name!r}, unknown to this version; known: {', '.join(sorted(FORMATS)) or 'none'}. "
            "Upgrade scalecompress or install the package that provides it."
        )
    return FORMATS[name].from_spec(spec)


def _load_builtin_formats() -> None:
    # Importing the package registers the built-in formats (explicit, not discovered).
    import compress.formats  # noqa: F401
