"""Multiple-choice knapsack: one option per layer, least total value within a byte budget.

Each layer i offers options j with an integer cost (bytes) c[i][j] and a value (predicted
loss increase) v[i][j]; pick exactly one option per layer minimising Σv subject to Σc ≤ budget.

Solved by dynamic programming over *Pareto fronts*, which is exact: after layer i, a partial
choice (cost, value) is kept only if no other partial choice is both no costlier and no worse,
because the layers still to come add the same options to both. Costs are the real byte counts,
not a grid, so no rounding moves the answer; states that cannot be completed within the budget
(cost + the cheapest completion > budget) are dropped as they appear. Transformer layers come in
a few shapes, so the fronts stay small (hundreds to thousands of states for a model of ~200
layers and 4 options); when a front grows past `max_states` it is thinned to the best state per
cost bucket of equal width and the answer is marked `exact=False` (still within budget: costs
are tracked exactly, only the search is narrowed).

Why not a Lagrangian relaxation: it only reaches allocations on the convex hull of the
(cost, value) trade-off, so for a budget between two hull points it leaves up to one layer's
step unused or needs a greedy repair that is not optimal; at the pocket models' ~30 layers a
single step is a few percent of the budget. The exact front costs milliseconds there.

    >>> solve([[1, 2], [1, 2]], [[5.0, 1.0], [4.0, 1.0]], budget=3)
    Allocation(choice=[1, 0], cost=3, value=5.0, exact=True)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Allocation(NamedTuple):
    choice: list[int]  # option index per layer
    cost: int  # Σ cost of the chosen options
    value: float  # Σ value of the chosen options
    exact: bool  # False when a front had to be thinned (see the module doc)


class Infeasible(ValueError):
    """The budget is below the cheapest allocation."""


def solve(costs: list[list[int]], values: list[list[float]], budget: int, *, max_states: int = 200_000) -> Allocation:
    """The least-value choice of one option per layer with Σ cost ≤ budget (see the module doc)."""
    if len(costs) != len(values) or any(len(c) != len(v) or not c for c, v in zip(costs, values)):
        raise ValueError("solve: costs and values must be equal-shaped, non-empty lists per layer")
    budget = min(int(budget), sum(max(c) for c in costs))  # a larger budget buys nothing more (and stays in int64)
    cheapest = [min(c) for c in costs]
    rest = np.concatenate([np.cumsum(cheapest[::-1])[::-1], [0]]).astype(np.int64)  # rest[i]: cheapest layers i..
    if rest[0] > budget:
        raise Infeasible(f"budget {budget} is below the cheapest allocation ({int(rest[0])})")
    cost = np.zeros(1, dtype=np.int64)
    value = np.zeros(1, dtype=np.float64)
    back: list[tuple[np.ndarray, np.ndarray]] = []
    exact = True
    for i, (layer_costs, layer_values) in enumerate(zip(costs, values)):
        c = np.asarray(layer_costs, dtype=np.int64)
        v = np.asarray(layer_values, dtype=np.float64)
        new_cost = (cost[:, None] + c[None, :]).ravel()
        new_value = (value[:, None] + v[None, :]).ravel()
        parent = np.repeat(np.arange(cost.size), c.size)
        option = np.tile(np.arange(c.size), cost.size)
        keep = new_cost + rest[i + 1] <= budget
        new_cost, new_value, parent, option = new_cost[keep], new_value[keep], parent[keep], option[keep]
        order = np.lexsort((new_value, new_cost))  # by cost, then value
        new_cost, new_value, parent, option = new_cost[order], new_value[order], parent[order], option[order]
        best_before = np.concatenate([[np.inf], np.minimum.accumulate(new_value)[:-1]])
        front = new_value < best_before  # strictly better than every cheaper-or-equal state
        new_cost, new_value, parent, option = new_cost[front], new_value[front], parent[front], option[front]
        if new_cost.size > max_states:
            width = max(1, -(-int(budget) // max_states))
            bucket = new_cost // width
            last = np.concatenate([bucket[1:] != bucket[:-1], [True]])  # on a front the costliest state of a bucket is its best
            new_cost, new_value, parent, option = new_cost[last], new_value[last], parent[last], option[last]
            exact = False
        back.append((parent, option))
        cost, value = new_cost, new_value
    state = int(np.argmin(value))
    total_cost, total_value = int(cost[state]), float(value[state])
    choice = []
    for parent, option in reversed(back):
        choice.append(int(option[state]))
        state = int(parent[state])
    return Allocation(choice[::-1], total_cost, total_value, exact)
