"""`depth`: remove whole Transformer blocks, the least important first.

Importance, measured on calibration data through the model's normal forward:
- `influence` (ShortGPT, Men et al. 2024): block influence BI = 1 - mean over tokens of
  cos(block input, block output); a block that barely turns the hidden state does little.
- `loss`: the increase of the language-model loss when the block alone is skipped (its
  output replaced by its input); one forward per block per calibration batch.

The removed blocks are taken out of the block list, the survivors' `layer_idx` (KV-cache slot)
renumbered, and `num_hidden_layers` (and `layer_types` where present) rewritten, so the saved
folder is an ordinary checkpoint that plain `transformers` reloads.

    >>> import torch, transformers, compress
    >>> from compress.passes import DepthConfig
    >>> config = transformers.LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32,
    ...     num_hidden_layers=4, num_attention_heads=2)
    >>> model = transformers.AutoModelForCausalLM.from_config(config)
    >>> data = torch.randint(0, 32, (2, 8))
    >>> model, reports = compress.apply(model, [DepthConfig(fraction=0.25)], data, progress=False)
    >>> model.config.num_hidden_layers, len(reports[0].details["removed"])
    (3, 1)
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from compress.algorithms.pruning.layout import decoder_layout
from compress.core.config import PassConfig
from compress.core.registry import register_pass
from compress.errors import UserError


class DepthConfig(PassConfig):
    """Depth pruning: remove the least important whole blocks."""

    pass_name = "depth"

    fraction: float = Field(0.25, gt=0.0, lt=1.0, description="Fraction of blocks to remove (rounded to whole blocks, at least one).")
    importance: Literal["influence", "loss"] = Field(
        "influence",
        description="'influence': 1 - cos(block input, output) (ShortGPT); 'loss': LM-loss increase when the block is skipped.",
    )
    keep_last: bool = Field(True, description="Never remove the last block (it feeds the output head; ShortGPT found it vital).")

    @model_validator(mode="after")
    def _no_targets(self) -> DepthConfig:
        if self.targets != ["Linear"] or self.ignore:
            raise ValueError("depth chooses whole blocks by importance; targets/ignore do not apply to it: remove them")
        return self

    def tag(self) -> str:
        return f"depth-{self.fraction * 100:g}%" + ("-loss" if self.importance == "loss" else "")


def _hidden(args: tuple, kwargs: dict) -> torch.Tensor:
    return args[0] if args else kwargs["hidden_states"]


def _with_output(output, hidden: torch.Tensor):
    """A block's output with its hidden state replaced (blocks return a tensor or a tuple)."""
    return (hidden, *output[1:]) if isinstance(output, tuple) else hidden


def _batches(tokens: torch.Tensor, batch_size: int, device) -> list[torch.Tensor]:
    return [tokens[i : i + batch_size].to(device) for i in range(0, len(tokens), batch_size)]


def block_influence(model: nn.Module, layers: nn.ModuleList, tokens: torch.Tensor, batch_size: int = 8) -> torch.Tensor:
    """BI_i = 1 - mean_tokens cos(x_i, y_i) for every block i (ShortGPT, eq. 1)."""
    sums = torch.zeros(len(layers), dtype=torch.float64)
    counts = torch.zeros(len(layers), dtype=torch.float64)
    inputs: dict[int, torch.Tensor] = {}
    handles = []
    for index, layer in enumerate(layers):

        def before(module, args, kwargs, index=index):
            inputs[index] = _hidden(args, kwargs)

        def after(module, args, kwargs, output, index=index):
            out = output[0] if isinstance(output, tuple) else output
            cos = F.cosine_similarity(inputs.pop(index).detach().float(), out.detach().float(), dim=-1)
            sums[index] += float((1 - cos).sum())
            counts[index] += cos.numel()

        handles += [layer.register_forward_pre_hook(before, with_kwargs=True), layer.register_forward_hook(after, with_kwargs=True)]
    try:
        for batch in _batches(tokens, batch_size, next(model.parameters()).device):
            model(input_ids=batch, use_cache=False)
    finally:
        for handle in handles:
            handle.remove()
    return sums / counts.clamp(min=1)


def skip_loss_increase(model: nn.Module, layers: nn.ModuleList, tokens: torch.Tensor, batch_size: int = 8) -> torch.Tensor:
    """Mean LM-loss increase over the calibration tokens when block i alone is skipped."""
    batches = _batches(tokens, batch_size, next(model.parameters()).device)

    def loss() -> float:
        return sum(float(model(input_ids=b, labels=b, use_cache=False).loss) * len(b) for b in batches) / len(tokens)

    base = loss()
    increases = []
    for layer in layers:
        held: dict[str, torch.Tensor] = {}
        handles = [
            layer.register_forward_pre_hook(lambda m, a, k: held.update(x=_hidden(a, k)), with_kwargs=True),
            layer.register_forward_hook(lambda m, a, k, out: _with_output(out, held["x"]), with_kwargs=True),
        ]
        try:
            increases.append(loss() - base)
        finally:
            for handle in handles:
                handle.remove()
    return torch.tensor(increases, dtype=torch.float64)


def remove_blocks(model: nn.Module, path: str, remove: list[int]) -> None:
    """Take blocks out of the list at `path`, renumber `layer_idx`, rewrite the config."""
    layers = model.get_submodule(path)
    kept = [layer for index, layer in enumerate(layers) if index not in set(remove)]
    model.set_submodule(path, nn.ModuleList(kept))
    for new_index, layer in enumerate(kept):
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = new_index
    config = model.config
    layer_types = getattr(config, "layer_types", None)
    if isinstance(layer_types, list) and len(layer_types) == len(layers):
        config.layer_types = [kind for index, kind in enumerate(layer_types) if index not in set(remove)]
    config.num_hidden_layers = len(kept)


def _plan(model: nn.Module, config: DepthConfig) -> list[tuple[str, int, int]]:
    from compress.formats.dense import module_bytes

    layout = decoder_layout(model, "depth")
    return [(f"{layout.path}.{i}", module_bytes(layer), 0) for i, layer in enumerate(layout.layers)]


@register_pass(
    DepthConfig,
    engine="oneshot",
    needs={"calibration"},
    description="Depth pruning: remove whole blocks by block influence (ShortGPT) or skip-loss; plain transformers reloads the result.",
    plan=_plan,
)
class Depth:
    """Remove `fraction` of the blocks, least important first."""

    def __init__(self, config: DepthConfig, context) -> None:
        self.config = config
        self.context = context
        self.scores: list[float] = []
        self.removed: list[int] = []

    def compress_model(self, model: nn.Module) -> list[str]:
        config = self.config
        layout = decoder_layout(model, "depth")
        count = max(1, round(config.fraction * len(layout.layers)))
        candidates = len(layout.layers) - (1 if config.keep_last else 0)
        if count >= candidates:
            raise UserError(f"depth: fraction={config.fraction} removes {count} of {len(layout.layers)} blocks, leaving none to keep; lower fraction")
        tokens = self.context.calibration()
        batch_size = self.context.data_config.batch_size
        measure = block_influence if config.importance == "influence" else skip_loss_increase
        scores = measure(model, layout.layers, tokens, batch_size)
        if config.keep_last:
            scores[-1] = float("inf")
        self.scores = [round(float(s), 6) for s in scores]
        self.removed = sorted(int(i) for i in torch.argsort(scores)[:count])
        names = [f"{layout.path}.{index}" for index in self.removed]
        remove_blocks(model, layout.path, self.removed)
        return names

    def details(self) -> dict:
        return {"removed": self.removed, "importance": self.config.importance, "scores": self.scores, "stored": "blocks removed"}
