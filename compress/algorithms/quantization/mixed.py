"""`mixed`: per-layer bit widths chosen to a byte budget from measured sensitivities, stored packed.

1. Sensitivity. On `sensitivity_samples` calibration windows the dense model's next-token
   distributions are computed once. Then, for every selected layer and every candidate
   (bits × group size), only that layer is replaced by its round-to-nearest weight and the
   model re-run: the increase is the mean KL divergence from the dense distribution per token
   (`sensitivity: kl`, default) or the mean next-token loss increase (`loss`).
2. Allocation. The predicted loss of an allocation is the sum of its layers' increases (the
   usual additive approximation, as in HAWQ and llama.cpp's importance-based mixes); one option
   per layer is chosen to minimise it under the budget by an exact multiple-choice knapsack
   (`compress.algorithms.quantization.knapsack`, which explains why it is exact and not
   Lagrangian). Costs are the packed format's real byte counts (`rtn.packed_bytes`, the same
   formula `QuantizedLinear` allocates its buffers by: codes, fp16 scales, fp16 zeros).
3. Quantization. Each layer gets its width with `rtn`'s code (`method: rtn`), or GPTQ through
   the `gptq` pass itself (`method: gptq`: one sequential walk in which each chosen width is a
   `gptq` pass over its layers). Sensitivities are measured with the RTN grid in both cases.

Budgets: `max_weight_bytes` is the whole model as `weight_bytes` counts it (every parameter and
buffer, embeddings and norms included, shared tensors once); `average_bits` is stored bits per
weight of the selected layers, scales and zero points included (w4 g64 asymmetric = 4.5), bias
excluded. The report's details give the bits per layer, the predicted and achieved bytes.

    >>> MixedConfig(average_bits=3.0).tag()
    'mixed-rtn-w2348-g64-avg3'
"""

from __future__ import annotations

import math
import sys
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator, model_validator
from torch import nn
from tqdm import tqdm

from compress.algorithms.quantization.grid import (
    dequantize,
    quantizable_linears,
    rtn_quantize,
)
from compress.algorithms.quantization.knapsack import solve
from compress.algorithms.quantization.rtn import RTN, RTNConfig, packed_bytes
from compress.core.config import PassConfig
from compress.core.registry import register_pass
from compress.errors import UserError
from compress.formats.dense import module_bytes, weight_matrix

_KL_DENSE_LIMIT = 1 << 30  # dense log-probabilities above this many fp32 bytes are held in fp16


class MixedConfig(PassConfig):
    """Bits per layer chosen from measured sensitivities to fit a byte or average-bits budget."""

    pass_name: ClassVar[str] = "mixed"

    candidate_bits: list[int] = Field(default_factory=lambda: [2, 3, 4, 8], min_length=1, description="Candidate bit widths, each 2..8.")
    group_sizes: list[int | None] = Field(default_factory=lambda: [64], min_length=1,
                                          description="Candidate group sizes (null = per output channel); candidates are candidate_bits x group sizes.")
    symmetric: bool = Field(False, description="Symmetric grids (no zero points) instead of min-max asymmetric.")
    max_weight_bytes: int | None = Field(None, gt=0, description="Budget: bytes of the whole model as stored (e.g. 850000, '850kB'). "
                                         "Give this or average_bits.")
    average_bits: float | None = Field(None, gt=0, le=16, description="Budget: stored bits per weight of the selected layers, "
                                       "scales/zeros included (w3 g64 = 3.5). Give this or max_weight_bytes.")
    method: Literal["rtn", "gptq"] = Field("rtn", description="Quantizer applied with the chosen widths: rtn, or gptq (calibrated).")
    sensitivity: Literal["kl", "loss"] = Field("kl", description="Per-layer score: KL from the dense next-token distribution, or loss increase.")
    sensitivity_samples: int = Field(8, ge=1, le=1024, description="Calibration windows the sensitivities are measured on.")
    act_order: bool = Field(False, description="method gptq: columns by descending Hessian diagonal.")
    damp: float = Field(0.01, gt=0, le=1, description="method gptq: Hessian dampening, fraction of its mean diagonal.")

    @field_validator("candidate_bits")
    @classmethod
    def _bits(cls, value: list[int]) -> list[int]:
        if any(b < 2 or b > 8 for b in value) or len(set(value)) != len(value):
            raise ValueError(f"candidate_bits {value}: give distinct widths from 2..8, e.g. [2, 3, 4, 8]")
        return sorted(value)

    @field_validator("group_sizes")
    @classmethod
    def _groups(cls, value: list[int | None]) -> list[int | None]:
        if any(g is not None and g < 8 for g in value):
            raise ValueError(f"group_sizes {value}: each is null (per channel) or at least 8")
        return value

    @field_validator("max_weight_bytes", mode="before")
    @classmethod
    def _size(cls, value):
        from compress.units import parse_size

        try:
            return parse_size(value, flag="mixed.max_weight_bytes") if isinstance(value, str) else value
        except UserError as error:
            raise ValueError(str(error)) from None

    @model_validator(mode="after")
    def _one_budget(self):
        if (self.max_weight_bytes is None) == (self.average_bits is None):
            raise ValueError("mixed needs exactly one budget: max_weight_bytes (whole model, bytes) or average_bits (per weight)")
        return self

    def tag(self) -> str:
        """e.g. 'mixed-rtn-w2348-g64-avg3', 'mixed-gptq-w234-g64-850000B'."""
        groups = "-".join(f"g{g}" if g else "pc" for g in self.group_sizes)
        budget = f"avg{self.average_bits:g}" if self.average_bits is not None else f"{self.max_weight_bytes}B"
        return f"mixed-{self.method}-w{''.join(map(str, self.candidate_bits))}-{groups}-{budget}" + ("-sym" if self.symmetric else "")

    def candidates(self) -> list[tuple[int, int | None]]:
        return [(b, g) for b in self.candidate_bits for g in self.group_sizes]


def option_name(bits: int, group_size: int | None) -> str:
    return f"w{bits}-" + (f"g{group_size}" if group_size else "pc")


@register_pass(
    MixedConfig,
    engine="oneshot",
    needs={"calibration"},
    description="Bits per layer from {2,3,4,8} by measured sensitivity, to a byte or average-bits budget (exact knapsack); rtn or gptq.",
)
class Mixed:
    """Measure, allocate, quantize (see the module doc). A model-level pass on the oneshot engine."""

    def __init__(self, config: MixedConfig, context=None) -> None:
        self.config = config
        self.context = context
        self.info: dict = {}

    def select(self, model: nn.Module) -> list[tuple[str, nn.Module]]:
        return quantizable_linears(model, self.config.targets, self.config.ignore, "mixed")

    def _accounting(self, model: nn.Module, layers) -> tuple[list[list[int]], int, int]:
        """(bytes per layer per option, every other byte of the model incl. the layers' biases, weights)."""
        from compress.model_info import weight_bytes

        costs = [[layer_bytes(module, bits, group, self.config.symmetric) for bits, group in self.config.candidates()] for _, module in layers]
        fixed = weight_bytes(model) - sum(module_bytes(module) for _, module in layers) + _bias_total(layers)
        return costs, fixed, sum(weight_matrix(module).numel() for _, module in layers)

    def compress_model(self, model: nn.Module) -> list[str]:
        from compress.model_info import weight_bytes

        config, layers = self.config, self.select(model)
        if not layers:
            return []
        options = config.candidates()
        costs, fixed, weights = self._accounting(model, layers)
        budget = self._layer_budget(fixed, weights, costs)
        scores = self._sensitivities(model, layers, options)
        allocation = solve(costs, scores, budget)
        chosen = {name: options[j] for (name, _), j in zip(layers, allocation.choice)}
        self._quantize(model, layers, chosen)
        achieved = weight_bytes(model)
        code_bytes = sum(costs[i][j] for i, j in enumerate(allocation.choice))
        self.info.update(
            bits_per_layer={name: option_name(*option) for name, option in chosen.items()},
            predicted_weight_bytes=fixed + allocation.cost,
            achieved_weight_bytes=achieved,
            predicted_average_bits=round(8 * code_bytes / weights, 4),
            predicted_increase=round(allocation.value, 6),
            solver="exact multiple-choice knapsack (Pareto-front DP)" if allocation.exact else "knapsack with thinned fronts (not proven optimal)",
            histogram={option_name(*o): sum(1 for c in chosen.values() if c == o) for o in options},
        )
        return [name for name, _ in layers]

    def plan(self, model: nn.Module) -> list[tuple[str, int, int]]:
        """For --dry-run: each layer's bytes now and its share of the budget (split by weight count;
        the real split follows the sensitivities measured at run time, the total is the bound)."""
        layers = self.select(model)
        if not layers:
            return []
        costs, fixed, weights = self._accounting(model, layers)
        budget = min(self._layer_budget(fixed, weights, costs), sum(max(c) for c in costs))
        sizes = [weight_matrix(module).numel() for _, module in layers]
        shares = [budget * n // weights for n in sizes]
        shares[-1] += budget - sum(shares)
        return [(name, module_bytes(module), share + _bias_total([(name, module)])) for (name, module), share in zip(layers, shares)]

    def _layer_budget(self, fixed: int, weights: int, costs: list[list[int]]) -> int:
        """Bytes the selected layers' codes/scales/zeros may take (`fixed`: every other byte of the
        model, the layers' biases included); a one-line error when infeasible."""
        config = self.config
        low, high = sum(min(c) for c in costs), sum(max(c) for c in costs)
        if config.max_weight_bytes is not None:
            budget, given = config.max_weight_bytes - fixed, f"max_weight_bytes={config.max_weight_bytes}"
            smallest, largest = fixed + low, fixed + high
            unit = " bytes (whole model)"
        else:
            budget, given = math.floor(config.average_bits * weights / 8), f"average_bits={config.average_bits:g}"
            smallest, largest = round(8 * low / weights, 4), round(8 * high / weights, 4)
            unit = " bits per weight (scales and zero points included)"
        self.info.update(budget=given, smallest_achievable=smallest, largest_achievable=largest)
        if budget < low:
            raise UserError(f"mixed: {given} is infeasible for this model: achievable budgets range from {smallest} to {largest}{unit} "
                            f"with candidate_bits {config.candidate_bits} and group sizes {config.group_sizes}; raise the budget or add a smaller width")
        return budget

    def _sensitivities(self, model: nn.Module, layers, options) -> list[list[float]]:
        """Per layer, per option: the score increase when only that layer is quantized (RTN grid)."""
        from compress.bench.modeling import logits_of
        from compress.engines.sequential import fit_context

        config, context = self.config, self.context
        tokens = fit_context(context.calibration(), model)[: config.sensitivity_samples]
        device = next(model.parameters()).device
        batches = [b.to(device) for b in tokens.split(context.data_config.batch_size)]
        reference = [torch.log_softmax(logits_of(model(input_ids=b, use_cache=False))[:, :-1].float(), dim=-1) for b in batches]
        if sum(r.numel() for r in reference) * 4 > _KL_DENSE_LIMIT:
            reference = [r.half() for r in reference]  # the dense entropy term is the same for every option: rankings unchanged
        dense = self._score(model, batches, reference) if config.sensitivity == "loss" else 0.0
        scores, bar = [], tqdm(total=len(layers) * len(options), desc="mixed: sensitivity", unit="trial",
                               file=sys.stderr, disable=not context.progress)
        for _, module in layers:
            weight = weight_matrix(module)
            original = weight.detach().clone()
            row = []
            for bits, group in options:
                codes, scales, zeros = rtn_quantize(original.float(), bits, group, config.symmetric)
                weight.copy_(dequantize(codes, scales, None if config.symmetric else zeros, group, bits).to(weight.dtype))
                row.append(self._score(model, batches, reference) - dense)
                bar.update()
            weight.copy_(original)
            scores.append(row)
        bar.close()
        self.info["sensitivity"] = {name: {option_name(*o): round(s, 7) for o, s in zip(options, row)} for (name, _), row in zip(layers, scores)}
        self.info["sensitivity_tokens"] = int(tokens[:, 1:].numel())
        return scores

    def _score(self, model: nn.Module, batches, reference) -> float:
        """Mean KL(dense ‖ model) per predicted token, or mean next-token loss (nats)."""
        from compress.bench.modeling import logits_of

        total, count = 0.0, 0
        for batch, dense in zip(batches, reference):
            logprobs = torch.log_softmax(logits_of(model(input_ids=batch, use_cache=False))[:, :-1].float(), dim=-1)
            if self.config.sensitivity == "kl":
                total += float(F.kl_div(logprobs, dense.float(), log_target=True, reduction="sum"))
            else:
                total += float(F.nll_loss(logprobs.flatten(0, 1), batch[:, 1:].flatten(), reduction="sum"))
            count += batch[:, 1:].numel()
        return total / count

    def _quantize(self, model: nn.Module, layers, chosen: dict) -> None:
        config = self.config
        if config.method == "rtn":
            for name, module in layers:
                bits, group = chosen[name]
                model.set_submodule(name, RTN(RTNConfig(bits=bits, group_size=group, symmetric=config.symmetric)).compress(name, module))
            return
        from compress.algorithms.quantization.gptq import GPTQConfig
        from compress.core.apply import run_passes

        passes = [GPTQConfig(bits=bits, group_size=group, symmetric=config.symmetric, act_order=config.act_order, damp=config.damp,
                             targets=[name for name, option in chosen.items() if option == (bits, group)])
                  for bits, group in config.candidates() if (bits, group) in chosen.values()]
        reports = run_passes(model, passes, self.context)  # consecutive gptq passes share one sequential walk
        self.info["gptq_reconstruction_error"] = {k: v for r in reports for k, v in r.details["reconstruction_error"].items()}

    def details(self) -> dict:
        config = self.config
        return {"method": config.method, "sensitivity_metric": config.sensitivity, "candidates": [option_name(*o) for o in config.candidates()],
                "symmetric": config.symmetric, **self.info}


def layer_bytes(module: nn.Module, bits: int, group_size: int | None, symmetric: bool) -> int:
    """Bytes of a layer's packed codes, scales and zeros (bias excluded: no option changes it)."""
    out_features, in_features = weight_matrix(module).shape
    return packed_bytes(out_features, in_features, RTNConfig(bits=bits, group_size=group_size, symmetric=symmetric))


def _bias_total(layers) -> int:
    return sum(module.bias.numel() * module.bias.element_size() for _, module in layers if getattr(module, "bias", None) is not None)
