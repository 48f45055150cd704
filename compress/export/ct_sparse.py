"""compressed-tensors' sparse layouts for pruned layers: `sparse-bitmask` and `sparse-24-bitmask`.

`SparseLinear` (compress/formats/sparse_linear.py) already stores compressed-tensors' own
tensors for these layouts — `shape`, `compressed`, `bitmask` (and `row_offsets` for the
unstructured layout), same names, dtypes and bit order — so the export is a copy of them, with
the `sparsity_config` the package's config classes (`BitmaskConfig`, `Sparse24BitMaskConfig`)
describe. One model has one sparse format; when its pruned layers mix both layouts the 2:4
ones are written as `sparse-bitmask` (the same kept values in the same order, plus
`row_offsets`: exact, and said in the details).

Who reads these folders (checked with the installed versions, Nov 2026):
- compressed-tensors 0.14.0.1 is the last release with the sparse compressors
  (`BitmaskCompressor`, `Sparse24BitMaskCompressor`, `ModelCompressor.decompress`); 0.15+ keep
  only the config classes, marked legacy. The tests decompress our exports with 0.14.0.1 in a
  fresh process: weights equal ours bit for bit, logits equal.
- transformers 5.x requires compressed-tensors >= 0.15 and ignores `sparsity_config`: given the
  package's document it loads the folder with the pruned layers randomly initialised (exit 0).
  So the export leaves `quant_method` out of `quantization_config`: transformers (5.24 checked)
  then raises ("no `quant_method` attribute") instead, while compressed-tensors' own
  `ModelCompressor.from_pretrained` reads the folder unchanged. A reader wanting the legacy
  transformers 4.x path (compressed-tensors <= 0.14 decompresses on load) adds
  `"quant_method": "compressed-tensors"` back; config.json's `scalecompress_export` says so.

Refused, one line each: pruned layers holding k-bit codes (SparseGPT's joint quantization: the
package's sparse layouts hold unquantized values; its one sparse + int4 format, marlin-24, left
with 0.14 and took symmetric group-128 codes only), and models mixing pruned with quantized
layers (0.14.0.1, the one reader of the sparse layouts, fails to decompress that mix).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from compress.formats.sparse_linear import SparseLinear

LAYOUT_TENSORS = {"sparse-bitmask": ("shape", "compressed", "bitmask", "row_offsets"), "sparse-24-bitmask": ("shape", "compressed", "bitmask")}
READER_NOTE = (
    "pruned layers in compressed-tensors' sparse layouts: read by compressed-tensors<=0.14.0.1 (ModelCompressor.decompress; with transformers 4.x "
    "after adding \"quant_method\": \"compressed-tensors\" to quantization_config); transformers 5.x cannot read them and refuses: "
    "for it, export with `scalecompress export --format hf` (dense)"
)


def sparse_layers(model: nn.Module) -> dict[str, SparseLinear]:
    return {name: m for name, m in model.named_modules() if isinstance(m, SparseLinear)}


def refusal(model: nn.Module, other_formats: str) -> str | None:
    """Why the model's pruned layers cannot be written in compressed-tensors' sparse layouts, or None."""
    from compress.formats.base import PackedModule

    layers = sparse_layers(model)
    for name, module in layers.items():
        if module.bits is not None:
            return (
                f"layer {name!r} is pruned with {module.bits}-bit codes (sparse + quantized); compressed-tensors' sparse layouts hold unquantized "
                f"values only (its one sparse+int4 format, marlin-24, was dropped after 0.14), so it cannot hold this exactly. Use {other_formats}"
            )
    other = next((name for name, m in model.named_modules() if isinstance(m, PackedModule) and not isinstance(m, SparseLinear)), None)
    if layers and other is not None:
        return (
            f"the model mixes pruned layers ({next(iter(layers))!r}) with quantized ones ({other!r}); compressed-tensors 0.14.0.1, the one release "
            f"that reads sparse layouts, cannot decompress that mix, and 5.x reads no sparse layout. Use {other_formats}"
        )
    return None


def export_layout(layers: dict[str, SparseLinear]) -> str | None:
    """The model's one sparse format: the layers' own layout when they agree, else sparse-bitmask."""
    layouts = {m.layout for m in layers.values()}
    return None if not layouts else layouts.pop() if len(layouts) == 1 else "sparse-bitmask"


def layer_tensors(module: SparseLinear, layout: str) -> dict[str, torch.Tensor]:
    """The layer's tensors in `layout` (names relative to the layer): a copy of its own buffers,
    or, for a 2:4 layer written as sparse-bitmask, the same values with `row_offsets` added."""
    tensors = {key: module.get_buffer(key).detach().contiguous() for key in LAYOUT_TENSORS[module.layout]}
    if layout != module.layout:  # 2:4 -> unstructured: flat values, (2,) shape, row offsets
        counts = module.mask().sum(dim=1)
        tensors = {
            "shape": tensors["shape"].reshape(-1).contiguous(),
            "compressed": tensors["compressed"].reshape(-1).contiguous(),
            "bitmask": tensors["bitmask"],
            "row_offsets": (torch.cumsum(counts, 0) - counts).to(torch.int64),
        }
    if module.bias is not None:
        tensors["bias"] = module.bias.detach().contiguous()
    return tensors


def sparsity_config(layers: dict[str, SparseLinear], layout: str) -> dict[str, Any]:
    """The `sparsity_config` document, built by the package's own config class for `layout`."""
    from compressed_tensors.config import SparsityCompressionConfig

    weights = sum(m.in_features * m.out_features for m in layers.values())
    kept = sum(m.nnz for m in layers.values())
    config = SparsityCompressionConfig.load_from_registry(
        layout, targets=sorted(layers), global_sparsity=round(1 - kept / weights, 6), sparsity_structure="2:4" if layout == "sparse-24-bitmask" else "unstructured"
    )
    return config.model_dump()


def details(layers: dict[str, SparseLinear], layout: str | None) -> dict[str, Any]:
    if not layers:
        return {}
    converted = sorted(name for name, m in layers.items() if m.layout != layout)
    return {"sparse_layers": len(layers), "sparse_format": layout, "sparse_converted_24_to_bitmask": converted, "sparse_readers": READER_NOTE}
