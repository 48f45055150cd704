"""`Int8Linear` (format "w8a8"): int8 per-output-channel weights and dynamic per-token int8
activations, multiplied by a real int8 GEMM. The format SmoothQuant stores.

Saved state (portable):
  qweight       int8 (out, in)    symmetric codes, -127..127
  weight_scale  fp32 (out,)       weight = qweight * weight_scale[:, None]
  bias          the model's dtype (out,), when the original layer had one

How it computes: each row (token) of the input is scaled by its own absmax, quantized to int8,
multiplied by the int8 weight with int32 accumulation, and rescaled by (row scale x channel
scale). Which int8 GEMM, measured by `benchmarks/w8a8_kernels.py`:
- CPU: FBGEMM's dynamic int8 linear (`quantized::linear_dynamic`, weights prepacked on the first
  call, portable `qweight` then released; `state_dict()` rebuilds it). It quantizes its input
  per tensor, so we divide each row by its absmax first: every row then spans [-1, 1] and the
  per-tensor grid *is* the per-token grid; the output rows are multiplied back. On AVX2 it
  keeps activations to 7 bits (`reduce_range`) so the u8 x s8 pair sums cannot saturate.
  On a 2-core AVX2 machine `torch._int_mm` and torchao's int8 dynamic kernels (which call it)
  were 10–50x slower than fp32 here, FBGEMM faster than fp32 from ~16 rows.
- CUDA: `torch._int_mm` (int8 tensor cores), rows padded to a multiple of 8 above 16.
- Anything else: `torch._int_mm` on the device.

    >>> import torch
    >>> dense = torch.nn.Linear(64, 32)
    >>> layer = Int8Linear.from_linear(dense)
    >>> x = torch.randn(3, 64)
    >>> bool((layer(x) - dense(x)).norm() < 0.05 * dense(x).norm())
    True
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from compress.errors import ScaleCompressError
from compress.formats.base import PackedModule, register_format
from compress.formats.dense import weight_matrix

SPEC_VERSION = 1
QMAX = 127  # symmetric int8 grid; -128 unused so that negation is exact


def quantize_per_channel(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 codes (out, in) and fp32 scales (out,) of a weight (out, in)."""
    weight = weight.detach().float()
    scale = weight.abs().amax(dim=1).clamp_min(1e-12) / QMAX
    codes = torch.round(weight / scale[:, None]).clamp_(-QMAX, QMAX).to(torch.int8)
    return codes, scale


def quantize_per_token(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 codes (rows, in) and fp32 scales (rows, 1) of activations (rows, in)."""
    scale = x.abs().amax(dim=1, keepdim=True).float().clamp_min(1e-12) / QMAX
    return torch.round(x.float() / scale).clamp_(-QMAX, QMAX).to(torch.int8), scale


def fbgemm_available() -> bool:
    """Whether this PyTorch build has an x86 quantized engine with the dynamic int8 linear."""
    engines = torch.backends.quantized.supported_engines
    return ("x86" in engines or "fbgemm" in engines) and hasattr(torch.ops.quantized, "linear_dynamic")


@register_format
class Int8Linear(PackedModule):
    """A linear layer with int8 weights that quantizes its inputs per token; see the module docstring."""

    format_name = "w8a8"

    def __init__(self, in_features: int, out_features: int, *, bias: bool = False, bias_dtype: torch.dtype = torch.float32, device=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("qweight", torch.zeros(out_features, in_features, dtype=torch.int8, device=device))
        self.register_buffer("weight_scale", torch.ones(out_features, dtype=torch.float32, device=device))
        self.bias = nn.Parameter(torch.zeros(out_features, dtype=bias_dtype, device=device), requires_grad=False) if bias else None
        self._prepacked = None  # FBGEMM's weight, built on the first CPU call
        self._prepack_refused = False

    @classmethod
    def from_linear(cls, module: nn.Module) -> Int8Linear:
        """Quantize an `nn.Linear` (or GPT-2 `Conv1D`) to int8 per output channel."""
        weight = weight_matrix(module)
        bias = getattr(module, "bias", None)
        layer = cls(weight.shape[1], weight.shape[0], bias=bias is not None, bias_dtype=bias.dtype if bias is not None else torch.float32, device=weight.device)
        codes, scale = quantize_per_channel(weight)
        layer.qweight.copy_(codes)
        layer.weight_scale.copy_(scale)
        if bias is not None:
            layer.bias.data.copy_(bias.detach())
        return layer

    def spec(self) -> dict[str, Any]:
        bias_dtype = str(self.bias.dtype if self.bias is not None else torch.float32).removeprefix("torch.")
        return {"version": SPEC_VERSION, "in_features": self.in_features, "out_features": self.out_features, "bias": self.bias is not None, "bias_dtype": bias_dtype}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Int8Linear:
        if spec.get("version", SPEC_VERSION) > SPEC_VERSION:
            raise ScaleCompressError(f"w8a8 layer spec version {spec['version']} is newer than this scalecompress (knows {SPEC_VERSION}); upgrade it")
        try:
            return cls(int(spec["in_features"]), int(spec["out_features"]), bias=bool(spec.get("bias", False)), bias_dtype=getattr(torch, spec.get("bias_dtype", "float32")))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ScaleCompressError(f"damaged w8a8 layer spec {spec!r}: {error}") from error

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, kernel={self.kernel_name()}"

    def codes(self) -> torch.Tensor:
        """The int8 weight codes (out, in), from whichever layout is held."""
        if self._buffers.get("qweight") is not None:
            return self.qweight
        quantized, _ = torch.ops.quantized.linear_unpack(self._prepacked)
        return quantized.int_repr()

    def dequantize(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return (self.codes().float() * self.weight_scale[:, None]).to(dtype)

    def kernel_for(self, rows: int) -> str:
        """The int8 GEMM a forward on `rows` token rows runs: the same at every size."""
        return self.kernel_name()

    def kernel_name(self) -> str:
        """The int8 GEMM this layer runs on its device: 'fbgemm' or 'int_mm'."""
        return "fbgemm" if self.weight_scale.is_cpu and fbgemm_available() and not self._prepack_refused else "int_mm"

    # -- computing -------------------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features)
        packed = self._fbgemm_weight() if flat.is_cpu else None
        y = self._fbgemm_forward(flat, packed) if packed is not None else self._int_mm_forward(flat)
        y = y.to(x.dtype)
        if self.bias is not None:
            y = y + self.bias.to(y.dtype)
        return y.reshape(*x.shape[:-1], self.out_features)

    def _fbgemm_forward(self, flat: torch.Tensor, packed) -> torch.Tensor:
        rows = flat.float().abs().amax(dim=1, keepdim=True).clamp_min(1e-12)
        return torch.ops.quantized.linear_dynamic((flat.float() / rows).contiguous(), packed, True) * rows

    def _int_mm_forward(self, flat: torch.Tensor) -> torch.Tensor:
        codes, row_scale = quantize_per_token(flat)
        rows = codes.shape[0]
        padded = max(32, -(-rows // 8) * 8)  # _int_mm wants more than 16 rows, a multiple of 8
        if padded != rows:
            codes = F.pad(codes, (0, 0, 0, padded - rows))
        accumulated = torch._int_mm(codes, self.codes().t())[:rows]
        return accumulated.float() * row_scale * self.weight_scale

    def _fbgemm_weight(self):
        if self._prepacked is not None or self._prepack_refused:
            return self._prepacked
        if not fbgemm_available():
            self._prepack_refused = True
            return None
        try:
            with warnings.catch_warnings():  # quantized tensors are deprecated in favour of torchao, whose CPU int8 path is the slow one
                warnings.simplefilter("ignore")
                zero = torch.zeros(self.out_features, dtype=torch.long)
                quantized = torch._make_per_channel_quantized_tensor(self.qweight, self.weight_scale.double(), zero, 0)
                self._prepacked = torch.ops.quantized.linear_prepack(quantized, None)
        except RuntimeError:
            self._prepack_refused = True
            return None
        self._buffers["qweight"] = None  # FBGEMM's copy is the one held now
        return self._prepacked

    # -- torch.nn.Module hooks: portable bytes in, portable bytes out -----------------------

    def _restore_portable(self) -> None:
        if self._prepacked is not None:
            self._buffers["qweight"] = self.codes().clone()
            self._prepacked = None
        self._prepack_refused = False

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if self._buffers.get("qweight") is None:
            destination[prefix + "qweight"] = self.codes().clone()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        self._restore_portable()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _apply(self, fn, recurse=True):
        self._restore_portable()
        scale = self._buffers.pop("weight_scale")
        try:
            super()._apply(fn, recurse)
        finally:  # scales stay fp32 whatever dtype the model is cast to
            device = fn(torch.empty(0, dtype=scale.dtype, device=scale.device)).device
            self._buffers["weight_scale"] = scale.to(device)
        return self
