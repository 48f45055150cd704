"""`scalecompress info` without loading weights: config + safetensors header (+ compression.json).

Parameters are counted on the architecture built on the meta device (no memory, no init);
stored bytes come from the safetensors header; the tensor names are checked against the
architecture, so a packed checkpoint that lost its manifest is an error here too.

    >>> describe_folder("out/tiny-rtn4")["weight_bytes"]  # doctest: +SKIP
    53248
"""

from __future__ import annotations

import json
import struct
from collections import Counter
from pathlib import Path

from compress.errors import ModelLoadError

_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}
_DTYPE_NAMES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64"}


def read_header(file: Path) -> dict[str, dict]:
    """Tensor name -> {dtype, shape} from a safetensors file's header (the weights are not read)."""
    try:
        with open(file, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > 100_000_000:
                raise ValueError("header length out of range")
            header = json.loads(handle.read(length))
    except (OSError, ValueError, struct.error) as error:
        raise ModelLoadError(f"{file} is not a readable safetensors file ({error}); the checkpoint is damaged") from None
    header.pop("__metadata__", None)
    return header


def _headers(folder: Path) -> dict[str, dict]:
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text(encoding="utf-8")).get("weight_map", {}).values()))
        return {name: entry for shard in shards for name, entry in read_header(folder / shard).items()}
    return read_header(folder / "model.safetensors")


def describe_folder(source: str, *, trust_remote_code: bool = False) -> dict:
    """ModelInfo fields of a checkpoint; a local folder is described without reading weights."""
    import torch

    from compress.checkpoint import _check_local_folder, _model_class, check_weight_names, load, read_manifest
    from compress.model_info import count_params
    from compress.quiet import quiet_transformers

    path = Path(source).expanduser()
    if not path.is_dir():
        with quiet_transformers():
            return load(source, trust_remote_code=trust_remote_code).info.to_dict()
    _check_local_folder(path, trust_remote_code)
    import transformers

    config = transformers.AutoConfig.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    manifest = read_manifest(path) or {}
    header = _headers(path)
    with torch.device("meta"), quiet_transformers():
        model = _model_class(config, "auto").from_config(config, trust_remote_code=trust_remote_code)
    packed = manifest.get("modules") or {}
    expected = set(model.state_dict()) - set(tied_names_meta(model))
    if not packed:  # packed modules change tensor names; load() checks those against the manifest
        check_weight_names(path, expected - set(header), set(header) - expected)
    total, non_embedding = count_params(model)
    floats = Counter()
    for entry in header.values():
        if entry["dtype"] in _DTYPE_NAMES:
            floats[entry["dtype"]] += _numel(entry["shape"])  # the dtype most weights are stored in
    stored = sum(_numel(entry["shape"]) * _DTYPE_BYTES.get(entry["dtype"], 4) for entry in header.values())
    architectures = getattr(config, "architectures", None) or [type(model).__name__]
    return {
        "source": str(source),
        "architecture": architectures[0],
        "model_type": config.model_type,
        "params": int(manifest.get("params") or total),
        "non_embedding_params": int(manifest.get("non_embedding_params") or non_embedding),
        "dtype": _DTYPE_NAMES[floats.most_common(1)[0][0]] if floats else "unknown",
        "weight_bytes": int(manifest.get("weight_bytes") or stored),
        "compressed": bool(packed or manifest.get("passes")),
    }


def tied_names_meta(model) -> list[str]:
    # Tied tensors on the meta device share no storage pointer; ask the model which are tied.
    names = set()
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    inputs = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    if output is not None and inputs is not None and getattr(output, "weight", None) is getattr(inputs, "weight", None):
        for name, module in model.named_modules():
            if module is output:
                names.add(f"{name}.weight")
    return sorted(names)


def _numel(shape) -> int:
    count = 1
    for dim in shape:
        count *= int(dim)
    return count
