"""Run passes on a model: `compress.apply(model, [RTNConfig(bits=4)], data=...)`.

The framework drives and the algorithms only hold their maths: consecutive passes of the same
engine share one walk through the model (e.g. two calibrated passes, one block-wise pass over
the calibration data); every pass is timed, its touched modules' bytes counted before/after,
checked for NaN/Inf, and reported. A pass that touches no module is an error.

    >>> import torch, compress
    >>> from compress.passes import MagnitudeConfig
    >>> model = torch.nn.Sequential(torch.nn.Linear(8, 8))
    >>> model, reports = compress.apply(model, [MagnitudeConfig(sparsity=0.5)], progress=False)
    >>> reports[0].details["sparsity"]
    0.5
"""

from __future__ import annotations

import importlib
import itertools
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from compress.core.config import PassConfig
from compress.core.context import DataConfig, PassContext
from compress.core.registry import spec_for
from compress.core.report import PassReport, PassRun
from compress.core.targets import select_linears
from compress.errors import UserError
from compress.faults import fault_point
from compress.formats.dense import module_bytes


def apply(
    model: nn.Module,
    configs: PassConfig | Sequence[PassConfig],
    data: torch.Tensor | None = None,
    *,
    tokenizer: Any = None,
    teacher: nn.Module | Callable[[], nn.Module] | None = None,
    data_config: DataConfig | None = None,
    progress: bool = True,
    work_dir=None,
) -> tuple[nn.Module, list[PassReport]]:
    """Apply the passes in order, in place; returns the model and one report per pass.

    `data` is calibration token ids [samples, seq_len]; when a pass needs it and none is given,
    it is drawn with `tokenizer` from `data_config` (default: the embedded training plays).
    A pass that needs a teacher gets `teacher`, or else a copy of the model taken before the
    passes run. `work_dir`: a folder where training passes (distill) checkpoint, so a rerun
    after a kill resumes from the last checkpoint; None trains without checkpoints.
    """
    device = next((p.device.type for p in model.parameters()), "cpu")
    context = PassContext(data=data, tokenizer=tokenizer, teacher=teacher, data_config=data_config, device=device, progress=progress, work_dir=work_dir)
    return model, run_passes(model, configs, context)


def _as_list(configs: PassConfig | Sequence[PassConfig]) -> list[PassConfig]:
    if isinstance(configs, PassConfig):
        return [configs]
    if isinstance(configs, (str, bytes)) or not isinstance(configs, Sequence):
        spec_for(configs)  # raises the "expected a pass config" error
    return list(configs)


def run_passes(model: nn.Module, configs: PassConfig | Sequence[PassConfig], context: PassContext) -> list[PassReport]:
    """The framework loop: group consecutive passes by engine, run each group, fill the reports."""
    configs = _as_list(configs)
    specs = [spec_for(config) for config in configs]
    for spec in specs:
        if spec.needs_calibration and context._calibration is None and context.tokenizer is None:
            raise UserError(f"pass {spec.name!r} needs calibration data: pass data=<token ids> or tokenizer=<tokenizer> to apply()")
    if any(spec.needs_teacher for spec in specs):
        context.snapshot_teacher(model)
    runs = []
    for spec, config in zip(specs, configs):
        context.asking = spec.name
        runs.append(PassRun(spec, config, spec.algorithm(config, context)))
    was_training = model.training
    model.eval()
    try:
        for engine, group in itertools.groupby(runs, key=lambda r: r.spec.engine):
            group = list(group)
            context.asking = "+".join(r.name for r in group)
            engine_module = importlib.import_module(f"compress.engines.{engine}")
            for pass_run in group:
                fault_point(f"pass:{pass_run.name}")
            if engine == "train":
                engine_module.run(model, group, context)  # the training engine manages grad itself
            else:
                with torch.no_grad():
                    engine_module.run(model, group, context)
            for pass_run in group:
                _finish(pass_run, model)
    finally:
        model.train(was_training)
    from compress.export.native import mark_packed  # issue 11: save_pretrained must not write random weights

    mark_packed(model)
    return [r.report for r in runs]


def _finish(pass_run: PassRun, model: nn.Module) -> None:
    report = pass_run.report
    if not report.modules:
        pass_run.fail_empty(model)
    report.seconds = pass_run.seconds
    if hasattr(pass_run.algorithm, "details"):
        report.details.update(pass_run.algorithm.details())


def plan(model: nn.Module, configs: PassConfig | Sequence[PassConfig]) -> list[dict[str, Any]]:
    """What each pass would touch, without running it: modules and bytes now/after.

    Each pass is planned against the model as it is now (earlier passes are not run).
    """
    plans = []
    for config in _as_list(configs):
        spec = spec_for(config)
        algorithm = spec.algorithm(config, PassContext(progress=False))
        if spec.plan is not None:
            rows = spec.plan(model, config)
        elif hasattr(algorithm, "plan"):
            rows = algorithm.plan(model)
        else:
            chosen = algorithm.select(model) if hasattr(algorithm, "select") else select_linears(model, config.targets, config.ignore)
            rows = [(name, module_bytes(module), module_bytes(module)) for name, module in chosen]
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


