"""`QuantizedLinear`: a linear layer whose weight is 2–8-bit integer codes, packed, with fp16
group scales (and zero points), that computes with them without a dense copy.

Saved state (format "packed_int", portable across machines):
  qweight  uint8 (out, packed bytes per row)   codes packed as in `compress.formats.packing`
  scales   fp16  (out, groups)
  zeros    fp16  (out, groups), integer values  asymmetric grids only
  bias     the model's dtype (out,)             when the original layer had one

How it computes:
- CPU, few rows per call (decoding): the weight sits in PyTorch's int4 CPU layout
  (`compress.formats.cpu_int4`, `kernel_weight`): 4-bit codes as they are; 2- and 3-bit codes
  shifted by `8 - zero` (still 0..15); 5–8-bit codes as their high and low nibbles side by side.
  On the first such call the portable `qweight` is converted and then released: RAM holds one
  packed copy (4 bits per weight for 2–4-bit codes, 8 for 5–8) plus the scales, and
  `state_dict()` rebuilds the portable bytes.
  Where our kernels are built (`compress.formats.native_kernels`), our decode kernel runs up to
  NATIVE_DECODE_MAX_ROWS rows (NATIVE_DECODE_MAX_ROWS_SPLIT at 5–8 bits): integer dot products
  of the codes with the activations quantized to int8 per 32 inputs (llama.cpp's Q8_0), the
  exact fp16 scales and zeros applied per group; 2x the int4 op at one row, faster at every row
  count it takes. Elsewhere PyTorch's int4 op runs them (bf16 activations; 5–8-bit codes in one
  call with the activations fed twice and the zero offset split over two bf16 terms, exact to
  ~2**-18), up to KERNEL_MAX_ROWS_PREFILL / _SPLIT rows where our prefill kernel is built but
  the decode loop is not (a machine without AVX2, or a generic "pairs" layout), KERNEL_MAX_ROWS /
  _SPLIT where nothing is built.
- CPU, more rows (prefills, batches): the prefill kernel (`compress.formats.native_kernels`)
  reads the same kernel layout, dequantizes a cache-sized tile of rows at a time and runs BLAS
  sgemm on it in fp32 (activations of other dtypes are widened, the result narrowed back).
- CUDA, gradients, shapes the int4 kernel refuses (no group of 32..256 dividing the input), or
  no prefill kernel (no C++ compiler): dequantize to the activation dtype and call `F.linear`.
Nothing dense is kept between calls.

    >>> import torch
    >>> codes = torch.randint(0, 16, (32, 64), dtype=torch.uint8)
    >>> layer = QuantizedLinear.from_codes(codes, torch.full((32, 1), 0.01).half(), torch.full((32, 1), 8.0).half(), bits=4, group_size=None)
    >>> layer(torch.randn(2, 5, 64)).shape
    torch.Size([2, 5, 32])
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from compress.errors import ScaleCompressError
from compress.formats import cpu_int4, kernel_weight, native_kernels
from compress.formats.affine import dequantize_codes, group_count
from compress.formats.base import PackedModule, register_format
from compress.formats.kernel_weight import KernelWeight
from compress.formats.packing import (
    SUPPORTED_BITS,
    pack_codes,
    packed_columns,
    unpack_codes,
)

# Token rows per call up to which each few-rows path beats the many-rows one, measured by
# benchmarks/decode_speed.py --crossover (2-core AVX2, the 135M model's layer shapes):
NATIVE_DECODE_MAX_ROWS = 32  # our decode kernel against our prefill kernel at 2-4 bits (crossing: 32-64 rows)
NATIVE_DECODE_MAX_ROWS_SPLIT = 8  # 5-8-bit codes, twice the work per row (8-16)
KERNEL_MAX_ROWS_PREFILL = 8  # the int4 op against our prefill kernel (8-16), where our decode loop is not built
KERNEL_MAX_ROWS_PREFILL_SPLIT = 4  # (4-8)
KERNEL_MAX_ROWS = 128  # the int4 op against eager dequantize + GEMM, no kernels built (2048x2048, 64 rows: ~20 ms against ~30)
KERNEL_MAX_ROWS_SPLIT = 16
DECODE_ROWS = min(NATIVE_DECODE_MAX_ROWS_SPLIT, KERNEL_MAX_ROWS_PREFILL_SPLIT, KERNEL_MAX_ROWS_SPLIT)  # a few-rows path whatever else holds


def max_kernel_rows(bits: int, prefill: bool, decodes: bool = False) -> int:
    """Token rows up to which a layer of `bits` takes its few-rows path: our decode kernel
    (`decodes`), else the int4 op against our prefill kernel (`prefill`) or against dequantize + GEMM."""
    split = bits > 4
    if decodes:
        return NATIVE_DECODE_MAX_ROWS_SPLIT if split else NATIVE_DECODE_MAX_ROWS
    if prefill:
        return KERNEL_MAX_ROWS_PREFILL_SPLIT if split else KERNEL_MAX_ROWS_PREFILL
    return KERNEL_MAX_ROWS_SPLIT if split else KERNEL_MAX_ROWS


SPEC_VERSION = 1


def _prefill_available() -> bool:
    return native_kernels.available() and cpu_int4.kernel_layout() is not None


def lookup_rows(qweight, scales, zeros, ids: torch.Tensor, *, bits: int, group_size: int | None, columns: int, dtype: torch.dtype) -> torch.Tensor:
    """Rows `ids` of a portable packed table, dequantized: (*ids.shape, columns) in `dtype`."""
    flat = ids.reshape(-1)
    codes = unpack_codes(qweight[flat], bits, columns)
    rows = dequantize_codes(codes, scales[flat], None if zeros is None else zeros[flat], group_size, bits, dtype)
    return rows.reshape(*ids.shape, columns)


@register_format
class QuantizedLinear(PackedModule):
    """A linear layer with packed integer weights; see the module docstring for the layout."""

    format_name = "packed_int"
    fixed_dtype_buffers = ("scales", "zeros")  # fp16 by format

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bits: int = 4,
        group_size: int | None = 128,
        symmetric: bool = False,
        bias: bool = False,
        bias_dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ):
        super().__init__()
        if bits not in SUPPORTED_BITS:
            raise ScaleCompressError(f"QuantizedLinear: bits={bits} is not supported; allowed 2..8")
        if group_size is not None and group_size < 1:
            raise ScaleCompressError(f"QuantizedLinear: group_size={group_size} must be positive or None")
        self.in_features, self.out_features = in_features, out_features
        self.bits, self.group_size, self.symmetric = bits, group_size, symmetric
        groups = group_count(in_features, group_size)
        self.register_buffer("qweight", torch.zeros(out_features, packed_columns(in_features, bits), dtype=torch.uint8, device=device))
        self.register_buffer("scales", torch.ones(out_features, groups, dtype=torch.float16, device=device))
        zeros = None if symmetric else torch.full((out_features, groups), 2 ** (bits - 1), dtype=torch.float16, device=device)
        self.register_buffer("zeros", zeros)
        self.bias = nn.Parameter(torch.zeros(out_features, dtype=bias_dtype, device=device)) if bias else None
        self._kernel: KernelWeight | None = None
        self._kernel_refused = False

    # -- building and describing -----------------------------------------------------------

    @classmethod
    def from_codes(
        cls,
        codes: torch.Tensor,
        scales: torch.Tensor,
        zeros: torch.Tensor | None,
        *,
        bits: int,
        group_size: int | None,
        symmetric: bool = False,
        bias: torch.Tensor | None = None,
    ) -> QuantizedLinear:
        """A layer from codes (out, in), scales and zeros (out, groups) and an optional bias."""
        out_features, in_features = codes.shape
        groups = group_count(in_features, group_size)
        if tuple(scales.shape) != (out_features, groups) or (not symmetric and (zeros is None or tuple(zeros.shape) != (out_features, groups))):
            raise ScaleCompressError(f"QuantizedLinear.from_codes: scales/zeros must be ({out_features}, {groups}) for codes {tuple(codes.shape)}")
        layer = cls(
            in_features,
            out_features,
            bits=bits,
            group_size=group_size,
            symmetric=symmetric,
            bias=bias is not None,
            bias_dtype=bias.dtype if bias is not None else torch.float32,
            device=codes.device,
        )
        layer.qweight.copy_(pack_codes(codes, bits))
        layer.scales.copy_(scales)
        if not symmetric:
            layer.zeros.copy_(zeros)
        if bias is not None:
            layer.bias.data.copy_(bias.detach())
        return layer

    def spec(self) -> dict[str, Any]:
        return {
            "version": SPEC_VERSION,
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bits": self.bits,
            "group_size": self.group_size,
            "symmetric": self.symmetric,
            "bias": self.bias is not None,
            "bias_dtype": str(self.bias.dtype if self.bias is not None else torch.float32).removeprefix("torch."),
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> QuantizedLinear:
        if spec.get("version", SPEC_VERSION) > SPEC_VERSION:
            raise ScaleCompressError(f"packed_int layer spec version {spec['version']} is newer than this scalecompress (knows {SPEC_VERSION}); upgrade it")
        try:
            bias_dtype = getattr(torch, spec.get("bias_dtype", "float32"))
            return cls(
                int(spec["in_features"]),
                int(spec["out_features"]),
                bits=int(spec["bits"]),
                group_size=spec.get("group_size"),
                symmetric=bool(spec.get("symmetric", False)),
                bias=bool(spec.get("bias", False)),
                bias_dtype=bias_dtype,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ScaleCompressError(f"damaged packed_int layer spec {spec!r}: {error}") from error

    def extra_repr(self) -> str:
        grouping = f"group_size={self.group_size}" if self.group_size else "per_channel"
        kernel = "cpu-int4" if self._kernel is not None else "dequantize"
        return f"in_features={self.in_features}, out_features={self.out_features}, bits={self.bits}, {grouping}, symmetric={self.symmetric}, bias={self.bias is not None}, compute={kernel}"

    # -- reading the weight ----------------------------------------------------------------

    def codes(self) -> torch.Tensor:
        """The integer codes, uint8 (out, in), from whichever layout is held."""
        if self._buffers.get("qweight") is not None:
            return unpack_codes(self.qweight, self.bits, self.in_features)
        kernel = self._kernel
        nibbles = cpu_int4.from_kernel_layout(kernel.packed, kernel.rows, kernel.columns)[: self.out_features]
        return self._codes_of_nibbles(nibbles, self.zeros)

    def _codes_of_nibbles(self, nibbles: torch.Tensor, zeros: torch.Tensor | None) -> torch.Tensor:
        """Undo the kernel's code form for some rows (`zeros`: those rows' zero points)."""
        if self.bits < 4:
            return nibbles - kernel_weight.code_shift(zeros, self.bits, self.in_features, self.group_size)
        if nibbles.shape[1] == self.in_features:
            return nibbles
        return (nibbles[:, : self.in_features] << 4) | nibbles[:, self.in_features :]

    def dequantize(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """A dense copy of the weight, (out_features, in_features), in `dtype`."""
        return dequantize_codes(self.codes(), self.scales, self.zeros, self.group_size, self.bits, dtype)

    def embedding_rows(self, ids: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Rows `ids` of the weight, dequantized: (*ids.shape, in_features). A tied embedding's
        lookup into this (output head's) table, read from whichever layout is held."""
        if self._buffers.get("qweight") is not None:
            return lookup_rows(self.qweight, self.scales, self.zeros, ids, bits=self.bits, group_size=self.group_size, columns=self.in_features, dtype=dtype)
        kernel, flat = self._kernel, ids.reshape(-1)
        zeros = None if self.zeros is None else self.zeros[flat]
        codes = self._codes_of_nibbles(cpu_int4.gather_rows(kernel.packed, flat, kernel.rows, kernel.columns), zeros)
        rows = dequantize_codes(codes, self.scales[flat], zeros, self.group_size, self.bits, dtype)
        return rows.reshape(*ids.shape, self.in_features)

    def memory_bytes(self) -> int:
        """Bytes held now, including the kernel's layout once converted (saved bytes may differ)."""
        held = [t for t in (*self._buffers.values(), *self._parameters.values()) if t is not None]
        if self._kernel is not None:
            held += [self._kernel.packed, self._kernel.scale_zeros]
        from compress.units import tensor_bytes

        return tensor_bytes(held)

    # -- computing -------------------------------------------------------------------------

    def kernel_for(self, rows: int) -> str:
        """The kernel a forward on `rows` token rows runs (on the layer's device): for few rows
        'packed-decode' (our decode kernel), or where it does not run 'cpu-int4' (4-bit codes, and
        2/3-bit codes shifted into 4-bit) or 'cpu-int4x2' (5-8-bit codes as two nibbles); for
        more 'packed-prefill' (tile-wise dequantize + sgemm, `compress.formats.native_kernels`)
        or 'dequantize-gemm' (the whole weight dequantized, then `F.linear`; also CUDA and shapes
        the int4 layout refuses)."""
        if rows < 1 or not self._kernel_possible():
            return "dequantize-gemm"
        kernel = self._kernel  # once converted, its own record of what was built then
        prefill = kernel.native_prefill if kernel is not None else _prefill_available()
        decodes = (kernel.native_decode_rows if kernel is not None else self._native_decode_rows()) > 0
        if rows <= max_kernel_rows(self.bits, prefill, decodes):
            return "packed-decode" if decodes else "cpu-int4" if self.bits <= 4 else "cpu-int4x2"
        return "packed-prefill" if prefill else "dequantize-gemm"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // self.in_features
        kernel = self._kernel
        if kernel is not None and 0 < rows <= DECODE_ROWS and x.is_cpu and not (x.requires_grad and torch.is_grad_enabled()):
            return self._kernel_forward(x, kernel)  # decoding: the per-token hot path, no other checks
        if x.is_cpu and not (x.requires_grad and torch.is_grad_enabled()) and self._kernel_possible():
            kernel = self._kernel if self._kernel is not None else self._kernel_weight()
            if kernel is not None:
                if rows <= max_kernel_rows(self.bits, kernel.native_prefill, kernel.native_decode_rows > 0):
                    return self._kernel_forward(x, kernel)
                if kernel.native_prefill:
                    return self._native_forward(x, kernel, native_kernels.prefill)
        bias = self.bias.to(x.dtype) if self.bias is not None else None
        return F.linear(x, self.dequantize(x.dtype), bias)

    def _native_decode_rows(self) -> int:
        """Rows up to which our decode kernel runs (NATIVE_DECODE_MAX_ROWS(_SPLIT)); 0 where it is
        not built or has no vector loop for this machine's layout."""
        if not native_kernels.decodes(cpu_int4.kernel_layout()):
            return 0
        return max_kernel_rows(self.bits, prefill=True, decodes=True)

    def _native_forward(self, x: torch.Tensor, kernel: KernelWeight, function) -> torch.Tensor:
        """`function` (`native_kernels.prefill` or `.decode`) on x, in fp32, back to x's dtype."""
        bound = kernel.bound or self._bind(kernel)
        y = function(x if x.dtype is torch.float32 and x.is_contiguous() else x.float().contiguous(), bound)
        if self.bias is not None:
            y += self.bias if self.bias.dtype is torch.float32 else self.bias.float()
        return y if x.dtype is torch.float32 else y.to(x.dtype)

    @torch.compiler.disable  # once per layer, eagerly
    def _bind(self, kernel: KernelWeight) -> native_kernels.Bound:
        # 2-3-bit codes sit shifted by 8 - zero, so their value is nibble - 8; else code - zero.
        kernel.bound = native_kernels.bind(kernel.packed, kernel.rows, kernel.columns, self.scales, self.zeros if self.bits >= 4 else None,
                                           8.0 if self.bits < 4 else float(2 ** (self.bits - 1)), self.group_size or self.in_features,
                                           self.in_features, self.out_features, cpu_int4.kernel_layout())
        return kernel.bound

    def _kernel_forward(self, x: torch.Tensor, kernel: KernelWeight) -> torch.Tensor:
        # Hot path of decoding: as few tensor ops and Python calls as possible.
        if kernel.native_decode_rows and x.numel() <= kernel.native_decode_rows * self.in_features:
            return self._native_forward(x, kernel, native_kernels.decode)
        flat = (x if x.dim() == 2 else x.reshape(-1, self.in_features)).to(torch.bfloat16)
        if kernel.columns != self.in_features:
            flat = torch.cat([flat, flat], dim=1)
        elif not flat.is_contiguous():
            flat = flat.contiguous()
        y = cpu_int4.int4_matmul(flat, kernel.packed, kernel.group_size, kernel.scale_zeros)
        if kernel.rows != self.out_features:
            y = y[:, : self.out_features]
        if x.dtype != torch.bfloat16:
            y = y.to(x.dtype)
        if self.bias is not None:
            y = y + self.bias if self.bias.dtype == y.dtype else y + self.bias.to(y.dtype)
        return y if x.dim() == 2 else y.reshape(*x.shape[:-1], self.out_features)

    def _kernel_possible(self) -> bool:
        if self._kernel is not None:
            return True
        if self._kernel_refused:
            return False
        device = self.scales.device.type
        return device == "cpu" and cpu_int4.kernel_available() and cpu_int4.kernel_group_size(self.in_features, self.group_size) is not None

    @torch.compiler.disable  # converted once, eagerly: a compiled graph then finds it ready
    def _kernel_weight(self) -> KernelWeight | None:
        """The kernel's form of the weight, converted on first use; None where it cannot run."""
        if self._kernel is not None or self._kernel_refused:
            return self._kernel
        if not self._kernel_possible() or self._buffers.get("qweight") is None or self.qweight.device.type != "cpu":
            self._kernel_refused = True
            return None
        nibbled = kernel_weight.nibbles(self.codes(), self.zeros, self.bits, self.group_size)
        self._kernel = kernel_weight.build(nibbled, self.scales, self.zeros, bits=self.bits, group_size=self.group_size,
                                           out_features=self.out_features, native_decode_rows=self._native_decode_rows(),
                                           native_prefill=_prefill_available())
        restored = cpu_int4.from_kernel_layout(self._kernel.packed, self._kernel.rows, self._kernel.columns)
        if restored is not None and torch.equal(restored[: self.out_features], nibbled):
            self._buffers["qweight"] = None  # one packed copy in RAM; state_dict rebuilds it
        return self._kernel

    def _release_kernel(self) -> None:
        """Back to the portable layout only (before a device move, a load, ...)."""
        if self._kernel is None:
            return
        if self._buffers.get("qweight") is None:
            self._buffers["qweight"] = pack_codes(self.codes(), self.bits)
        self._kernel = None

    # -- torch.nn.Module hooks: portable bytes in, portable bytes out -----------------------

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if self._buffers.get("qweight") is None and self._kernel is not None:
            destination[prefix + "qweight"] = pack_codes(self.codes(), self.bits)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        from compress.formats.quantized_embedding import announce_head

        self._release_kernel()
        self._kernel_refused = False
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)
        announce_head(missing_keys, prefix, self)  # a tied embedding reading this table links to it

    def _apply(self, fn, recurse=True):
        self._release_kernel()
        self._kernel_refused = False
        return super()._apply(fn, recurse)
