"""The sequential (block-wise) calibration engine shared by GPTQ, AWQ, SmoothQuant, Wanda, SparseGPT.

1. Capture the inputs of the first Transformer block on the calibration samples, exactly as
   the model passes them (hidden states plus attention mask, position ids, rotary embeddings,
   whatever keyword arguments this architecture uses), by stopping the forward at that block.
2. For each block, for each pass of the walk in order: hooks feed every selected module's
   inputs (2-D float32 [tokens, in_features]) to `algorithm.observe`, the block runs on all
   calibration batches, then `compress_block` (optional, block-level algorithms) and
   `compress(name, module, stats)` per module; the statistics are then freed.
3. The block runs once more to produce the next block's inputs: from the **compressed** block
   (as GPTQ's reference does), or from the dense one (`data.propagate: dense`).

Memory: one block's weights + one block's calibration activations (inputs and outputs) + the
statistics of one pass over one block. A model dispatched by accelerate with CPU or disk
offload (`device_map`) is onloaded block by block; each compressed block stays in RAM.
"""

from __future__ import annotations

import ctypes
import functools
import sys
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from compress.core.report import PassRun
from compress.core.targets import matches_by_name
from compress.engines.stats import Stats
from compress.errors import UserError
from compress.formats.dense import module_bytes


@dataclass
class Batch:
    """The positional and keyword arguments of one block call; `args[0]` or `kwargs['hidden_states']`."""

    args: tuple
    kwargs: dict[str, Any]

    @property
    def hidden(self) -> torch.Tensor:
        return self.args[0] if self.args else self.kwargs["hidden_states"]

    def with_hidden(self, hidden: torch.Tensor) -> Batch:
        if self.args:
            return Batch((hidden, *self.args[1:]), self.kwargs)
        return Batch(self.args, {**self.kwargs, "hidden_states": hidden})


class _Captured(Exception):
    pass


def find_blocks(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The model's list of Transformer blocks: the ModuleList of its `_no_split_modules` class,
    else the longest ModuleList (GPT-2 `transformer.h`, LLaMA `model.layers`, OPT, NeoX, BERT)."""
    block_classes = set(getattr(model, "_no_split_modules", None) or [])
    lists = [(name, module) for name, module in model.named_modules() if isinstance(module, nn.ModuleList) and len(module)]
    for name, module in lists:
        if type(module[0]).__name__ in block_classes:
            return name, module
    if not lists:
        raise UserError(f"sequential calibration needs a model made of a list of blocks; {type(model).__name__} has no nn.ModuleList")
    return max(lists, key=lambda item: len(item[1]))


def capture_inputs(model: nn.Module, first_block: nn.Module, tokens: torch.Tensor, batch_size: int, device: torch.device) -> list[Batch]:
    """The arguments the model passes to its first block, one `Batch` per calibration batch."""
    batches: list[Batch] = []

    def stop(module, args, kwargs):
        batches.append(Batch(tuple(args), {k: v for k, v in kwargs.items() if k not in ("past_key_values", "past_key_value", "layer_past")}))
        raise _Captured

    handle = first_block.register_forward_pre_hook(stop, with_kwargs=True)
    try:
        for chunk in tokens.split(batch_size):
            try:
                model(input_ids=chunk.to(device), use_cache=False)
            except _Captured:
                pass
    finally:
        handle.remove()
    return batches


def fit_context(tokens: torch.Tensor, model: nn.Module) -> torch.Tensor:
    """Windows longer than the model's context are cut into windows of its context (no token lost
    but the tail that does not fill one)."""
    from compress.bench.modeling import max_positions

    limit = max_positions(model)
    if not limit or tokens.shape[1] <= limit:
        return tokens
    usable = tokens.shape[1] // limit * limit
    return tokens[:, :usable].reshape(-1, limit)


def block_output(block: nn.Module, batch: Batch) -> torch.Tensor:
    out = block(*batch.args, **batch.kwargs)
    return out[0] if isinstance(out, (tuple, list)) else out


def _hooks(modules: list[tuple[str, nn.Module]], algorithm, stats: Stats) -> list:
    flat: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # one float32 copy per distinct input

    def make(name):
        def hook(module, args, output):
            x = args[0]
            cached = flat.get(id(x))
            if cached is None or cached[0] is not x:
                cached = flat[id(x)] = (x, x.detach().reshape(-1, x.shape[-1]).float())
            algorithm.observe(name, module, cached[1], stats)

        return hook

    handles = [module.register_forward_hook(make(name)) for name, module in modules]
    return handles, flat


@contextmanager
def onloaded(block: nn.Module, device: torch.device):
    """A block whose weights accelerate keeps offloaded (CPU/disk) is brought into memory on
    `device` for the time of its calibration, and its hooks removed (its modules will be
    replaced); afterwards it stays in CPU RAM. Blocks without hooks are used as they are."""
    hooked = [m for m in block.modules() if hasattr(m, "_hf_hook")]
    if not hooked:
        yield block
        return
    from accelerate.hooks import remove_hook_from_module
    from accelerate.utils import named_module_tensors, set_module_tensor_to_device

    for module in hooked:
        hook = module._hf_hook
        weights = getattr(hook, "weights_map", None)
        if getattr(hook, "offload", False) and weights is not None:
            for name, _ in named_module_tensors(module, include_buffers=hook.offload_buffers, recurse=hook.place_submodules, remove_non_persistent=True):
                set_module_tensor_to_device(module, name, device, value=weights[name])
    remove_hook_from_module(block, recurse=True)
    block.to(device)
    try:
        yield block
    finally:
        block.to("cpu")


def run(model: nn.Module, runs: list[PassRun], context) -> None:
    """One walk through the blocks for consecutive sequential passes (see the module doc)."""
    from compress.bench.trackers.memory import MemoryTracker

    walk_start = time.perf_counter()
    blocks_name, blocks = find_blocks(model)
    plan = {id(r): _by_block(r, model, blocks_name, len(blocks)) for r in runs}  # module names only: replaced layers are freed
    device = _execution_device(model, context)
    config = context.data_config
    tracker = MemoryTracker("cuda" if device.type == "cuda" else "cpu")
    release_memory()  # garbage of loading the model is not the walk's
    with tracker.track("walk"):
        tokens = fit_context(context.calibration(), model)
        inputs = capture_inputs(model, blocks[0], tokens, config.batch_size, device)
        for index in tqdm(range(len(blocks)), desc="+".join(r.name for r in runs), unit="block", file=sys.stderr, disable=not context.progress):
            with onloaded(blocks[index], device) as block:
                dense_outputs = [block_output(block, batch) for batch in inputs] if config.propagate == "dense" else None
                for pass_run in runs:
                    names = plan[id(pass_run)][index]
                    if names:
                        modules = [(name, model.get_submodule(name)) for name in names]
                        _calibrate_block(pass_run, model, block, f"{blocks_name}.{index}", modules, inputs)
                        del modules
                if dense_outputs is not None:
                    inputs = [batch.with_hidden(out) for batch, out in zip(inputs, dense_outputs)]
                else:  # in place: a batch's inputs are not needed once its outputs exist
                    for batch in inputs:
                        batch.hidden.copy_(block_output(block, batch))
            release_memory()
    shared = time.perf_counter() - walk_start - sum(r.seconds for r in runs)
    walk = {"passes": [r.name for r in runs], "blocks": len(blocks), "calibration_tokens": int(tokens.numel()), "propagate": config.propagate,
            "seconds": round(time.perf_counter() - walk_start, 3), **tracker.result()["walk"]}
    for pass_run in runs:
        pass_run.seconds += shared / len(runs)
        pass_run.report.details["walk"] = walk


def _calibrate_block(pass_run: PassRun, model: nn.Module, block: nn.Module, block_name: str, modules, inputs: list[Batch]) -> None:
    start = time.perf_counter()
    algorithm = pass_run.algorithm
    stats = Stats()
    if hasattr(algorithm, "observe"):
        handles, flat = _hooks(modules, algorithm, stats)
        try:
            for batch in inputs:
                block(*batch.args, **batch.kwargs)
                flat.clear()
                stats.next_batch()
        finally:
            for handle in handles:
                handle.remove()
    if hasattr(algorithm, "compress_block"):
        algorithm.compress_block(block, block_name, stats, lambda b=block: [block_output(b, batch) for batch in inputs])
    if hasattr(algorithm, "compress"):
        while modules:
            name, module = modules.pop(0)  # the list holds no dense layer once it is replaced
            before = module_bytes(module)
            replacement = algorithm.compress(name, module, stats)
            if replacement is not None:
                model.set_submodule(name, replacement)
            pass_run.touch(name, before, module if replacement is None else replacement)
            stats.drop(name)
            del module, replacement
    else:
        for name, module in modules:
            pass_run.touch(name, module_bytes(module), model.get_submodule(name))
    pass_run.seconds += time.perf_counter() - start


@functools.cache
def _libc():
    try:
        return ctypes.CDLL("libc.so.6") if sys.platform.startswith("linux") else None
    except OSError:
        return None


def release_memory() -> None:
    """Hand freed heap memory back to the OS. glibc keeps freed blocks (raising its mmap threshold
    after large frees), so without this the dense layers a block replaced would stay resident."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def _by_block(pass_run: PassRun, model: nn.Module, blocks_name: str, count: int) -> list[list[str]]:
    per_block: list[list[str]] = [[] for _ in range(count)]
    outside = []
    prefix = f"{blocks_name}." if blocks_name else ""
    for name, module in pass_run.select(model):
        head, _, rest = name[len(prefix):].partition(".")
        if not name.startswith(prefix) or not head.isdigit() or not rest:
            outside.append(name)
            continue
        per_block[int(head)].append(name)
    named = [name for name in outside if any(matches_by_name(entry, name) for entry in pass_run.config.targets)]
    if named:
        raise UserError(
            f"pass {pass_run.name!r} calibrates modules inside the blocks of {blocks_name or 'the model'}; "
            f"{', '.join(named[:3])} lie outside: remove them from targets"
        )
    if outside:  # selected by class only (e.g. BERT's MLM head transform): left dense, and said so
        warnings.warn(f"{pass_run.name}: {len(outside)} selected layer(s) outside the blocks stay uncompressed: {', '.join(outside[:3])}", stacklevel=2)
        pass_run.report.details["outside_blocks_left_dense"] = outside
    if not any(per_block):
        pass_run.fail_empty(model)
    return per_block


def _execution_device(model: nn.Module, context) -> torch.device:
    hook = getattr(model, "_hf_hook", None)
    if hook is not None and getattr(hook, "execution_device", None) is not None:
        return torch.device(hook.execution_device)
    for parameter in model.parameters():
        if parameter.device.type != "meta":
            return parameter.device
    return torch.device(context.device)
