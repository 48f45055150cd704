"""Checkpoints saved before the engine restructure (main at 2777222) load to the same logits."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import compress

GOLDEN = Path(__file__).parent / "fixtures" / "golden"
EXPECTED = load_file(str(GOLDEN / "expected_logits.safetensors"))


@pytest.mark.parametrize("name", ["llama-rtn-w4-g16", "gpt2-rtn-w3-g16-sym", "llama-magnitude-2of4"])
def test_golden_checkpoint_loads_to_the_same_logits(name):
    loaded = compress.load(GOLDEN / name)
    with torch.no_grad():
        logits = loaded.model(EXPECTED["tokens"]).logits
    assert (logits - EXPECTED[name]).abs().max() <= 1e-5
