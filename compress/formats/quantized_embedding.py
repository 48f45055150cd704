"""`QuantizedEmbedding` (format "packed_embedding"): a token embedding stored as packed integer
codes with fp16 group scales, dequantized row by row at lookup.

The table is laid out exactly as a `QuantizedLinear` of shape (vocab, hidden) — which is also
the output head's weight — so a model with tied embeddings keeps **one** packed table:

- untied: the module holds the table itself (`qweight`, `scales`, `zeros`, as in
  `compress.formats.quantized_linear`; groups run along the hidden dimension);
- tied (`tied_to="lm_head"`): it holds no tensors; lookups read the rows of the head's packed
  table (whichever layout the head holds: portable, or the CPU kernel's after its first call).
  The checkpoint stores the table once, under the head. `compress.load` (or any
  `model.load_state_dict` of the whole model, `assign=True` included) re-links the two: within
  one `load_state_dict` call the packed head binds the tied embedding that names it.

A lookup dequantizes only the rows asked for: `(q - zero) * scale` of `tokens x hidden` codes,
in the module's dtype (it follows `model.to(dtype)` like a dense embedding's weight would).

    >>> import torch
    >>> dense = torch.nn.Embedding(100, 64)
    >>> packed = QuantizedEmbedding.from_embedding(dense, bits=8, group_size=32)
    >>> ids = torch.tensor([[1, 5, 99]])
    >>> bool((packed(ids) - dense(ids)).abs().max() < 0.02)
    True
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
from torch import nn

from compress.errors import ScaleCompressError
from compress.formats.base import PackedModule, register_format
from compress.formats.quantized_linear import QuantizedLinear, lookup_rows

SPEC_VERSION = 1


@register_format
class QuantizedEmbedding(PackedModule):
    """An embedding table of packed integer codes; see the module docstring."""

    format_name = "packed_embedding"
    fixed_dtype_buffers = ("scales", "zeros")

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        *,
        bits: int = 4,
        group_size: int | None = 128,
        symmetric: bool = False,
        tied_to: str | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.out_features, self.in_features = num_embeddings, embedding_dim  # the table's (rows, columns)
        self.bits, self.group_size, self.symmetric, self.tied_to = bits, group_size, symmetric, tied_to
        self.dtype = dtype  # what lookups return; follows model.to(dtype) like a dense table's weight
        self._table: QuantizedLinear | None = None  # the head serving a tied lookup (not a submodule)
        if tied_to is None:
            own = QuantizedLinear(embedding_dim, num_embeddings, bits=bits, group_size=group_size, symmetric=symmetric, device=device)
            for name in ("qweight", "scales", "zeros"):
                self.register_buffer(name, own._buffers[name])

    # -- building and describing -----------------------------------------------------------

    @classmethod
    def from_embedding(cls, embedding: nn.Module, *, bits: int, group_size: int | None, symmetric: bool = False) -> QuantizedEmbedding:
        """Quantize an `nn.Embedding` to its own packed table (round to nearest)."""
        from compress.algorithms.quantization.grid import rtn_quantize

        weight = embedding.weight.detach()
        table = QuantizedLinear.from_codes(*_rtn(rtn_quantize, weight, bits, group_size, symmetric), bits=bits, group_size=group_size, symmetric=symmetric)
        return cls.from_table(table, dtype=weight.dtype)

    @classmethod
    def from_table(cls, table: QuantizedLinear, *, dtype: torch.dtype = torch.float32) -> QuantizedEmbedding:
        """An untied embedding owning a copy-free view of `table`'s portable buffers."""
        layer = cls(table.out_features, table.in_features, bits=table.bits, group_size=table.group_size, symmetric=table.symmetric, dtype=dtype, device="meta")
        for name in ("qweight", "scales", "zeros"):
            layer._buffers[name] = table._buffers[name]
        return layer

    @classmethod
    def tied(cls, head: QuantizedLinear, head_name: str, *, dtype: torch.dtype = torch.float32) -> QuantizedEmbedding:
        """An embedding whose lookups read the packed output head `head` (stored once, under `head_name`)."""
        layer = cls(head.out_features, head.in_features, bits=head.bits, group_size=head.group_size, symmetric=head.symmetric,
                    tied_to=head_name, dtype=dtype, device=head.scales.device)
        layer.bind(head)
        return layer

    def bind(self, head: QuantizedLinear) -> None:
        """Serve lookups from `head`'s table (a tied embedding)."""
        if (head.out_features, head.in_features) != (self.num_embeddings, self.embedding_dim):
            raise ScaleCompressError(
                f"tied embedding ({self.num_embeddings} x {self.embedding_dim}) cannot read head {self.tied_to!r} of shape "
                f"({head.out_features} x {head.in_features}); the checkpoint's compression.json does not match its weights"
            )
        object.__setattr__(self, "_table", head)  # a reference, not a submodule: the head is saved once, under its own name

    def spec(self) -> dict[str, Any]:
        return {
            "version": SPEC_VERSION,
            "num_embeddings": self.num_embeddings,
            "embedding_dim": self.embedding_dim,
            "bits": self.bits,
            "group_size": self.group_size,
            "symmetric": self.symmetric,
            "tied_to": self.tied_to,
            "dtype": str(self.dtype).removeprefix("torch."),
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> QuantizedEmbedding:
        if spec.get("version", SPEC_VERSION) > SPEC_VERSION:
            raise ScaleCompressError(f"packed_embedding spec version {spec['version']} is newer than this scalecompress (knows {SPEC_VERSION}); upgrade it")
        try:
            return cls(
                int(spec["num_embeddings"]), int(spec["embedding_dim"]), bits=int(spec["bits"]), group_size=spec.get("group_size"),
                symmetric=bool(spec.get("symmetric", False)), tied_to=spec.get("tied_to"), dtype=getattr(torch, spec.get("dtype", "float32")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ScaleCompressError(f"damaged packed_embedding spec {spec!r}: {error}") from error

    def extra_repr(self) -> str:
        grouping = f"group_size={self.group_size}" if self.group_size else "per_channel"
        tied = f", tied_to={self.tied_to!r}" if self.tied_to else ""
        return f"{self.num_embeddings}, {self.embedding_dim}, bits={self.bits}, {grouping}{tied}"

    def logical_numel(self) -> int:
        """A tied table is counted once, by the head that stores it."""
        return 0 if self.tied_to else self.num_embeddings * self.embedding_dim

    # -- lookup ----------------------------------------------------------------------------

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.rows(ids, self.dtype)

    def kernel_for(self, rows: int) -> str:
        """A lookup dequantizes only the rows asked for, whatever their number."""
        return "row-lookup"

    def rows(self, ids: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Dequantized rows `ids` (any shape) -> (*ids.shape, embedding_dim) in `dtype`."""
        if self.tied_to is not None:
            if self._table is None:
                raise ScaleCompressError(
                    f"this embedding is tied to {self.tied_to!r} but was loaded without it; load the whole model with compress.load "
                    "(or model.load_state_dict on the whole model) so the two are linked"
                )
            return self._table.embedding_rows(ids, dtype)
        return lookup_rows(self.qweight, self.scales, self.zeros, ids, bits=self.bits, group_size=self.group_size, columns=self.embedding_dim, dtype=dtype)

    def dequantize(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The dense table (num_embeddings, embedding_dim)."""
        device = (self._table if self.tied_to else self).scales.device
        return self.rows(torch.arange(self.num_embeddings, device=device), dtype)

    def memory_bytes(self) -> int:
        from compress.units import tensor_bytes

        return 0 if self.tied_to else tensor_bytes(t for t in self._buffers.values() if t is not None)

    # -- torch.nn.Module hooks ---------------------------------------------------------------

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)
        if self.tied_to is not None:
            waiting_for(missing_keys, self)

    def _apply(self, fn, recurse=True):
        self.dtype = fn(torch.empty(0, dtype=self.dtype)).dtype  # floating casts change what lookups return
        return super()._apply(fn, recurse)


def _rtn(rtn_quantize, weight, bits, group_size, symmetric):
    codes, scales, zeros = rtn_quantize(weight, bits, group_size, symmetric)
    return codes, scales, None if symmetric else zeros


# -- linking a tied embedding to its head while a state dict loads --------------------------------
# torch hands every module its own filtered copy of the state dict, so the one object all modules
# of a `load_state_dict` call share is its `missing_keys` list. A tied embedding (loaded before the
# head: HF models register the base model before `lm_head`) waits under that list; the packed
# head loading next in the same call binds it. Holding the list keeps its id from being reused.

_WAITING: list[tuple[list, weakref.ref]] = []


def waiting_for(missing_keys: list, embedding: QuantizedEmbedding) -> None:
    """A tied embedding loaded: the head loading later in the same call will bind it."""
    _WAITING[:] = [(keys, ref) for keys, ref in _WAITING if ref() is not None and ref() is not embedding]
    _WAITING.append((missing_keys, weakref.ref(embedding)))


def announce_head(missing_keys: list, prefix: str, head: QuantizedLinear) -> None:
    """A packed head loaded under `prefix`: bind the tied embeddings of the same call that name it."""
    name = prefix.rstrip(".")
    for entry in list(_WAITING):
        keys, ref = entry
        embedding = ref()
        if embedding is None:
            _WAITING.remove(entry)
        elif keys is missing_keys and (name == embedding.tied_to or name.endswith("." + embedding.tied_to)):
            embedding.bind(head)
            _WAITING.remove(entry)
