"""Packed weight formats: the storage and compute of compressed layers.

Importing this package registers the built-in formats with `compress.formats.base.FORMATS`.
"""

from compress.formats.base import FORMATS, PackedModule, build_packed, register_format

__all__ = ["FORMATS", "PackedModule", "build_packed", "register_format"]
