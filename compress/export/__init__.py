"""Export a model to the formats serving stacks load: compressed-tensors (vLLM, SGLang,
transformers), GGUF (llama.cpp) and plain transformers (dense safetensors).

    >>> import compress
    >>> compress.export("out/pythia-160m-rtn4", "compressed-tensors", "deploy/pythia-160m-w4")  # doctest: +SKIP
    {'format': 'compressed-tensors', 'path': '.../deploy/pythia-160m-w4', 'bytes': ..., ...}

The output appears whole or not at all (written beside it, then renamed). A model that a format
cannot hold exactly is refused with one line naming the reason and the formats that can hold it
(`UserError`, exit 2); GGUF types that re-quantize say so and report the error they add.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from compress.errors import UserError

FORMATS = ("compressed-tensors", "gguf", "hf")


def export(model_or_path: Any, fmt: str, out: str | os.PathLike, *, tokenizer: Any = None, gguf_type: str = "auto", progress: bool = False) -> dict[str, Any]:
    """Write `model_or_path` (a model or a checkpoint folder) as `fmt` at `out`; returns a summary
    (format, path, bytes, source bytes when known, and the format's details)."""
    from compress.export import common

    if fmt not in FORMATS:
        raise UserError(f"export: format {fmt!r} is not supported; allowed: {', '.join(FORMATS)}")
    source = common.resolve_source(model_or_path, tokenizer)
    out_path = Path(out).expanduser().resolve()
    if fmt == "gguf":
        details = _export_gguf(source, out_path, gguf_type, progress)
    else:
        if gguf_type != "auto":
            raise UserError(f"export: --gguf-type applies to --format gguf only (got --format {fmt})")
        from compress.atomic import staged_dir

        with staged_dir(out_path, replace=_ours) as staging:
            details = _folder_writer(fmt)(source.model, staging, tokenizer=source.tokenizer)
    summary = {"format": fmt, "path": str(out_path), "bytes": common.folder_bytes(out_path)}
    if source.path is not None:
        summary["source"] = str(source.path)
        summary["source_bytes"] = common.folder_bytes(source.path / "model.safetensors")
    summary["details"] = details
    return summary


def _folder_writer(fmt: str):
    if fmt == "compressed-tensors":
        from compress.export.compressed_tensors import write
    else:
        from compress.export.hf import write
    return write


def _ours(target: Path) -> bool:
    """An existing output is replaced only when it is an empty folder or a model folder."""
    return target.is_dir() and (not any(target.iterdir()) or (target / "config.json").is_file())


def _export_gguf(source, out_path: Path, gguf_type: str, progress: bool) -> dict[str, Any]:
    from compress.atomic import staged_file
    from compress.export.gguf import write

    if out_path.suffix != ".gguf":
        raise UserError(f"export: a GGUF export is one file ending in .gguf; got --out {out_path} (try {out_path.with_suffix('.gguf')})")
    if out_path.is_dir():
        raise UserError(f"export: output {out_path} is a folder; a GGUF export is one file, e.g. --out {out_path / 'model.gguf'}")
    with staged_file(out_path) as staging:
        return write(source.model, staging, tokenizer=source.tokenizer, gguf_type=gguf_type, progress=progress)
