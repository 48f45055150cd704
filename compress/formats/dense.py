"""The dense side of a packed format: a linear layer's weight as (out, in), and its bytes.

GPT-2's `Conv1D` stores its weight transposed, (in, out); every pass reads and writes weights
through `weight_matrix` so "a row is an output, columns are inputs" holds for both.

    >>> import torch
    >>> weight_matrix(torch.nn.Linear(3, 5)).shape
    torch.Size([5, 3])
"""

from __future__ import annotations

import torch
from torch import nn


def is_transposed(module: nn.Module) -> bool:
    """True for GPT-2's Conv1D, whose weight is (in, out)."""
    return type(module).__name__ == "Conv1D"


def weight_matrix(module: nn.Module) -> torch.Tensor:
    """A view (out, in) of a linear layer's weight; writing into it writes the layer."""
    weight = module.weight
    return weight.t() if is_transposed(module) else weight


def module_bytes(module: nn.Module) -> int:
    """Bytes of a module's parameters and persistent buffers, as saved."""
    from compress.units import tensor_bytes

    return tensor_bytes(module.state_dict().values())
