"""Defects 5 and 6 at the pass: no silent no-op, no NaN weights (the checks live in core/apply.py,
issue 8; these are the issue-12 repros), and an already-compressed checkpoint says why not."""

from __future__ import annotations

import pytest
import torch

import compress
from compress.errors import UserError
from compress.passes import RTNConfig
from tests.conftest import tiny_llama


def test_targets_that_match_nothing_are_an_error_naming_the_pass():
    model = tiny_llama(vocab_size=64, hidden=32, intermediate=64, layers=1)
    with pytest.raises(UserError, match=r"pass 'rtn' touched no module.*no_such_layer") as caught:
        compress.apply(model, [RTNConfig(targets=["no_such_layer"])], progress=False)
    assert "\n" not in str(caught.value)


def test_rtn_on_an_already_quantized_model_says_why_not():
    model = tiny_llama(vocab_size=64, hidden=32, intermediate=64, layers=1)
    model, _ = compress.apply(model, [RTNConfig(bits=4, group_size=16)], progress=False)
    with pytest.raises(UserError, match="pass 'rtn' touched no module"):
        compress.apply(model, [RTNConfig(bits=4, group_size=16)], progress=False)


def test_a_pass_that_leaves_nan_weights_is_an_error_naming_the_layer():
    model = tiny_llama(vocab_size=64, hidden=32, intermediate=64, layers=1)
    with torch.no_grad():
        model.model.layers[0].mlp.down_proj.weight[0, 0] = float("nan")
    with pytest.raises(UserError, match=r"pass 'rtn' left .*NaN/Inf value\(s\) in model.layers.0.mlp.down_proj"):
        compress.apply(model, [RTNConfig(bits=4, group_size=16)], progress=False)
