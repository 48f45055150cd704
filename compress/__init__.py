"""scalecompress: compress Transformers and see each result against its family's scaling curve.

    >>> import compress
    >>> model, tokenizer, info = compress.load("EleutherAI/pythia-70m")            # doctest: +SKIP
    >>> model, reports = compress.apply(model, [compress.passes.RTNConfig(bits=4)])      # doctest: +SKIP
    >>> record = compress.bench(model, tokenizer)                                  # doctest: +SKIP
    >>> compress.save(model, "out/pythia-70m-rtn4", tokenizer=tokenizer)           # doctest: +SKIP

Heavy modules are imported on first use, so `import compress` stays fast.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# `compress.bench` is a package *and* the function users call: bind the function after the (light)
# package has loaded, so that later imports of its submodules cannot rebind the name.
from compress.bench import bench  # noqa: E402, F401 - public, listed in __all__
from compress.export import export  # noqa: E402, F401 - likewise a package and a function (light: no torch)

_LAZY = {
    "load": ("compress.checkpoint", "load"),
    "save": ("compress.checkpoint", "save"),
    "ModelInfo": ("compress.checkpoint", "ModelInfo"),
    "apply": ("compress.core.apply", "apply"),
    "Recipe": ("compress.recipe", "Recipe"),
    "passes": ("compress.passes", None),
}

__all__ = sorted([*_LAZY, "bench", "export"])


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'compress' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value
