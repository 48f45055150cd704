"""compressed-tensors export: the `pack-quantized` layout vLLM, SGLang and transformers read.

Our `QuantizedLinear` codes map onto compressed-tensors' integer grid without any rounding:

| ours                                   | compressed-tensors (`pack-quantized`)                       |
|----------------------------------------|-------------------------------------------------------------|
| code q in [0, 2**b), w = (q - z) * s   | int q' = q - 2**(b-1), w = (q' - z') * s, z' = z - 2**(b-1) |
| fp16 scales (out, groups)              | `weight_scale` (out, groups), fp16                          |
| fp16 integer zeros (asymmetric)        | `weight_zero_point` packed int32 along the output rows      |
| packed uint8 codes                     | `weight_packed` int32 (`pack_to_int32`), `weight_shape`     |

The package itself packs (`pack_to_int32`), writes `quantization_config` (`ModelCompressor.
update_config`) and, after writing, decompresses every layer with its own
`PackedQuantizationCompressor`: the export is refused unless that equals our dequantized weight
bit for bit. Layers are targeted by exact name, one config group per (bits, grouping, symmetry).

What it cannot hold, refused with one line: 2-, 3-, 5-7-bit codes (vLLM's kernels and older
readers take 4 and 8 bits only), a ragged last group (the format's groups tile the row), and
GPT-2 `Conv1D` layers (compressed-tensors quantizes `nn.Linear` only). Pruned layers
(`SparseLinear`) are copied in the package's `sparse-bitmask` / `sparse-24-bitmask` layouts
with its `sparsity_config` (compress/export/ct_sparse.py says who reads them); pruned layers
holding k-bit codes are refused.

Asymmetric checkpoints carry `"dequantize": true` in their `quantization_config`: transformers
(5.x with compressed-tensors 0.18-0.20) builds the zero-point parameter unpacked on its default
path and then refuses the packed tensor the package itself writes (llm-compressor issue 1618);
the flag sends transformers through its dequantize-on-load path, which reads the standard
layout. vLLM ignores the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from compress.errors import UserError
from compress.export import ct_sparse
from compress.export.common import dense_state_dict, original_types
from compress.formats.base import PackedModule
from compress.formats.quantized_linear import QuantizedLinear
from compress.formats.sparse_linear import SparseLinear

FORMAT_NAME = "compressed-tensors"
PACKED_BITS = (4, 8)
OTHER_FORMATS = "scalecompress's own checkpoint (compress.save), --format gguf or --format hf (dense)"


def refusal(model: nn.Module, types: dict[str, str] | None = None) -> str | None:
    """Why this model cannot be written exactly as compressed-tensors, or None when it can.
    Pruned layers are fine (a copy of their sparse layout) unless they hold k-bit codes; W8A8 and
    other activation-quantized layers are not."""
    types = types if types is not None else original_types(model)
    reason = ct_sparse.refusal(model, OTHER_FORMATS)
    if reason:
        return reason
    for name, module in model.named_modules():
        if isinstance(module, SparseLinear):
            continue
        if isinstance(module, PackedModule) and not isinstance(module, QuantizedLinear):
            return (
                f"layer {name!r} is {getattr(module, 'format_name', type(module).__name__)}; its compressed-tensors form (int-quantized activations) "
                f"is not written by this version, and a dense copy would not compute like it. Use scalecompress's own checkpoint (compress.save)"
            )
        if not isinstance(module, QuantizedLinear):
            continue
        if types.get(name) not in (None, "Linear"):
            return f"layer {name!r} is a {types[name]} (GPT-2 style); compressed-tensors quantizes nn.Linear layers only. Use {OTHER_FORMATS}"
        if module.bits not in PACKED_BITS:
            return f"layer {name!r} has {module.bits}-bit codes; compressed-tensors pack-quantized is served at 4 or 8 bits only. Use {OTHER_FORMATS}"
        if module.group_size is not None and module.in_features % module.group_size and module.group_size < module.in_features:
            return (
                f"layer {name!r} has {module.in_features} inputs, not a multiple of group_size={module.group_size} (a ragged last group); "
                f"compressed-tensors groups tile the row exactly. Quantize with a group size dividing every width, or use {OTHER_FORMATS}"
            )
        if module.zeros is not None:
            zeros = module.zeros.float()
            if bool(((zeros != zeros.round()) | (zeros < 0) | (zeros >= 2**module.bits)).any()):
                return f"layer {name!r} has zero points outside the {module.bits}-bit integer range; compressed-tensors stores them as {module.bits}-bit integers. Use {OTHER_FORMATS}"
    return None


def _args_key(module: QuantizedLinear) -> tuple[int, int | None, bool]:
    grouped = module.group_size is not None and module.group_size < module.in_features
    return module.bits, module.group_size if grouped else None, module.symmetric


def layer_tensors(module: QuantizedLinear) -> dict[str, torch.Tensor]:
    """The compressed-tensors tensors of one layer (names relative to the layer)."""
    from compressed_tensors.compressors.pack_quantized import pack_to_int32

    offset = 2 ** (module.bits - 1)
    codes = module.codes().to(torch.int16) - offset
    tensors = {
        "weight_packed": pack_to_int32(codes.to(torch.int8), module.bits),
        "weight_scale": module.scales.detach().to(torch.float16).contiguous(),
        "weight_shape": torch.tensor([module.out_features, module.in_features], dtype=torch.int64),
    }
    if not module.symmetric:
        zeros = module.zeros.float().to(torch.int16) - offset
        tensors["weight_zero_point"] = pack_to_int32(zeros.to(torch.int8), module.bits, packed_dim=0).contiguous()
    if module.bias is not None:
        tensors["bias"] = module.bias.detach().contiguous()
    return tensors


def _scheme(bits: int, group_size: int | None, symmetric: bool, targets: list[str]):
    from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme

    strategy = "group" if group_size is not None else "channel"
    weights = QuantizationArgs(num_bits=bits, type="int", symmetric=symmetric, strategy=strategy, group_size=group_size)
    return QuantizationScheme(targets=targets, weights=weights)


def quantization_config(model: nn.Module):
    """The package's `QuantizationConfig` describing every `QuantizedLinear` of the model."""
    from compressed_tensors.quantization import QuantizationConfig

    groups: dict[tuple, list[str]] = {}
    for name, module in model.named_modules():
        if isinstance(module, QuantizedLinear):
            groups.setdefault(_args_key(module), []).append(name)
    if not groups:
        return None
    config_groups = {f"group_{i}": _scheme(*key, targets) for i, (key, targets) in enumerate(sorted(groups.items(), key=lambda kv: str(kv[0])))}
    return QuantizationConfig(config_groups=config_groups, format="pack-quantized", quantization_status="compressed")


def state_dict(model: nn.Module, types: dict[str, str], sparse_layout: str | None = None) -> dict[str, torch.Tensor]:
    """Every tensor of the exported checkpoint: quantized layers in `pack-quantized`, pruned layers
    copied in `sparse_layout`, everything else as the model holds it."""
    state = dense_state_dict(model, types)
    for name, module in model.named_modules():
        if isinstance(module, QuantizedLinear):
            tensors = layer_tensors(module)
        elif isinstance(module, SparseLinear):
            tensors = ct_sparse.layer_tensors(module, sparse_layout)
        else:
            continue
        for key in ("weight", "bias"):
            state.pop(f"{name}.{key}", None)
        state.update({f"{name}.{key}": tensor for key, tensor in tensors.items()})
    return state


def validate(model: nn.Module, state: dict[str, torch.Tensor], config) -> None:
    """Decompress every layer with compressed-tensors' own compressor; it must give our weights."""
    from compressed_tensors.compressors.pack_quantized import PackedQuantizationCompressor

    schemes = {target: scheme for scheme in config.config_groups.values() for target in scheme.targets}
    for name, module in model.named_modules():
        if not isinstance(module, QuantizedLinear):
            continue
        local = {key.removeprefix(f"{name}."): t for key, t in state.items() if key.startswith(f"{name}.weight_")}
        local["weight_scale"] = local["weight_scale"].float()
        restored = PackedQuantizationCompressor.decompress(local, schemes[name])["weight"].float()
        if not torch.equal(restored, module.dequantize(torch.float32)):
            worst = float((restored - module.dequantize(torch.float32)).abs().max())
            raise UserError(f"export: compressed-tensors reads layer {name!r} differently from ours (max difference {worst:.3g}); refusing to write it")


def write(model: nn.Module, folder: Path, *, tokenizer: Any = None) -> dict[str, Any]:
    """Write a compressed-tensors checkpoint into `folder` (which exists, empty); returns details."""
    from safetensors.torch import save_file

    types = original_types(model)
    reason = refusal(model, types)
    if reason:
        raise UserError(f"export: cannot write compressed-tensors: {reason}")
    config = quantization_config(model)
    sparse = ct_sparse.sparse_layers(model)
    sparse_layout = ct_sparse.export_layout(sparse)
    state = state_dict(model, types, sparse_layout)
    if config is not None:
        validate(model, state, config)
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    write_config(model, folder, config, ct_sparse.sparsity_config(sparse, sparse_layout) if sparse else None)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    layers = sum(len(s.targets) for s in config.config_groups.values()) if config is not None else 0
    details = {"quantized_layers": layers, "format": "pack-quantized" if config is not None else "dense"}
    if config is not None:
        details["validated_with"] = "compressed_tensors.PackedQuantizationCompressor"
    return details | ct_sparse.details(sparse, sparse_layout)


def write_config(model: nn.Module, folder: Path, config, sparsity: dict[str, Any] | None = None) -> None:
    """config.json (+ generation_config.json) with the package's `quantization_config` and, for
    pruned layers, the `sparsity_config` beside it (as compressed-tensors <= 0.14 wrote it)."""
    import json

    import compressed_tensors
    from compressed_tensors.compressors.model_compressors import ModelCompressor

    hf_config = model.config
    saved = getattr(hf_config, "quantization_config", None)
    if saved is not None:
        del hf_config.quantization_config  # a native-save marker must not travel into the export
    try:
        hf_config.save_pretrained(folder)
    finally:
        if saved is not None:
            hf_config.quantization_config = saved
    generation_config = getattr(model, "generation_config", None)
    if generation_config is not None:
        try:
            generation_config.save_pretrained(folder)
        except ValueError:
            pass
    if config is None and sparsity is None:
        return
    if config is not None:
        ModelCompressor(quantization_config=config).update_config(str(folder))
    path = folder / "config.json"
    document = json.loads(path.read_text())
    section = document.setdefault("quantization_config", {"quant_method": "compressed-tensors", "version": compressed_tensors.__version__, "transform_config": {}})
    if config is not None and any(not scheme.weights.symmetric for scheme in config.config_groups.values()):
        section["dequantize"] = True  # see the module docstring
    if sparsity is not None:
        section["sparsity_config"] = sparsity
        del section["quant_method"]  # transformers 5.x must refuse, not load random weights: see ct_sparse
        document["scalecompress_export"] = ct_sparse.READER_NOTE
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
