"""Pass configs by name, for library users: `compress.passes.RTNConfig(bits=4)`.

Each algorithm lives in its own file under `compress/algorithms/`; this module only
re-exports the config classes (imported on first use).
"""

from __future__ import annotations

import importlib

_CONFIGS = {
    "RTNConfig": "compress.algorithms.quantization.rtn",
    "GPTQConfig": "compress.algorithms.quantization.gptq",
    "MixedConfig": "compress.algorithms.quantization.mixed",
    "MagnitudeConfig": "compress.algorithms.pruning.magnitude",
    "AWQConfig": "compress.algorithms.quantization.awq",
    "SmoothQuantConfig": "compress.algorithms.quantization.smoothquant",
    "BnbConfig": "compress.algorithms.quantization.bnb",
    "WandaConfig": "compress.algorithms.pruning.wanda",
    "SparseGPTConfig": "compress.algorithms.pruning.sparsegpt",
    "StructuredConfig": "compress.algorithms.pruning.structured",
    "DepthConfig": "compress.algorithms.pruning.depth",
    "DistillConfig": "compress.algorithms.distillation.kd",
}

__all__ = sorted(_CONFIGS)


def __getattr__(name: str):
    if name not in _CONFIGS:
        raise AttributeError(f"module 'compress.passes' has no attribute {name!r}; configs: {', '.join(__all__)}")
    value = getattr(importlib.import_module(_CONFIGS[name]), name)
    globals()[name] = value
    return value
