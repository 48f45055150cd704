"""Load and save checkpoints: hub ids, local folders, and the compressed folders `save` writes.

`load` takes a Hugging Face hub id or a local folder (config.json + safetensors), including the
folders `save` writes for compressed models. `save` writes safetensors + config + tokenizer +
`compression.json` atomically: into a hidden sibling folder that is renamed into place.

    >>> import compress, transformers
    >>> config = transformers.LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32,
    ...     num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2)
    >>> model = transformers.AutoModelForCausalLM.from_config(config)
    >>> import tempfile, pathlib; out = pathlib.Path(tempfile.mkdtemp()) / "tiny"
    >>> _ = compress.save(model, out)
    >>> model, tokenizer, info = compress.load(out)
    >>> info.params == sum(p.numel() for p in model.parameters())
    True
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from compress.errors import ModelLoadError, UserError
from compress.formats.base import PackedModule, build_packed
from compress.model_info import ModelInfo, count_params, model_info, storage_key, weight_bytes  # noqa: F401 - public here too

MANIFEST_NAME = "compression.json"
WEIGHTS_NAME = "model.safetensors"
TASKS = ("auto", "causal-lm", "masked-lm", "base")


class Loaded(NamedTuple):
    model: nn.Module
    tokenizer: Any
    info: ModelInfo


# ---------------------------------------------------------------------------------------------
# Loading


def _model_class(config, task: str):
    import transformers

    if task not in TASKS:
        raise UserError(f"unknown task {task!r}; allowed: {', '.join(TASKS)}")
    if task == "auto":
        architectures = " ".join(getattr(config, "architectures", None) or [])
        if "MaskedLM" in architectures or (config.model_type in ("bert", "roberta", "distilbert", "deberta", "electra") and "CausalLM" not in architectures):
            task = "masked-lm"
        elif "CausalLM" in architectures or "LMHead" in architectures or config.model_type in _causal_lm_types():
            task = "causal-lm"
        else:
            task = "base"
    return {
        "causal-lm": transformers.AutoModelForCausalLM,
        "masked-lm": transformers.AutoModelForMaskedLM,
        "base": transformers.AutoModel,
    }[task]


def _causal_lm_types() -> set[str]:
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)


def _hub_error(source: str, error: Exception) -> ModelLoadError:
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    why = "the Hugging Face Hub is disabled (HF_HUB_OFFLINE=1)" if offline else "the Hugging Face Hub could not be reached or has no such model"
    return ModelLoadError(
        f"cannot load {source!r}: it is not a local folder and {why}. "
        f"Download it on a connected machine and pass the folder, or check the id. ({first_line})"
    )


def _check_local_folder(path: Path) -> None:
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"{path} has no config.json; pass a folder written by save_pretrained or compress.save")
    has_safetensors = (path / WEIGHTS_NAME).is_file() or (path / "model.safetensors.index.json").is_file()
    if not has_safetensors:
        pickles = sorted(p.name for p in path.glob("*.bin")) + sorted(p.name for p in path.glob("*.pt"))
        hint = f" (found {', '.join(pickles)}: pickle files are never loaded; convert them to safetensors on a trusted machine)" if pickles else ""
        raise ModelLoadError(f"{path} has no safetensors weights{hint}")


def _load_tokenizer(source: str, trust_remote_code: bool):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, TypeError):
        return None


def read_manifest(path: str | os.PathLike) -> dict[str, Any] | None:
    """The `compression.json` of a local checkpoint folder, or None."""
    manifest = Path(path) / MANIFEST_NAME
    if not manifest.is_file():
        return None
    try:
        return json.loads(manifest.read_text())
    except json.JSONDecodeError as error:
        raise ModelLoadError(f"{manifest} is not valid JSON ({error}); the checkpoint is damaged") from error


def load(
    source: str | os.PathLike,
    *,
    dtype: str | torch.dtype | None = None,
    device: str = "cpu",
    trust_remote_code: bool = False,
    task: str = "auto",
) -> Loaded:
    """Load a checkpoint from a hub id or a local folder; returns (model, tokenizer, info).

    Compressed checkpoints written by `compress.save` come back with their packed layers.
    Weights are only read from safetensors; `trust_remote_code` must be asked for.

        >>> model, tokenizer, info = load("EleutherAI/pythia-70m")  # doctest: +SKIP
        >>> info.non_embedding_params  # doctest: +SKIP
        18915328
    """
    import transformers

    source_str = str(source)
    path = Path(source_str).expanduser()
    local = path.is_dir()
    if not local and (source_str.startswith((".", "/", "~")) or path.suffix in (".json", ".safetensors")):
        raise UserError(f"model folder {source_str!r} does not exist")
    if isinstance(dtype, str):
        if not hasattr(torch, dtype) or not isinstance(getattr(torch, dtype), torch.dtype):
            raise UserError(f"unknown dtype {dtype!r}; allowed: float32, float16, bfloat16")
        dtype = getattr(torch, dtype)
    if local:
        _check_local_folder(path)
    manifest = read_manifest(path) if local else None
    try:
        config = transformers.AutoConfig.from_pretrained(source_str, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        if local:
            raise ModelLoadError(f"cannot read the config in {path}: {error}") from error
        raise _hub_error(source_str, error) from error
    model_class = _model_class(config, task)
    if manifest and manifest.get("modules"):
        model = _load_packed(path, config, model_class, manifest, dtype, trust_remote_code)
    else:
        kwargs = {"use_safetensors": True, "trust_remote_code": trust_remote_code}
        if dtype is not None:
            kwargs["dtype"] = dtype
        try:
            model = model_class.from_pretrained(source_str, **kwargs)
        except OSError as error:
            if local:
                raise ModelLoadError(f"cannot load weights from {path}: {error}") from error
            raise _hub_error(source_str, error) from error
    model.to(device)
    model.eval()
    tokenizer = _load_tokenizer(source_str, trust_remote_code)
    return Loaded(model, tokenizer, model_info(model, source=source_str))


def _load_packed(path: Path, config, model_class, manifest, dtype, trust_remote_code) -> nn.Module:
    from safetensors.torch import load_file

    with _skip_init():
        model = model_class.from_config(config, trust_remote_code=trust_remote_code, **({"dtype": dtype} if dtype else {}))
    for name, spec in manifest["modules"].items():
        try:
            model.get_submodule(name)
        except AttributeError as error:
            raise ModelLoadError(f"{path / MANIFEST_NAME} names module {name!r}, which {config.model_type} models do not have") from error
        packed = build_packed(spec)
        if dtype is not None:
            packed.to(dtype)  # biases follow the model's dtype; packed codes and fp16 scales keep theirs
        model.set_submodule(name, packed)
    state = _export_hook_restore(load_file(str(path / WEIGHTS_NAME)), manifest)
    result = model.load_state_dict(state, strict=False)
    tied = set(_tied_names(model))
    missing = [k for k in result.missing_keys if k not in tied]
    if missing or result.unexpected_keys:
        raise ModelLoadError(
            f"{path / WEIGHTS_NAME} does not match its manifest: missing {missing[:5]}, unexpected {result.unexpected_keys[:5]}"
        )
    if tied and hasattr(model, "tie_weights"):
        model.tie_weights()
    return model


class _skip_init:
    """Skip random initialisation of weights that the checkpoint overwrites anyway."""

    def __enter__(self):
        self._saved = {}
        for module in (nn.init,):
            for name in ("normal_", "uniform_", "kaiming_uniform_", "kaiming_normal_", "trunc_normal_", "xavier_uniform_", "xavier_normal_", "zeros_", "ones_", "constant_"):
                self._saved[(module, name)] = getattr(module, name)
                setattr(module, name, lambda tensor, *args, **kwargs: tensor)
        return self

    def __exit__(self, *exc):
        for (module, name), fn in self._saved.items():
            setattr(module, name, fn)
        return False


def _tied_names(model: nn.Module) -> list[str]:
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
# Saving


def _versions() -> dict[str, str]:
    import importlib.metadata

    versions = {}
    for package in ("scalecompress", "torch", "transformers", "safetensors"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def save(
    model: nn.Module,
    out_dir: str | os.PathLike,
    *,
    tokenizer: Any = None,
    manifest: dict[str, Any] | None = None,
) -> Path:
    """Write model (+ tokenizer) to `out_dir` atomically; returns the folder.

    `compression.json` holds `manifest` (recipe, pass reports, source model) plus the packed
    modules' specs, library versions and the measured weight bytes. An interrupted save leaves
    the previous folder (or none), never a half-written one.

        >>> save(model, "out/tiny-rtn4", tokenizer=tokenizer, manifest={"source_model": "tiny"})  # doctest: +SKIP
    """
    from safetensors.torch import save_file

    out = Path(out_dir).expanduser().resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    for leftover in [*out.parent.glob(f".{out.name}.partial-*"), *out.parent.glob(f".{out.name}.old-*")]:
        shutil.rmtree(leftover, ignore_errors=True)  # debris of an earlier, interrupted save
    staging = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        aliases = set(_tied_names(model))
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
        packed = {name: {"format": m.format_name, **m.spec()} for name, m in model.named_modules() if isinstance(m, PackedModule)}
        info = model_info(model)
        document = {
            "schema": 1,
            **(manifest or {}),
            "layout": layout,
            "modules": packed,
            "weight_bytes": info.weight_bytes,
            "weights_file_bytes": (staging / WEIGHTS_NAME).stat().st_size,
            "params": info.params,
            "non_embedding_params": info.non_embedding_params,
            "versions": _versions(),
        }
        _write_json(staging / MANIFEST_NAME, document)
        _fsync_dir(staging)
        _swap_into_place(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def _write_json(path: Path, document: dict[str, Any]) -> None:
    with open(path, "w") as handle:
        json.dump(document, handle, indent=2, default=str)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    for child in path.iterdir():
        if child.is_file():
            with open(child, "rb") as handle:
                os.fsync(handle.fileno())


def _swap_into_place(staging: Path, out: Path) -> None:
    """Replace `out` by `staging`: only whole folders are ever visible under `out`'s name."""
    if out.exists() and not out.is_dir():
        raise UserError(f"output path {out} exists and is not a folder; choose another --out")
    if not out.exists():
        os.rename(staging, out)
        return
    retired = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
    os.rename(out, retired)
    os.rename(staging, out)
    shutil.rmtree(retired, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Export hook (issue 11, compress/export/native.py): the saved folder is either loadable by plain
# transformers (compressed-tensors layout) or refused by it; never read as random dense weights.


def _export_hook_layout(model: nn.Module, tensors: dict[str, torch.Tensor]):
    from compress.export.native import saved_layout

    return saved_layout(model, tensors)


def _export_hook_config(folder: Path, quantization_config: dict[str, Any] | None) -> None:
    document = json.loads((folder / "config.json").read_text())
    document.pop("quantization_config", None)
    if quantization_config is not None:
        document["quantization_config"] = quantization_config
    _write_json(folder / "config.json", document)


def _export_hook_restore(state: dict[str, torch.Tensor], manifest: dict[str, Any]) -> dict[str, torch.Tensor]:
    from compress.export.native import restore_layout

    return restore_layout(state, manifest)
