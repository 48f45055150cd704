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
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from compress.errors import HubError, ModelLoadError, UserError, one_line, preview
from compress.faults import fault_point
from compress.model_info import ModelInfo, count_params, model_info, storage_key, weight_bytes  # noqa: F401 - public here too
from compress.saving import MANIFEST_NAME, WEIGHTS_NAME, save, tied_names  # noqa: F401 - public here too
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


def _hub_error(source: str, error: Exception) -> HubError:
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    why = "the Hugging Face Hub is disabled (HF_HUB_OFFLINE=1)" if offline else "the Hugging Face Hub could not be reached or has no such model"
    return HubError(
        f"cannot load {source!r}: it is not a local folder and {why}. "
        f"Download it on a connected machine and pass the folder, or check the id. ({first_line})"
    )


def _looks_local(source: str, path: Path) -> bool:
    """A path that cannot be a hub id ('name' or 'org/name'): it is a missing local folder."""
    if source.startswith((".", "/", "~")) or path.suffix in (".json", ".safetensors") or os.sep + os.sep in source:
        return True
    if source.count("/") > 1 or source.endswith("/") or path.exists():
        return True
    return source.count("/") == 1 and path.parent.is_dir()  # 'out/model' where out/ is here


def _check_local_folder(path: Path, trust_remote_code: bool) -> None:
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"{path} has no config.json; pass a folder written by save_pretrained or compress.save")
    has_safetensors = (path / WEIGHTS_NAME).is_file() or (path / "model.safetensors.index.json").is_file()
    if not has_safetensors:
        pickles = sorted(p.name for p in path.glob("*.bin")) + sorted(p.name for p in path.glob("*.pt"))
        hint = f" (found {', '.join(pickles)}: pickle files are never loaded; convert them to safetensors on a trusted machine)" if pickles else ""
        raise ModelLoadError(f"{path} has no safetensors weights{hint}")
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ModelLoadError(f"{path / 'config.json'} is not valid JSON ({one_line(str(error), 120)}); the checkpoint is damaged") from None
    if not isinstance(config, dict):
        raise ModelLoadError(f"{path / 'config.json'} must hold a JSON object; the checkpoint is damaged")
    # Checked here, before transformers sees the folder: it would ask on a terminal, or run the code.
    if config.get("auto_map") and not trust_remote_code:
        raise remote_code_error(str(path))
    from transformers import CONFIG_MAPPING

    model_type = config.get("model_type")
    if not config.get("auto_map") and model_type not in CONFIG_MAPPING:
        import transformers

        raise ModelLoadError(
            f"{path / 'config.json'}: model_type {preview(model_type)} is not one transformers {transformers.__version__} knows; "
            "upgrade transformers, or check that config.json is the model's own"
        )


def remote_code_error(source: str) -> ModelLoadError:
    return ModelLoadError(
        f"{source} ships its own Python code (auto_map in config.json), which runs only when you allow it: "
        "pass --trust-remote-code (library: trust_remote_code=True), and only for a source you trust"
    )


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

    fault_point("load")
    source_str = str(source)
    path = Path(source_str).expanduser()
    local = path.is_dir()
    if path.exists() and not local:
        raise UserError(f"{source_str!r} is a file; pass the model's folder (config.json + model.safetensors)")
    if not local and _looks_local(source_str, path):
        raise UserError(f"model folder {source_str!r} does not exist (and it is not a hub id like 'org/name')")
    if isinstance(dtype, str):
        if not hasattr(torch, dtype) or not isinstance(getattr(torch, dtype), torch.dtype):
            raise UserError(f"unknown dtype {dtype!r}; allowed: float32, float16, bfloat16")
        dtype = getattr(torch, dtype)
    if local:
        _check_local_folder(path, trust_remote_code)
    manifest = read_manifest(path) if local else None
    try:
        config = transformers.AutoConfig.from_pretrained(source_str, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        if "trust_remote_code" in str(error):
            raise remote_code_error(source_str) from None
        if local:
            raise ModelLoadError(f"cannot read the config in {path}: {one_line(str(error), 200)}") from None
        raise _hub_error(source_str, error) from None
    model_class = _model_class(config, task)
    if manifest and manifest.get("modules"):
        from compress.packed_load import load_packed  # meta-device init, then the file's tensors assigned

        model = load_packed(path, config, model_class, manifest, dtype, trust_remote_code)
    else:
        if _refusal_marked(config):
            # The marker only stops plain transformers; without the manifest, the strict name check
            # below says what is wrong (packed tensors, compression.json missing) instead of a pydantic dump.
            del config.quantization_config
        model = _load_plain(source_str, path if local else None, model_class, dtype, trust_remote_code, config)
    model.to(device)
    model.eval()
    tokenizer = _load_tokenizer(source_str, trust_remote_code)
    return Loaded(model, tokenizer, model_info(model, source=source_str))


def _refusal_marked(config) -> bool:
    """config.json carries the marker `compress.save` writes so that plain transformers refuses packed layers."""
    from compress.export.native import REFUSAL

    marker = getattr(config, "quantization_config", None)
    marker = marker if isinstance(marker, dict) else getattr(marker, "to_dict", lambda: {})()
    return marker.get("format") == REFUSAL["format"]


def _load_plain(source: str, path: Path | None, model_class, dtype, trust_remote_code: bool, config=None) -> nn.Module:
    """A checkpoint without packed layers; every weight must be in the file and nothing else."""
    from compress.quiet import quiet_transformers

    kwargs = {"use_safetensors": True, "trust_remote_code": trust_remote_code, "output_loading_info": True, "config": config}
    if dtype is not None:
        kwargs["dtype"] = dtype
    try:
        with quiet_transformers():  # its report of missing keys is replaced by our error below
            model, loading = model_class.from_pretrained(source, **kwargs)
    except OSError as error:
        if path is not None:
            raise ModelLoadError(f"cannot load weights from {path}: {one_line(str(error), 200)}") from None
        raise _hub_error(source, error) from None
    except ValueError as error:
        if "trust_remote_code" in str(error):
            raise remote_code_error(source) from None
        raise
    mismatched = [str(entry[0]) if isinstance(entry, tuple) else str(entry) for entry in loading.get("mismatched_keys") or []]
    check_weight_names(path or Path(source), loading.get("missing_keys") or [], loading.get("unexpected_keys") or [], mismatched)
    return model


def check_weight_names(path: Path, missing, unexpected, mismatched=()) -> None:
    """A checkpoint whose tensors are not exactly the model's is an error naming them and the likely cause."""
    missing, unexpected, mismatched = sorted(missing), sorted(unexpected), sorted(mismatched)
    if not (missing or unexpected or mismatched):
        return
    packed_like = any(name.endswith((".qweight", ".scales", ".zeros", ".codes", ".mask", "_packed", "_scale", "_zero_point", ".SCB"))
                      for name in unexpected)
    cause = (
        f"the file holds packed (compressed) tensors but {MANIFEST_NAME} is missing or was edited; restore it from the saved checkpoint"
        if packed_like or (unexpected and not (path / MANIFEST_NAME).is_file())
        else "the weights file and config.json do not belong together (a damaged or edited checkpoint)"
    )
    parts = [f"{label} {len(names)} ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})"
             for label, names in (("missing", missing), ("unexpected", unexpected), ("wrong shape", mismatched)) if names]
    raise ModelLoadError(f"{path}: weights do not match the model: {'; '.join(parts)}: {cause}")
