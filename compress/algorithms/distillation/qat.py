"""Quantization-aware training: a packed layer trains as float weights seen through its grid.

Each `QuantizedLinear` of the student becomes a `FakeQuantLinear` holding its dequantized
weight in fp32. The forward rounds that weight to its grid (the same min-max grid, bits and
group size as `rtn`), and the backward passes the gradient straight through the rounding
(the straight-through estimator, Bengio et al. 2013): `w_q = w + (round(w) - w).detach()`.
At the end `pack()` rounds the trained weight once more and stores it as the same packed
`QuantizedLinear` that rtn and gptq write, so the bytes are those of the quantized model.

    >>> import torch
    >>> from compress.algorithms.quantization.rtn import RTNConfig
    >>> import compress
    >>> model = torch.nn.Sequential(torch.nn.Linear(64, 8))
    >>> model, _ = compress.apply(model, [RTNConfig(bits=2, group_size=32)], progress=False)
    >>> layer = FakeQuantLinear.from_packed(model[0])
    >>> bool(torch.equal(layer.pack().dequantize(), model[0].dequantize()))
    True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from compress.algorithms.quantization.grid import dequantize, pack, rtn_quantize
from compress.formats.quantized_linear import QuantizedLinear


class FakeQuantLinear(nn.Module):
    """A linear layer whose forward uses its weight rounded to the grid; gradients pass straight through."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, *, bits: int, group_size: int | None, symmetric: bool):
        super().__init__()
        self.weight = nn.Parameter(weight.detach().float().clone())
        self.bias = nn.Parameter(bias.detach().clone()) if bias is not None else None
        self.bits, self.group_size, self.symmetric = bits, group_size, symmetric

    @classmethod
    def from_packed(cls, layer: QuantizedLinear) -> FakeQuantLinear:
        return cls(layer.dequantize(), layer.bias, bits=layer.bits, group_size=layer.group_size, symmetric=layer.symmetric)

    def rounded(self) -> torch.Tensor:
        """The weight as the packed layer would store it (no gradient)."""
        with torch.no_grad():
            codes, scales, zeros = rtn_quantize(self.weight, self.bits, self.group_size, self.symmetric)
            return dequantize(codes, scales, None if self.symmetric else zeros, self.group_size, self.bits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight + (self.rounded() - self.weight).detach()  # straight-through estimator
        return F.linear(x, weight.to(x.dtype), None if self.bias is None else self.bias.to(x.dtype))

    def pack(self) -> QuantizedLinear:
        codes, scales, zeros = rtn_quantize(self.weight.detach(), self.bits, self.group_size, self.symmetric)
        return pack(codes, scales, zeros, bits=self.bits, group_size=self.group_size, symmetric=self.symmetric, bias=self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.weight.shape[1]}, out_features={self.weight.shape[0]}, bits={self.bits}, group_size={self.group_size}, symmetric={self.symmetric}"
