"""No silent random weights: what `compress.save` writes is either loadable by plain
transformers with the same weights, or refused by it.

- Every packed layer compressed-tensors can express (4/8-bit `QuantizedLinear` on `nn.Linear`,
  whole groups): `save` stores it in compressed-tensors' `pack-quantized` tensors
  (`weight_packed`, `weight_scale`, `weight_zero_point`, `weight_shape`) with the package's
  `quantization_config` in config.json, so `AutoModelForCausalLM.from_pretrained` (with
  `compressed-tensors` installed) reproduces our weights; `compress.load` turns them back into
  `QuantizedLinear` (`restore_layout`). The manifest says `"layout": "compressed-tensors"`.
- Anything else packed (2/3-bit, ragged groups, GPT-2 Conv1D, sparse formats): the native
  tensors stay, and config.json gets a `quantization_config` that transformers rejects while
  loading (`REFUSAL`), so it raises instead of filling those layers with random weights.
- `mark_packed(model)` puts the same refusal on a model's in-memory config once a pass packed a
  layer, so `model.save_pretrained()` writes a folder that transformers refuses too.

    >>> REFUSAL["format"]
    'scalecompress-packed:use-compress.load'
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from compress.formats.base import PackedModule
from compress.formats.packing import pack_codes
from compress.formats.quantized_linear import QuantizedLinear

LAYOUT_CT = "compressed-tensors"
LAYOUT_NATIVE = "native"
# An invalid compressed-tensors format (in the config group, where compressed-tensors validates
# it): transformers raises a ValidationError while reading config.json, and the value (kept
# under pydantic's 50-character display limit) tells the user what to do.
REFUSAL = {
    "quant_method": "compressed-tensors",
    "format": "scalecompress-packed:use-compress.load",
    "config_groups": {"group_0": {"targets": ["Linear"], "weights": {"num_bits": 4, "type": "int", "symmetric": True, "strategy": "channel"}, "format": "scalecompress-packed:use-compress.load"}},
    "quantization_status": "compressed",
    "scalecompress": "packed layers transformers cannot read; load with compress.load or `scalecompress export --format hf`",
}


def _packed(model: nn.Module) -> dict[str, PackedModule]:
    return {name: m for name, m in model.named_modules() if isinstance(m, PackedModule)}


def saved_layout(model: nn.Module, tensors: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None, str]:
    """(tensors to save, quantization_config for config.json or None, layout name) for `save`."""
    packed = _packed(model)
    if not packed:
        return tensors, None, LAYOUT_NATIVE
    from compress.export import compressed_tensors as ct
    from compress.export.common import original_types

    only_quantized = all(isinstance(m, QuantizedLinear) for m in packed.values())
    try:
        reason = ct.refusal(model, original_types(model)) if only_quantized else "sparse/other packed layers"
    except ImportError:
        reason = "compressed-tensors is not installed"
    if reason:
        return tensors, dict(REFUSAL), LAYOUT_NATIVE
    try:
        config = ct.quantization_config(model)
        layers = {name: ct.layer_tensors(module) for name, module in packed.items()}
    except ImportError:
        return tensors, dict(REFUSAL), LAYOUT_NATIVE
    out = {k: v for k, v in tensors.items() if not any(k.startswith(f"{name}.") for name in packed)}
    for name, layer in layers.items():
        out.update({f"{name}.{key}": tensor for key, tensor in layer.items()})
    document = {"quant_method": "compressed-tensors", **config.model_dump(exclude=["quant_method"])}
    if any(not s.weights.symmetric for s in config.config_groups.values()):
        document["dequantize"] = True  # see compress/export/compressed_tensors.py
    import compressed_tensors

    document["version"] = compressed_tensors.__version__
    return out, document, LAYOUT_CT


def restore_layout(state: dict[str, torch.Tensor], manifest: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The native state dict (`qweight`, `scales`, `zeros`) of a checkpoint saved in the
    compressed-tensors layout; other checkpoints come back unchanged."""
    if manifest.get("layout") != LAYOUT_CT:
        return state
    from compressed_tensors.compressors.pack_quantized import unpack_from_int32

    for name, spec in manifest.get("modules", {}).items():
        if f"{name}.weight_packed" not in state:
            continue
        bits, out_features, in_features = int(spec["bits"]), int(spec["out_features"]), int(spec["in_features"])
        offset = 2 ** (bits - 1)
        codes = unpack_from_int32(state.pop(f"{name}.weight_packed"), bits, torch.Size([out_features, in_features])).to(torch.int16) + offset
        state.pop(f"{name}.weight_shape", None)
        state[f"{name}.qweight"] = pack_codes(codes.to(torch.uint8), bits)
        scales = state.pop(f"{name}.weight_scale")
        state[f"{name}.scales"] = scales.to(torch.float16)
        zero_point = state.pop(f"{name}.weight_zero_point", None)
        if zero_point is not None:
            zeros = unpack_from_int32(zero_point, bits, torch.Size([out_features, scales.shape[1]]), packed_dim=0).to(torch.int16) + offset
            state[f"{name}.zeros"] = zeros.to(torch.float16)
    return state


def mark_packed(model: nn.Module) -> None:
    """Put the refusal marker on the model's config when it holds packed layers (so a plain
    `save_pretrained` cannot produce a folder transformers reads as dense random weights)."""
    config = getattr(model, "config", None)
    existing = getattr(config, "quantization_config", None)
    if config is not None and _packed(model) and (existing is None or (isinstance(existing, dict) and "scalecompress" in existing)):
        config.quantization_config = dict(REFUSAL)
