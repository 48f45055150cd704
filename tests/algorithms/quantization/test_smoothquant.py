"""SmoothQuant: the migration formula, exactness of the folding, and W8A8 end to end."""

from __future__ import annotations

import pytest
import torch

import compress
from compress.algorithms.quantization.smoothquant import smoothing_scales
from compress.formats.w8a8 import Int8Linear
from compress.passes import SmoothQuantConfig
from tests.conftest import tiny_gpt2, tiny_llama


@pytest.mark.parametrize("alpha", [0.25, 0.5, 0.85])
def test_migration_formula(alpha):
    """s_j = max|X_j|^a / max|W_j|^(1-a): afterwards max|X_j/s_j| = max|X_j|^(1-a) max|W_j|^(1-a)
    and max|W_j s_j| = max|X_j|^a max|W_j|^a; at a = 0.5 both ranges are equal."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(200, 32, generator=generator) * torch.linspace(0.1, 30, 32)
    weight = torch.randn(16, 32, generator=generator)
    x_max, w_max = x.abs().amax(0).double(), weight.abs().amax(0).double()
    s = smoothing_scales(x_max, w_max, alpha)
    torch.testing.assert_close((x.double() / s).abs().amax(0), x_max.pow(1 - alpha) * w_max.pow(1 - alpha))
    torch.testing.assert_close((weight.double() * s).abs().amax(0), x_max.pow(alpha) * w_max.pow(alpha))
    if alpha == 0.5:
        torch.testing.assert_close((x.double() / s).abs().amax(0), (weight.double() * s).abs().amax(0))


def _logits(model, tokens):
    with torch.no_grad():
        return model(tokens).logits


@pytest.mark.parametrize("build", [tiny_llama, tiny_gpt2])
def test_smoothquant_w8a8_is_close_to_dense_and_reloads(tmp_path, build):
    dense = build()
    tokens = torch.randint(0, 128, (4, 48), generator=torch.Generator().manual_seed(0))
    reference = _logits(dense, tokens)
    model, [report] = compress.apply(build(), [SmoothQuantConfig(alpha=0.5)], data=tokens, progress=False)
    targets = [m for n, m in model.named_modules() if n.count(".") >= 3 and isinstance(m, (torch.nn.Linear, Int8Linear)) or type(m).__name__ == "Conv1D"]
    assert targets and all(isinstance(m, Int8Linear) for m in targets)
    assert len(report.details["smoothed"]) == 2 * 2  # two norms per block, two blocks
    got = _logits(model, tokens)
    assert float((got - reference).norm() / reference.norm()) < 0.05
    compress.save(model, tmp_path / "sq")
    loaded, _, _ = compress.load(tmp_path / "sq")
    torch.testing.assert_close(_logits(loaded, tokens), got)


def test_smoothing_helps_when_activations_have_outlier_channels():
    """The paper's point: per-token int8 struggles with outlier channels; migrating them fixes it."""

    def with_outliers():
        model = tiny_llama()
        with torch.no_grad():
            for layer in model.model.layers:
                layer.input_layernorm.weight[:4] = 60.0  # a few huge activation channels
                layer.post_attention_layernorm.weight[:4] = 60.0
        return model

    tokens = torch.randint(0, 128, (4, 48), generator=torch.Generator().manual_seed(0))
    reference = _logits(with_outliers(), tokens)
    errors = {}
    for alpha in (0.0, 0.5):
        model, _ = compress.apply(with_outliers(), [SmoothQuantConfig(alpha=alpha)], data=tokens, progress=False)
        errors[alpha] = float((_logits(model, tokens) - reference).norm() / reference.norm())
    assert errors[0.5] < 0.7 * errors[0.0]
