"""Dequantize a `QuantizedLinear` held in the CPU int4 kernel's layout, for the prefill path.

Many token rows (prefill, batches) run faster as dequantize-to-fp32 + one dense GEMM than on the
int4 kernel (which computes in small row blocks), *if* the dequantization costs about one write
of the dense weight. Eager torch needs ~6 passes (unpack nibbles, undo the layout, widen, look
up scale and zero, multiply, add), so for big layers and many rows the same function runs
compiled by `torch.compile` (inductor fuses it into one loop; compiled once per layout and bit
class with dynamic shapes, cached on disk by inductor). The weights are exact: fp16 scales and
zeros as stored, not the kernel's bf16 table.

Set `SCALECOMPRESS_COMPILE=0` to keep everything eager (the test suite does, to stay fast); a
failed compilation (no C++ compiler) warns once and falls back to eager.

    >>> import torch
    >>> from compress.formats.quantized_linear import QuantizedLinear
    >>> layer = QuantizedLinear.from_codes(torch.randint(0, 16, (32, 64), dtype=torch.uint8),
    ...     torch.full((32, 1), 0.5).half(), torch.full((32, 1), 8.0).half(), bits=4, group_size=None)
    >>> _ = layer(torch.randn(1, 64))  # converted to the kernel layout
    >>> layer._kernel is None or torch.equal(dense_weight(layer, torch.float32, rows=1), layer.dequantize())
    True
"""

from __future__ import annotations

import os
import warnings

import torch

from compress.formats import cpu_int4

COMPILE_MIN_ROWS = 16  # more rows than this: compiled (when allowed); fewer run the int4 kernel anyway
COMPILE_MIN_WEIGHTS = 1 << 16  # small layers: eager
_compiled = None
_compile_failed = False


def _dequantize(packed, scales, zeros, group: int, rows: int, columns: int, out_features: int, in_features: int,
                bits: int, style: str, block: int, dtype: torch.dtype):
    nibbles = cpu_int4._unpack(packed, rows, columns, style, block)[:out_features]
    if columns != in_features:  # 5-8 bits: high and low nibbles side by side
        codes = nibbles[:, :in_features].float() * 16 + nibbles[:, in_features:].float()
    elif bits < 4:  # 2-3 bits run shifted by 8 - zero: (q - zero) = nibble - 8
        codes = nibbles.float() - 8
    else:
        codes = nibbles.float()
    groups = scales.shape[1]
    padding = groups * group - in_features  # a ragged last group: pad to whole groups, cut after
    grouped = torch.nn.functional.pad(codes, (0, padding)).view(out_features, groups, group)
    if not (bits < 4 and columns == in_features):
        grouped = grouped - (zeros.float() if zeros is not None else torch.full_like(scales, 2 ** (bits - 1), dtype=torch.float32)).unsqueeze(-1)
    weight = (grouped * scales.float().unsqueeze(-1)).view(out_features, groups * group)
    return (weight[:, :in_features] if padding else weight).to(dtype)


def dense_weight(layer, dtype: torch.dtype, rows: int) -> torch.Tensor:
    """The dense weight (out, in) of a layer that holds the kernel layout, in `dtype`."""
    global _compiled, _compile_failed
    kernel = layer._kernel
    style, block = cpu_int4.kernel_layout()
    function = _dequantize
    if compiles(rows, layer.in_features * layer.out_features):
        if _compiled is None:
            _compiled = torch.compile(_dequantize, dynamic=True)
        function = _compiled
    arguments = (kernel.packed, layer.scales, layer.zeros, layer.group_size or layer.in_features, kernel.rows, kernel.columns, layer.out_features,
                 layer.in_features, layer.bits, style, block, dtype)
    if function is _dequantize:
        return _dequantize(*arguments)
    try:
        return function(*arguments)
    except Exception as error:  # noqa: BLE001 - any compiler failure: eager is correct, only slower
        _compile_failed = True
        warnings.warn(f"torch.compile of the prefill dequantization failed ({type(error).__name__}); running it eager (slower prefill)", stacklevel=2)
        return _dequantize(*arguments)


def compiles(rows: int, weights: int) -> bool:
    """Whether a call on `rows` token rows of a layer of `weights` weights dequantizes compiled."""
    return rows > COMPILE_MIN_ROWS and weights >= COMPILE_MIN_WEIGHTS and _compile_allowed()


def _compile_allowed() -> bool:
    return not _compile_failed and os.environ.get("SCALECOMPRESS_COMPILE", "1") != "0" and hasattr(torch, "compile")
