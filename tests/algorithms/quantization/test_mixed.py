"""`mixed`: the knapsack is optimal, the byte accounting exact, bad budgets fail in one line, and
the pass runs on LLaMA and GPT-2 (Conv1D) models."""

from __future__ import annotations

import copy
import itertools
import random

import pytest
import torch

import compress
from compress.algorithms.quantization.knapsack import Infeasible, solve
from compress.algorithms.quantization.mixed import MixedConfig, layer_bytes
from compress.errors import UserError
from compress.formats.dense import module_bytes
from compress.formats.quantized_linear import QuantizedLinear
from compress.model_info import weight_bytes
from compress.passes import RTNConfig
from tests.conftest import tiny_gpt2, tiny_llama


def brute_force(costs, values, budget):
    best = None
    for choice in itertools.product(*[range(len(c)) for c in costs]):
        cost = sum(costs[i][j] for i, j in enumerate(choice))
        value = sum(values[i][j] for i, j in enumerate(choice))
        if cost <= budget and (best is None or value < best[1] - 1e-12):
            best = (cost, value)
    return best


@pytest.mark.parametrize("seed", range(40))
def test_knapsack_is_optimal_on_brute_forceable_cases(seed):
    rng = random.Random(seed)
    layers, options = rng.randint(1, 6), rng.randint(1, 4)
    costs = [[rng.randint(1, 60) for _ in range(options)] for _ in range(layers)]
    values = [[rng.uniform(-1, 5) for _ in range(options)] for _ in range(layers)]
    budget = rng.randint(sum(map(min, costs)), sum(map(max, costs)))
    allocation = solve(costs, values, budget)
    _, value = brute_force(costs, values, budget)
    assert allocation.exact and allocation.value == pytest.approx(value, abs=1e-9)
    assert allocation.cost == sum(costs[i][j] for i, j in enumerate(allocation.choice)) <= budget
    assert allocation.value == pytest.approx(sum(values[i][j] for i, j in enumerate(allocation.choice)))


def test_knapsack_refuses_a_budget_below_the_cheapest_and_thins_huge_fronts():
    with pytest.raises(Infeasible):
        solve([[5, 9], [3, 4]], [[1.0, 0.0], [1.0, 0.0]], budget=7)
    rng = random.Random(0)
    costs = [[rng.randint(1, 10**6) for _ in range(4)] for _ in range(12)]
    values = [[rng.random() for _ in range(4)] for _ in range(12)]
    thinned = solve(costs, values, budget=6 * 10**6, max_states=5)
    assert not thinned.exact and thinned.cost <= 6 * 10**6


@pytest.mark.parametrize("bits,group,symmetric,shape", [(2, 64, False, (48, 200)), (3, 32, True, (40, 96)), (4, None, False, (16, 64)), (8, 64, False, (24, 128))])
def test_layer_bytes_are_the_packed_layers_bytes(bits, group, symmetric, shape):
    layer = torch.nn.Linear(shape[1], shape[0], bias=False)
    packed = compress.apply(torch.nn.Sequential(layer), [RTNConfig(bits=bits, group_size=group, symmetric=symmetric)], progress=False)[0][0]
    assert isinstance(packed, QuantizedLinear)
    assert layer_bytes(layer, bits, group, symmetric) == module_bytes(packed)


def _tokens():
    return torch.randint(0, 128, (4, 32), generator=torch.Generator().manual_seed(0))


def _uniform_bytes(model, bits):
    return weight_bytes(compress.apply(copy.deepcopy(model), [RTNConfig(bits=bits, group_size=64)], progress=False)[0])


@pytest.mark.parametrize("make", [tiny_llama, tiny_gpt2])
def test_runs_to_a_byte_budget_exactly_accounted(make):
    model = make()
    low, high = _uniform_bytes(model, 2), _uniform_bytes(model, 3)
    budget = (low + high) // 2
    out, (report,) = compress.apply(copy.deepcopy(model), [MixedConfig(max_weight_bytes=budget, candidate_bits=[2, 3, 4])], _tokens(), progress=False)
    details = report.details
    assert details["predicted_weight_bytes"] == details["achieved_weight_bytes"] == weight_bytes(out) <= budget
    assert budget - weight_bytes(out) < 0.02 * budget
    assert set(details["bits_per_layer"]) == set(report.modules) and len(report.modules) == (14 if make is tiny_llama else 8)
    assert all(isinstance(out.get_submodule(n), QuantizedLinear) and f"w{out.get_submodule(n).bits}-g64" == details["bits_per_layer"][n]
               for n in report.modules)
    assert all(len(row) == 3 and all(v >= -1e-6 for v in row.values()) for row in details["sensitivity"].values())  # KL >= 0
    with torch.no_grad():
        assert torch.isfinite(out(_tokens()).logits).all()


def test_average_bits_and_gptq_and_loss_sensitivity():
    model = tiny_llama()
    out, (report,) = compress.apply(copy.deepcopy(model), [MixedConfig(average_bits=3.0, method="gptq", sensitivity="loss")], _tokens(), progress=False)
    details = report.details
    assert details["predicted_average_bits"] <= 3.0 and details["method"] == "gptq"
    assert set(details["gptq_reconstruction_error"]) == set(report.modules)
    assert details["achieved_weight_bytes"] == weight_bytes(out)


def test_infeasible_budget_is_one_line_naming_the_range():
    model = tiny_llama()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(UserError) as error:
        compress.apply(model, [MixedConfig(max_weight_bytes="1kB")], _tokens(), progress=False)
    message = str(error.value)
    assert "\n" not in message and "infeasible" in message
    assert f"from {_uniform_bytes(tiny_llama(), 2)} to " in message  # smallest = every layer at 2 bits
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the model is untouched
    with pytest.raises(UserError, match="from 2.5 to 8.5 bits per weight"):
        compress.apply(tiny_llama(), [MixedConfig(average_bits=2.0)], _tokens(), progress=False)


def test_config_needs_exactly_one_budget_and_valid_widths():
    from pydantic import ValidationError

    for bad in ({}, {"average_bits": 3, "max_weight_bytes": 10}, {"average_bits": 3, "candidate_bits": [1, 4]}, {"average_bits": 3, "candidate_bits": [4, 4]}):
        with pytest.raises(ValidationError):
            MixedConfig(**bad)
    assert MixedConfig(max_weight_bytes="850kB").max_weight_bytes == 850_000
    assert MixedConfig(average_bits=3, candidate_bits=[8, 2]).candidate_bits == [2, 8]


def test_dry_run_plan_spends_exactly_the_budget():
    from compress.core.apply import plan

    model = tiny_gpt2()
    budget = (_uniform_bytes(model, 2) + _uniform_bytes(model, 3)) // 2
    (entry,) = plan(model, [MixedConfig(max_weight_bytes=budget)])
    assert len(entry["modules"]) == 8 and weight_bytes(model) - entry["bytes_now"] + entry["bytes_after"] == budget
    with pytest.raises(UserError, match="infeasible"):
        plan(model, [MixedConfig(average_bits=2.2)])
