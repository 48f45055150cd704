"""The one-shot engine: each selected module is transformed on its own, no data needed.

Per pass: `algorithm.prepare(selected)` (optional: e.g. one global threshold), then
`algorithm.compress(name, module)` for every selected module, replacing it when a new module
is returned. A model-level algorithm (`compress_model(model) -> names`) changes the model
itself (structured width or depth pruning); the framework still times, checks and reports it.
"""

from __future__ import annotations

import sys
import time

from torch import nn
from tqdm import tqdm

from compress.core.report import PassRun
from compress.formats.dense import module_bytes


def run(model: nn.Module, runs: list[PassRun], context) -> None:
    """Apply each pass of `runs` in order, in place."""
    for pass_run in runs:
        start = time.perf_counter()
        algorithm = pass_run.algorithm
        if hasattr(algorithm, "compress_model"):
            before = {name: module_bytes(module) for name, module in model.named_modules() if name}
            previous = {id(module): name for name, module in model.named_modules()}
            for name in algorithm.compress_model(model):
                after = _submodule(model, name)
                if after is not None and previous.get(id(after), name) != name:
                    after = None  # another module moved into this name (blocks renumbered): the named one was removed
                pass_run.touch(name, before.get(name, 0), after)
        else:
            selected = pass_run.select(model)
            if hasattr(algorithm, "prepare"):
                algorithm.prepare(selected)
            counted: set = set()  # storages already counted: a tied weight (embedding and head) counts once
            for name, module in tqdm(selected, desc=pass_run.name, unit="layer", file=sys.stderr, disable=not context.progress):
                before = _new_bytes(module, counted)
                replacement = algorithm.compress(name, module)
                if replacement is not None:
                    model.set_submodule(name, replacement)
                pass_run.touch(name, before, module if replacement is None else replacement)
        pass_run.seconds += time.perf_counter() - start


def _new_bytes(module: nn.Module, counted: set) -> int:
    """Bytes of the module's tensors whose storage `counted` does not hold yet (then added)."""
    from compress.model_info import storage_key

    fresh = {}
    for tensor in module.state_dict(keep_vars=True).values():
        if tensor is not None and storage_key(tensor) not in counted:
            fresh[storage_key(tensor)] = tensor
    counted.update(fresh)
    from compress.units import tensor_bytes

    return tensor_bytes(fresh.values())


def _submodule(model: nn.Module, name: str) -> nn.Module | None:
    try:
        return model.get_submodule(name)
    except AttributeError:
        return None  # removed (depth pruning)
