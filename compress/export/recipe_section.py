"""The `export:` section of a recipe: `run` ends with the deployable artifact.

    export:
      format: gguf          # compressed-tensors | gguf | hf
      gguf_type: Q4_1       # gguf only: auto | F16 | Q8_0 | Q4_0 | Q4_1
      out: deploy/model.gguf  # default: <out>/export (a folder) or <out>/model.gguf

Only single-model recipes (`model:` and one variant) save a compressed model, so only they export.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ExportConfig(BaseModel):
    """Where and how `run` exports the compressed model it saved."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["compressed-tensors", "gguf", "hf"] = Field(..., description="compressed-tensors (vLLM, SGLang, transformers), gguf (llama.cpp) or hf (dense).")
    gguf_type: Literal["auto", "F16", "Q8_0", "Q4_0", "Q4_1"] = Field("auto", description="GGUF tensor type; auto keeps our codes exactly where a type holds them.")
    out: str | None = Field(None, description="Output path; default <out>/export, or <out>/model.gguf for gguf.")

    def target(self, run_out: Path) -> Path:
        if self.out is not None:
            return Path(self.out)
        return run_out / ("model.gguf" if self.format == "gguf" else "export")


def export_saved(config: ExportConfig | None, saved_model: Path | None, run_out: Path) -> dict[str, Any] | None:
    """Export the model a run saved, as the recipe's `export:` asks; None when there is nothing to do."""
    if config is None or saved_model is None:
        return None
    from compress.export import export

    return export(saved_model, config.format, config.target(run_out), gguf_type=config.gguf_type)
