"""Packed weight formats: the storage and compute of compressed layers.

Importing this package registers the built-in formats with `compress.formats.base.FORMATS`:
"packed_int" (`QuantizedLinear`: 2–8-bit codes, packed, fp16 group scales/zeros),
"w8a8" (`Int8Linear`: int8 weights, per-token int8 activations, an int8 GEMM) and
"packed_embedding" (`QuantizedEmbedding`: a token table in the "packed_int" layout, dequantized
at lookup; tied models read the output head's table), "sparse_bitmask" (`SparseLinear`: kept values + bitmask in compressed-tensors' sparse layouts,
optionally with packed k-bit codes as values).
"""

from compress.formats.base import FORMATS, PackedModule, build_packed, register_format
from compress.formats.quantized_embedding import QuantizedEmbedding
from compress.formats.quantized_linear import QuantizedLinear
from compress.formats.sparse_linear import SparseLinear
from compress.formats.w8a8 import Int8Linear

__all__ = ["FORMATS", "Int8Linear", "PackedModule", "QuantizedEmbedding", "QuantizedLinear", "SparseLinear", "build_packed", "register_format"]
