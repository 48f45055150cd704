"""Packed weight formats: the storage and compute of compressed layers.

Importing this package registers the built-in formats with `compress.formats.base.FORMATS`:
"packed_int" (`QuantizedLinear`: 2–8-bit codes, packed, fp16 group scales/zeros).
"""

from compress.formats.base import FORMATS, PackedModule, build_packed, register_format
from compress.formats.quantized_linear import QuantizedLinear

__all__ = ["FORMATS", "PackedModule", "QuantizedLinear", "build_packed", "register_format"]
