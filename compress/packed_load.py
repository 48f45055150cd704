"""Build a packed checkpoint's model straight from its file, without a dense copy in between.

The model is created with its parameters on the meta device (no memory); its non-persistent
buffers (rotary `inv_freq`, position ids, causal masks) are computed for real as the model's own
code does. Packed layers are rebuilt from the specs in `compression.json`, also on meta. The
file's tensors are then read one by one into memory of their own (no mmap kept alive, so a
layer that later converts its weight to a kernel layout frees the file's bytes) and assigned in
place of the meta tensors: load peak memory is the stored bytes plus the runtime.

Checks stay strict: a tensor the model lacks, a tensor missing from the file, or one of the
wrong shape is an error naming them. Weights tied in the model (embedding and output head)
are tied again after assignment. Floating tensors are cast to the dtype the model asks for
(`dtype=`), except what a packed format keeps at a fixed dtype (fp16 scales).

    >>> # model = load_packed(folder, config, transformers.AutoModelForCausalLM, manifest, None, False)
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from compress.errors import ModelLoadError
from compress.formats.base import build_packed
from compress.saving import MANIFEST_NAME, WEIGHTS_NAME

ROWS_PER_STEP = 64  # rows of a layer unpacked at once from the compressed-tensors layout (a multiple of 32 // bits)


def load_packed(path: Path, config, model_class, manifest: dict, dtype: torch.dtype | None, trust_remote_code: bool) -> nn.Module:
    """The model of a packed checkpoint folder, its tensors those of `model.safetensors`."""
    from compress.engines.sequential import release_memory

    model = empty_model(model_class, config, dtype, trust_remote_code)
    for name, spec in manifest["modules"].items():
        try:
            model.get_submodule(name)
        except AttributeError as error:
            raise ModelLoadError(f"{path / MANIFEST_NAME} names module {name!r}, which {config.model_type} models do not have") from error
        with torch.device("meta"):
            packed = build_packed(spec)
            if dtype is not None:
                packed.to(dtype)  # biases follow the model's dtype; packed codes and fp16 scales keep theirs
        model.set_submodule(name, packed)
    expected = model.state_dict(keep_vars=True)
    aliases = alias_sources(expected)
    state = read_tensors(path / WEIGHTS_NAME)
    for name, spec in manifest["modules"].items():  # one layer at a time, its scratch memory handed back
        _restore_in_rows(state, manifest, name, spec)
        release_memory()
    for name in aliases:
        state.pop(name, None)  # stored once under its first name; tied again below
    _check_names(path, expected, state, aliases)
    for name, tensor in state.items():
        wanted = expected[name].dtype
        if tensor.dtype != wanted and tensor.is_floating_point() and wanted.is_floating_point:
            state[name] = tensor.to(wanted)
    model.load_state_dict(state, strict=False, assign=True)
    del state
    retie(model, aliases)
    left = [n for n, t in (*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)) if t.is_meta]
    if left:
        raise ModelLoadError(f"{path}: {len(left)} tensor(s) were not filled by the checkpoint ({', '.join(left[:3])}); "
                             f"the weights file or {MANIFEST_NAME} was edited or comes from another save")
    return model


def empty_model(model_class, config, dtype: torch.dtype | None, trust_remote_code: bool) -> nn.Module:
    """The model with parameters on the meta device and buffers computed on the CPU."""
    from accelerate import init_empty_weights

    with init_empty_weights(include_buffers=False):
        model = model_class.from_config(config, trust_remote_code=trust_remote_code, **({"dtype": dtype} if dtype else {}))
    if hasattr(model, "tie_weights"):
        model.tie_weights()  # on meta, transformers leaves the tie to loading; the tied names are read from it
    return model


def read_tensors(file: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a safetensors file, each in memory of its own (read, not mapped)."""
    from safetensors import safe_open

    try:
        handle = safe_open(str(file), framework="pt", backend="pread")
    except TypeError:  # safetensors < 0.8 has no backend: mapped pages, counted once touched
        handle = safe_open(str(file), framework="pt")
    with handle:
        return {name: handle.get_tensor(name) for name in handle.keys()}


def alias_sources(state: dict[str, torch.Tensor]) -> dict[str, str]:
    """{alias name: first name} for state-dict entries that are the same tensor object (tied)."""
    first: dict[int, str] = {}
    aliases = {}
    for name, tensor in state.items():
        if tensor is None:
            continue
        if id(tensor) in first:
            aliases[name] = first[id(tensor)]
        else:
            first[id(tensor)] = name
    return aliases


def retie(model: nn.Module, aliases: dict[str, str]) -> None:
    """Point every alias at its source's (assigned) tensor again, as the model had them tied."""
    for alias, source in aliases.items():
        owner_name, _, attribute = alias.rpartition(".")
        source_owner, _, source_attribute = source.rpartition(".")
        tensor = getattr(model.get_submodule(source_owner), source_attribute)
        owner = model.get_submodule(owner_name)
        if attribute in owner._parameters:
            owner._parameters[attribute] = tensor
        else:
            owner._buffers[attribute] = tensor


def _restore_in_rows(state: dict, manifest: dict, name: str, spec: dict, rows: int | None = None) -> None:
    """The native tensors of one layer saved in the compressed-tensors layout, unpacked `rows`
    output rows at a time into tensors allocated once: unpacking widens codes to 32-bit
    integers, which for a whole output head would be several times the layer's stored bytes."""
    from compress.export.native import LAYOUT_CT, restore_layout  # issue 11: the layout save writes

    rows = rows or ROWS_PER_STEP
    out_features = int(spec.get("out_features", 0))
    if manifest.get("layout") != LAYOUT_CT or f"{name}.weight_packed" not in state or out_features <= rows:
        restore_layout(state, {**manifest, "modules": {name: spec}})
        return
    packed, scale = state.pop(f"{name}.weight_packed"), state.pop(f"{name}.weight_scale")
    zero_point = state.pop(f"{name}.weight_zero_point", None)  # packed along the rows, 32 // bits per int32
    per_word = 32 // int(spec["bits"])
    state.pop(f"{name}.weight_shape", None)
    filled: dict[str, torch.Tensor] = {}
    for start in range(0, out_features, rows):
        stop = min(out_features, start + rows)
        part = {f"{name}.weight_packed": packed[start:stop], f"{name}.weight_scale": scale[start:stop]}
        if zero_point is not None:
            part[f"{name}.weight_zero_point"] = zero_point[start // per_word: -(-stop // per_word)]
        restore_layout(part, {**manifest, "modules": {name: {**spec, "out_features": stop - start}}})
        for key, tensor in part.items():
            if key not in filled:
                filled[key] = torch.empty((out_features, *tensor.shape[1:]), dtype=tensor.dtype)
            filled[key][start:stop] = tensor
    del packed, scale, zero_point
    state.update(filled)


def _check_names(path: Path, expected: dict, state: dict, aliases: dict) -> None:
    missing = sorted(n for n in expected if n not in state and n not in aliases)
    unexpected = sorted(n for n in state if n not in expected)
    wrong = sorted(f"{n} {tuple(t.shape)} for {tuple(expected[n].shape)}" for n, t in state.items()
                   if n in expected and tuple(t.shape) != tuple(expected[n].shape))
    if not (missing or unexpected or wrong):
        return
    parts = [f"{label} {len(names)} ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})"
             for label, names in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if names]
    raise ModelLoadError(f"{path / WEIGHTS_NAME} does not match {MANIFEST_NAME}: {'; '.join(parts)}; "
                         f"the weights file or {MANIFEST_NAME} was edited or comes from another save")
