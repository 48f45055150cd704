"""Plain transformers export: a dense safetensors checkpoint any Hugging Face tool loads.

For pruned, distilled or structurally pruned models (whose config.json already describes the
smaller shapes) this is the deployable form; for quantized models it is their dequantized
weights (exact, in fp32 — bigger than the packed checkpoint, and said so in the details).
GPT-2 `Conv1D` layers get their weight back in Conv1D's (in, out) layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from compress.export.common import dense_state_dict
from compress.export.compressed_tensors import write_config
from compress.formats.base import PackedModule

FORMAT_NAME = "hf"


def write(model: nn.Module, folder: Path, *, tokenizer: Any = None) -> dict[str, Any]:
    """Write the dense checkpoint into `folder`; returns details."""
    from safetensors.torch import save_file

    state = dense_state_dict(model)
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    write_config(model, folder, None)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    dequantized = [name for name, m in model.named_modules() if isinstance(m, PackedModule)]
    return {"dequantized_layers": len(dequantized), "note": "packed layers written dense (exact, larger)" if dequantized else "dense model"}
