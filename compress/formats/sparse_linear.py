"""`SparseLinear`: a pruned linear layer stored so that its bytes fall with its sparsity, in
compressed-tensors' own layouts (tensor names and bit order), so export is a copy:

  layout "sparse-bitmask" (unstructured)        layout "sparse-24-bitmask" (2 of every 4 inputs)
    shape        int64 (2,)                       shape       int64 (2, 1)
    compressed   kept values, row-major (nnz,)    compressed  kept values (out, in / 2)
    bitmask      uint8 (out, ceil(in / 8))        bitmask     uint8 (out, ceil(in / 8))
    row_offsets  int64 (out,): first value of each row

Bit `i` of byte `j` of a bitmask row flags input `8 j + i` (numpy's `bitorder="little"`).
With `bits` (sparse + k-bit, e.g. SparseGPT's joint quantization) `compressed` holds the kept
values' integer codes packed as in `compress.formats.packing`, with fp16 group `scales` and
`zeros` (out, groups) over the dense columns, as `QuantizedLinear` keeps them.

Bytes: 50% unstructured fp16 = values 0.5 × 2 B + mask 1/8 B per weight ≈ 0.56 × dense fp16;
2:4 + 4-bit = 0.25 + 0.125 B + scales per weight ≈ 0.11 × fp32.

How it computes: on CPU the weight is decompressed for each call (nothing dense is kept
between calls); on CUDA a 2:4 fp16/bf16 layer runs PyTorch's semi-structured sparse kernel.

    >>> import torch
    >>> dense = torch.nn.Linear(8, 4)
    >>> with torch.no_grad(): dense.weight[:, ::2] = 0
    >>> layer = SparseLinear.from_linear(dense)
    >>> layer.layout, torch.equal(layer.dequantize(), dense.weight)
    ('sparse-24-bitmask', True)
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from compress.errors import ScaleCompressError
from compress.formats.affine import dequantize_codes, expand_groups, group_count
from compress.formats.base import PackedModule, register_format
from compress.formats.dense import weight_matrix
from compress.formats.packing import pack_codes, packed_columns, unpack_codes

LAYOUTS = ("sparse-bitmask", "sparse-24-bitmask")
SPEC_VERSION = 1


def pack_bitmask(mask: torch.Tensor) -> torch.Tensor:
    """Bool (rows, columns) -> uint8 (rows, ceil(columns / 8)), little bit order.

    >>> pack_bitmask(torch.tensor([[True, False, False, True, False, False, False, False, True]]))
    tensor([[9, 1]], dtype=torch.uint8)
    """
    rows, columns = mask.shape
    padded = F.pad(mask.to(torch.uint8), (0, -columns % 8)).reshape(rows, -1, 8)
    return (padded << torch.arange(8, dtype=torch.uint8, device=mask.device)).sum(-1, dtype=torch.uint8)


def unpack_bitmask(bitmask: torch.Tensor, columns: int) -> torch.Tensor:
    """Inverse of `pack_bitmask`: uint8 (rows, bytes) -> bool (rows, columns)."""
    bits = (bitmask.unsqueeze(-1) >> torch.arange(8, dtype=torch.uint8, device=bitmask.device)) & 1
    return bits.reshape(bitmask.shape[0], -1)[:, :columns].bool()


def two_four_mask(weight: torch.Tensor) -> torch.Tensor | None:
    """The 2:4 mask of a weight with at most 2 non-zeros in every 4 inputs (top-2 |w| of each
    group, as compressed-tensors chooses), or None when the weight is not 2:4 sparse."""
    rows, columns = weight.shape
    if columns % 4:
        return None
    groups = weight.reshape(rows, -1, 4)
    if int((groups != 0).sum(-1).max()) > 2:
        return None
    keep = torch.zeros_like(groups, dtype=torch.bool)
    keep.scatter_(-1, groups.abs().float().topk(2, dim=-1).indices, True)
    return keep.reshape(rows, columns)


@register_format
class SparseLinear(PackedModule):
    """A linear layer whose weight is stored as kept values + bitmask; see the module docstring."""

    format_name = "sparse_bitmask"
    fixed_dtype_buffers = ("scales", "zeros")  # fp16 by format

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        layout: str = "sparse-bitmask",
        nnz: int | None = None,
        dtype: torch.dtype = torch.float32,
        bits: int | None = None,
        group_size: int | None = None,
        symmetric: bool = False,
        bias: bool = False,
        bias_dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ):
        super().__init__()
        if layout not in LAYOUTS:
            raise ScaleCompressError(f"SparseLinear: layout {layout!r} unknown; allowed: {', '.join(LAYOUTS)}")
        if layout == "sparse-24-bitmask" and in_features % 4:
            raise ScaleCompressError(f"SparseLinear: 2:4 layout needs in_features divisible by 4, got {in_features}")
        self.in_features, self.out_features, self.layout = in_features, out_features, layout
        self.bits, self.group_size, self.symmetric = bits, group_size, symmetric
        two_four = layout == "sparse-24-bitmask"
        self.nnz = out_features * in_features // 2 if two_four else int(nnz if nnz is not None else 0)
        value_shape = (out_features, in_features // 2) if two_four else (self.nnz,)
        if bits is not None:  # packed integer codes of the kept values
            value_shape = (*value_shape[:-1], packed_columns(value_shape[-1], bits))
            dtype = torch.uint8
        shape = torch.tensor([out_features, in_features])
        self.register_buffer("shape", shape.reshape(2, 1) if two_four else shape)
        self.register_buffer("compressed", torch.zeros(value_shape, dtype=dtype, device=device))
        self.register_buffer("bitmask", torch.zeros(out_features, -(-in_features // 8), dtype=torch.uint8, device=device))
        self.register_buffer("row_offsets", None if two_four else torch.zeros(out_features, dtype=torch.int64, device=device))
        groups = group_count(in_features, group_size)
        quantized = bits is not None
        self.register_buffer("scales", torch.ones(out_features, groups, dtype=torch.float16, device=device) if quantized else None)
        self.register_buffer("zeros", torch.zeros(out_features, groups, dtype=torch.float16, device=device) if quantized and not symmetric else None)
        self.bias = nn.Parameter(torch.zeros(out_features, dtype=bias_dtype, device=device)) if bias else None
        self._semi_structured = None  # CUDA 2:4 kernel weight, built on first CUDA call

    # -- building --------------------------------------------------------------------------

    @classmethod
    def from_linear(cls, module: nn.Module, layout: str | None = None) -> SparseLinear:
        """From a dense `nn.Linear`/`Conv1D` whose pruned weights are exactly zero.

        `layout=None` picks "sparse-24-bitmask" when the weight is 2:4 sparse, else "sparse-bitmask".
        """
        weight = weight_matrix(module).detach()
        mask = cls._mask(weight, layout)
        layout = layout or ("sparse-24-bitmask" if mask is not None else "sparse-bitmask")
        mask = mask if mask is not None else weight != 0
        layer = cls._empty(weight.shape, layout, int(mask.sum()), weight.dtype, getattr(module, "bias", None), weight.device)
        layer._fill(mask, weight[mask])
        return layer

    @classmethod
    def from_quantized(cls, module: PackedModule, layout: str | None = None) -> SparseLinear:
        """From a `QuantizedLinear` (packed codes, fp16 scales/zeros) whose pruned weights dequantize to zero."""
        codes = module.codes()
        dense = module.dequantize()
        mask = cls._mask(dense, layout)
        layout = layout or ("sparse-24-bitmask" if mask is not None else "sparse-bitmask")
        mask = mask if mask is not None else dense != 0
        bias = getattr(module, "bias", None)
        layer = cls(
            module.in_features, module.out_features, layout=layout, nnz=int(mask.sum()), bits=module.bits, group_size=module.group_size,
            symmetric=module.symmetric, bias=bias is not None, bias_dtype=bias.dtype if bias is not None else torch.float32, device=codes.device,
        )
        layer.scales.copy_(module.scales)
        if layer.zeros is not None:
            layer.zeros.copy_(module.zeros)
        if bias is not None:
            layer.bias.data.copy_(bias.detach())
        layer._fill(mask, codes[mask])
        return layer

    @staticmethod
    def _mask(weight: torch.Tensor, layout: str | None) -> torch.Tensor | None:
        if layout == "sparse-bitmask":
            return None
        mask = two_four_mask(weight)
        if layout == "sparse-24-bitmask" and mask is None:
            raise ScaleCompressError("SparseLinear: the weight is not 2:4 sparse (more than 2 non-zeros in a group of 4 inputs); use layout 'sparse-bitmask'")
        return mask

    @classmethod
    def _empty(cls, shape, layout, nnz, dtype, bias, device) -> SparseLinear:
        out_features, in_features = shape
        return cls(
            in_features, out_features, layout=layout, nnz=nnz, dtype=dtype, bias=bias is not None,
            bias_dtype=bias.dtype if bias is not None else torch.float32, device=device,
        )._with_bias(bias)

    def _with_bias(self, bias) -> SparseLinear:
        if bias is not None:
            self.bias.data.copy_(bias.detach())
        return self

    def _fill(self, mask: torch.Tensor, values: torch.Tensor) -> None:
        """Store the kept `values` (row-major order of `mask`) and the mask."""
        if self.layout == "sparse-24-bitmask":
            values = values.reshape(self.out_features, self.in_features // 2)
        else:
            counts = mask.sum(dim=1)
            self.row_offsets.copy_(torch.cumsum(counts, 0) - counts)
        self.compressed.copy_(pack_codes(values, self.bits) if self.bits is not None else values)
        self.bitmask.copy_(pack_bitmask(mask))

    # -- describing ------------------------------------------------------------------------

    def spec(self) -> dict[str, Any]:
        return {
            "version": SPEC_VERSION,
            "layout": self.layout,
            "in_features": self.in_features,
            "out_features": self.out_features,
            "nnz": self.nnz,
            "dtype": str(self.compressed.dtype).removeprefix("torch."),
            "bits": self.bits,
            "group_size": self.group_size,
            "symmetric": self.symmetric,
            "bias": self.bias is not None,
            "bias_dtype": str(self.bias.dtype if self.bias is not None else torch.float32).removeprefix("torch."),
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> SparseLinear:
        if spec.get("version", SPEC_VERSION) > SPEC_VERSION:
            raise ScaleCompressError(f"sparse_bitmask layer spec version {spec['version']} is newer than this scalecompress (knows {SPEC_VERSION}); upgrade it")
        try:
            return cls(
                int(spec["in_features"]), int(spec["out_features"]), layout=spec["layout"], nnz=int(spec["nnz"]),
                dtype=getattr(torch, spec.get("dtype", "float32")), bits=spec.get("bits"), group_size=spec.get("group_size"),
                symmetric=bool(spec.get("symmetric", False)), bias=bool(spec.get("bias", False)),
                bias_dtype=getattr(torch, spec.get("bias_dtype", "float32")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ScaleCompressError(f"damaged sparse_bitmask layer spec {spec!r}: {error}") from error

    def extra_repr(self) -> str:
        quantized = f", bits={self.bits}, group_size={self.group_size}" if self.bits else ""
        return f"in_features={self.in_features}, out_features={self.out_features}, layout={self.layout}, density={self.density():.3f}{quantized}, bias={self.bias is not None}"

    def density(self) -> float:
        return self.nnz / (self.in_features * self.out_features)

    # -- reading and computing -------------------------------------------------------------

    def mask(self) -> torch.Tensor:
        return unpack_bitmask(self.bitmask, self.in_features)

    def dequantize(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """The dense weight (out_features, in_features); zeros where pruned."""
        mask = self.mask()
        if self.bits is None:
            dense = torch.zeros(self.out_features, self.in_features, dtype=self.compressed.dtype, device=mask.device)
            dense[mask] = self.compressed.reshape(-1)
            return dense if dtype is None else dense.to(dtype)
        count = self.in_features // 2 if self.layout == "sparse-24-bitmask" else self.nnz
        values = unpack_codes(self.compressed, self.bits, count).reshape(-1)
        zero = 2 ** (self.bits - 1) if self.zeros is None else expand_groups(self.zeros, self.in_features, self.group_size)
        codes = torch.as_tensor(zero, device=mask.device).expand(self.out_features, self.in_features).to(torch.uint8).clone()
        codes[mask] = values
        return dequantize_codes(codes, self.scales, self.zeros, self.group_size, self.bits, dtype or torch.float32)

    def kernel_for(self, rows: int) -> str:
        """'cuda-semi-structured' (2:4 fp16/bf16 on CUDA) or 'decompress-gemm' (dense weight rebuilt per call)."""
        cuda = self.bitmask.is_cuda and self.layout == "sparse-24-bitmask" and self.bits is None
        return "cuda-semi-structured" if cuda else "decompress-gemm"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias.to(x.dtype) if self.bias is not None else None
        if x.is_cuda and self.layout == "sparse-24-bitmask" and self.bits is None and x.dtype in (torch.float16, torch.bfloat16):
            if self._semi_structured is None or self._semi_structured.dtype != x.dtype:
                from torch.sparse import to_sparse_semi_structured

                self._semi_structured = to_sparse_semi_structured(self.dequantize(x.dtype))
            return F.linear(x, self._semi_structured, bias)
        return F.linear(x, self.dequantize(x.dtype), bias)

    # -- torch.nn.Module hooks: stored dtypes stay --------------------------------------------

    def _load_from_state_dict(self, *args, **kwargs):
        self._semi_structured = None
        super()._load_from_state_dict(*args, **kwargs)

    def _apply(self, fn, recurse=True):
        self._semi_structured = None
        return super()._apply(fn, recurse)
