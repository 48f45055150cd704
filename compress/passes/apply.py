"""Run passes on a model: `compress.apply(model, recipe_or_configs, data=...)`.

    >>> import torch, compress
    >>> from compress.passes import MagnitudeConfig
    >>> model = torch.nn.Sequential(torch.nn.Linear(8, 8))
    >>> model, reports = compress.apply(model, [MagnitudeConfig(sparsity=0.5)], progress=False)
    >>> reports[0].details["sparsity"]
    0.5
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from compress.errors import UserError
from compress.passes.base import PassConfig, PassContext, PassReport
from compress.recipe import DataConfig, Recipe, parse_passes
from compress.registry import get_pass

PassList = Recipe | PassConfig | Sequence[PassConfig | dict[str, Any]] | str | os.PathLike


def as_pass_configs(recipe: PassList) -> list[PassConfig]:
    """Accept a Recipe (one variant), a YAML path, one config, or a list of configs/dicts."""
    if isinstance(recipe, (str, os.PathLike)):
        recipe = Recipe.from_yaml(recipe)
    if isinstance(recipe, Recipe):
        if len(recipe.variants) != 1:
            raise UserError(f"apply() takes a recipe with one list of passes; this one has {len(recipe.variants)} variants (run it with `scalecompress run`)")
        return list(recipe.variants[0].passes)
    if isinstance(recipe, PassConfig):
        return [recipe]
    configs = []
    dicts = [entry for entry in recipe if isinstance(entry, dict)]
    parsed = iter(parse_passes(dicts, "<apply>", "passes")) if dicts else iter(())
    for entry in recipe:
        if isinstance(entry, PassConfig):
            configs.append(entry)
        elif isinstance(entry, dict):
            configs.append(next(parsed))
        else:
            raise UserError(f"apply() got {type(entry).__name__}; pass configs (e.g. RTNConfig(bits=4)) or dicts with a 'pass' key")
    return configs


def apply(
    model: nn.Module,
    recipe: PassList,
    data: torch.Tensor | None = None,
    *,
    tokenizer: Any = None,
    teacher: nn.Module | None = None,
    data_config: DataConfig | None = None,
    progress: bool = True,
) -> tuple[nn.Module, list[PassReport]]:
    """Apply the passes in order, in place; returns the model and one report per pass.

    `data` is calibration token ids [samples, seq_len]; when a pass needs it and none is given,
    it is sampled with `tokenizer` from `data_config` (default: the embedded training plays).
    """
    configs = as_pass_configs(recipe)
    if isinstance(recipe, Recipe) and data_config is None:
        data_config = recipe.data
    specs = [get_pass(config.pass_name) for config in configs]
    device = next((p.device.type for p in model.parameters()), "cpu")
    context = PassContext(calibration=data, tokenizer=tokenizer, teacher=teacher, device=device, progress=progress)
    if any(spec.needs_calibration for spec in specs) and context.calibration is None:
        context.calibration = _sample_calibration(tokenizer, data_config or DataConfig(), [s.name for s in specs if s.needs_calibration])
    missing_teacher = [spec.name for spec in specs if spec.needs_teacher and teacher is None]
    if missing_teacher:
        raise UserError(f"pass {missing_teacher[0]!r} needs a teacher model: apply(model, ..., teacher=dense_model)")
    reports = []
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for spec, config in zip(specs, configs):
            reports.append(spec.run(model, config, context))
    model.train(was_training)
    from compress.export.native import mark_packed  # issue 11: save_pretrained must not write random weights

    mark_packed(model)
    return model, reports


def _sample_calibration(tokenizer, data_config: DataConfig, needing: list[str]) -> torch.Tensor:
    if tokenizer is None:
        raise UserError(f"pass {needing[0]!r} needs calibration data: pass data=<token ids> or tokenizer=<tokenizer> to apply()")
    from compress.data.calibration import calibration_batches

    return calibration_batches(tokenizer, n_samples=data_config.samples, seq_len=data_config.seq_len, seed=data_config.seed, source=data_config.source)


def plan(model: nn.Module, recipe: PassList) -> list[dict[str, Any]]:
    """What each pass would touch, without running it: modules and bytes now/after.

    Each pass is planned against the model as it is now (earlier passes are not run).
    """
    from compress.targets import select_linears

    plans = []
    for config in as_pass_configs(recipe):
        spec = get_pass(config.pass_name)
        if spec.plan is not None:
            rows = spec.plan(model, config)
        else:
            rows = []
            for name, module in select_linears(model, config.targets, config.ignore):
                size = sum(t.numel() * t.element_size() for t in module.state_dict().values())
                rows.append((name, size, size))
        plans.append(
            {
                "pass": config.pass_name,
                "config": config.model_dump(mode="json"),
                "modules": [{"name": n, "bytes_now": before, "bytes_after": after} for n, before, after in rows],
                "bytes_now": sum(r[1] for r in rows),
                "bytes_after": sum(r[2] for r in rows),
            }
        )
    return plans
