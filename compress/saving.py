"""`save`: write a model as a folder of safetensors + config + tokenizer + `compression.json`.

The write is atomic (a hidden sibling folder renamed into place) and careful about what is
already there. A save only ever replaces:

- nothing (a new or empty folder), or
- a folder this package wrote: its `compression.json` says `"writer": "scalecompress"` and
  lists every file in the folder (a user's file added inside makes it foreign again).

It refuses, with one line saying what is there and how to force it, a folder of other files
(`overwrite=True` / `--overwrite` replaces it), and always refuses a symbolic link (it is never
followed; `overwrite` replaces the link itself, never what it points to), a file, the folder of
the source model, and the current folder or one holding it.

    >>> import compress, transformers, tempfile, pathlib
    >>> config = transformers.LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32,
    ...     num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2)
    >>> model = transformers.AutoModelForCausalLM.from_config(config)
    >>> out = compress.save(model, pathlib.Path(tempfile.mkdtemp()) / "tiny")
    >>> sorted(p.name for p in out.iterdir())
    ['compression.json', 'config.json', 'generation_config.json', 'model.safetensors']
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import warnings
from pathlib import Path
from typing import Any

from torch import nn

from compress.atomic import dumps_json, finite_or_none, fsync_file, staged_dir
from compress.errors import UserError, shorten
from compress.faults import fault_point
from compress.formats.base import PackedModule
from compress.model_info import model_info, storage_key

MANIFEST_NAME = "compression.json"
WEIGHTS_NAME = "model.safetensors"
WRITER = "scalecompress"


def save(
    model: nn.Module,
    out_dir: str | os.PathLike,
    *,
    tokenizer: Any = None,
    manifest: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write model (+ tokenizer) to `out_dir` atomically; returns the folder.

    `compression.json` holds `manifest` (recipe, pass reports, source model, variant) plus the
    packed modules' specs, the SHA-256 of the weights file (the checkpoint's identity), library
    versions and the measured weight bytes. An interrupted save leaves the previous folder (or
    none), never a half-written one.

        >>> save(model, "out/tiny-rtn4", tokenizer=tokenizer, manifest={"source_model": "tiny"})  # doctest: +SKIP
    """
    from safetensors.torch import save_file

    out = Path(os.path.abspath(Path(out_dir).expanduser()))  # absolute, but links not followed
    check_target(out, overwrite=overwrite, source=(manifest or {}).get("source_model"))
    if out.is_symlink():  # only reached with overwrite: replace the link, never its target
        out.unlink()
    _warn_non_finite(model)
    with staged_dir(out, replace=lambda target: True) as staging:  # check_target decided
        aliases = set(tied_names(model))
        tensors = {
            name: tensor.detach().to("cpu").contiguous()
            for name, tensor in model.state_dict().items()
            if name not in aliases and tensor is not None
        }
        tensors, quantization_config, layout = _export_hook_layout(model, tensors)
        save_file(tensors, str(staging / WEIGHTS_NAME), metadata={"format": "pt"})
        if getattr(model, "config", None) is not None:
            model.config.save_pretrained(staging)
            _export_hook_config(staging, quantization_config)
        generation_config = getattr(model, "generation_config", None)
        if generation_config is not None:
            try:
                generation_config.save_pretrained(staging)
            except ValueError:
                pass  # an invalid generation config must not block saving the weights
        if tokenizer is not None:
            tokenizer.save_pretrained(staging)
        _write_manifest(model, staging, {**(manifest or {}), "layout": layout})
        fault_point("save")  # everything written, nothing renamed yet
    return out


def _write_manifest(model: nn.Module, staging: Path, extra: dict[str, Any]) -> None:
    packed = {name: {"format": m.format_name, **m.spec()} for name, m in model.named_modules() if isinstance(m, PackedModule)}
    info = model_info(model)
    document = {
        "schema": 1,
        "writer": WRITER,
        **extra,
        "modules": packed,
        "content_sha256": file_sha256(staging / WEIGHTS_NAME),
        "weight_bytes": info.weight_bytes,
        "weights_file_bytes": (staging / WEIGHTS_NAME).stat().st_size,
        "params": info.params,
        "non_embedding_params": info.non_embedding_params,
        "versions": _versions(),
        "files": sorted([p.name for p in staging.iterdir()] + [MANIFEST_NAME]),
    }
    if extra.get("passes") and not extra.get("variant"):
        from compress.bench.describe import describe_manifest

        document["variant"] = describe_manifest(document).get("variant")
    (staging / MANIFEST_NAME).write_text(dumps_json(finite_or_none(document)) + "\n", encoding="utf-8")
    fsync_file(staging / MANIFEST_NAME)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _versions() -> dict[str, str]:
    versions = {}
    for package in ("scalecompress", "torch", "transformers", "safetensors"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def _warn_non_finite(model: nn.Module) -> None:
    bad = [name for name, tensor in model.state_dict().items() if tensor is not None and tensor.is_floating_point() and not tensor.isfinite().all()]
    if bad:
        warnings.warn(f"saving {len(bad)} tensor(s) holding NaN or infinity ({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}); the model's outputs will be NaN", stacklevel=3)


def tied_names(model: nn.Module) -> list[str]:
    """State-dict names that are aliases of an earlier tensor (tied embeddings)."""
    seen: dict[tuple[int, int], str] = {}
    aliases = []
    for name, tensor in model.state_dict(keep_vars=True).items():
        if tensor is None or tensor.numel() == 0:
            continue
        key = storage_key(tensor)
        if key in seen:
            aliases.append(name)
        else:
            seen[key] = name
    return aliases


# ---------------------------------------------------------------------------------------------
# What may be replaced


def written_by_us(folder: Path) -> bool:
    """True when `folder` is a checkpoint this package saved and holds nothing else."""
    import json

    try:
        document = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(document, dict) or document.get("writer") != WRITER or not isinstance(document.get("files"), list):
        return False
    return {entry.name for entry in folder.iterdir()} <= set(document["files"])


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_target(out: Path, *, overwrite: bool = False, source: str | None = None) -> None:
    """Raise UserError unless writing a checkpoint folder at `out` can lose nothing of the user's."""
    cwd = Path.cwd().resolve()
    if not out.is_symlink() and _inside(cwd, out.resolve()):
        raise UserError(f"refusing to save into {out}: it is the current folder or holds it; name a new folder, e.g. {out / 'model'}")
    if source and Path(str(source)).expanduser().is_dir():
        source_dir = Path(str(source)).expanduser().resolve()
        if _inside(source_dir, out.resolve()):
            raise UserError(f"refusing to save into {out}: it holds the source model {source}; choose another output folder")
    if out.is_symlink():
        if not overwrite:
            raise UserError(
                f"{out} is a symbolic link (to {os.readlink(out)}); a save never writes through links: "
                "choose another folder, or pass --overwrite to replace the link itself (its target is left alone)"
            )
        return
    if not out.exists():
        return
    if not out.is_dir():
        raise UserError(f"{out} is a file, not a folder; choose another output folder")
    entries = sorted(entry.name for entry in out.iterdir())
    if not entries or written_by_us(out) or overwrite:
        return
    raise UserError(
        f"{out} already holds files scalecompress did not write ({shorten(', '.join(entries), 60)}); "
        "choose a new or empty folder, or pass --overwrite to replace it"
    )


# ---------------------------------------------------------------------------------------------
# Export hook (issue 11, compress/export/native.py): the saved folder is either loadable by plain
# transformers (compressed-tensors layout) or refused by it; never read as random dense weights.


def _export_hook_layout(model: nn.Module, tensors: dict[str, Any]):
    from compress.export.native import saved_layout

    return saved_layout(model, tensors)


def _export_hook_config(folder: Path, quantization_config: dict[str, Any] | None) -> None:
    import json

    document = json.loads((folder / "config.json").read_text())
    existing = document.get("quantization_config")
    if quantization_config is None and not (isinstance(existing, dict) and "scalecompress" in existing):
        return  # nothing packed here, or a config transformers reads (bitsandbytes): keep it
    document["quantization_config"] = quantization_config
    if quantization_config is None:
        del document["quantization_config"]  # our stale marker, on a model no longer packed
    (folder / "config.json").write_text(dumps_json(document) + "\n", encoding="utf-8")
