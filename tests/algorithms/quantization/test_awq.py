"""AWQ: the scale and clipping searches against a direct transcription of the paper, and the pass end to end."""

from __future__ import annotations

import pytest
import torch
import transformers

import compress
from compress.algorithms.quantization.awq_search import apply_clip, fake_quantize, search_clip, search_scales
from compress.errors import UserError
from compress.formats.quantized_linear import QuantizedLinear
from compress.passes import AWQConfig
from tests.conftest import tiny_gpt2, tiny_llama


def _layer_with_outlier_channels(seed=0):
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(48, 64, generator=generator) * 0.05
    x = torch.randn(256, 64, generator=generator)
    x[:, :3] *= 25  # a few salient input channels, as in LLM activations
    return weight, x


def test_scale_search_is_the_papers_objective():
    """s* = argmin_alpha ||Q(W·diag(s)) (diag(s)^-1 X) - W X||, s = mean|x|^alpha / sqrt(max·min)."""
    weight, x = _layer_with_outlier_channels()
    bits, group = 3, 32
    reference = x @ weight.T

    def paper_loss(alpha):
        s = x.abs().mean(0).pow(alpha).clamp(min=1e-4)
        s = s / (s.max() * s.min()).sqrt()
        quantized = fake_quantize(weight * s, bits, group, False)
        return float(((x / s) @ quantized.T - reference).pow(2).mean())

    expected = [paper_loss(step / 20) for step in range(20)]
    quantize = lambda w: fake_quantize(w, bits, group, False)  # noqa: E731
    loss = lambda candidate: float((x @ candidate[0].T - reference).pow(2).mean())  # noqa: E731
    scales, alpha, losses = search_scales([weight], x.abs().mean(0), loss, quantize, grid=20)
    torch.testing.assert_close(torch.tensor(losses), torch.tensor(expected), rtol=1e-4, atol=1e-9)
    assert alpha == pytest.approx(min(range(20), key=lambda i: expected[i]) / 20)
    rtn_loss = float((x @ fake_quantize(weight, bits, group, False).T - reference).pow(2).mean())
    assert losses[0] == pytest.approx(rtn_loss, rel=1e-5)  # alpha = 0 is round-to-nearest
    assert min(losses) < 0.9 * rtn_loss  # salient channels protected: clearly better than RTN
    assert scales[:3].min() > scales[3:].max()


def test_clip_search_never_worsens_a_group_and_shrinks_at_most_half():
    weight, x = _layer_with_outlier_channels(1)
    weight[0, 5] = 1.0  # one outlier weight, worth clipping
    quantize = lambda w: fake_quantize(w, 3, 32, False)  # noqa: E731
    thresholds = search_clip(weight, x, quantize, 32, grid=20, max_shrink=0.5)
    original = weight.abs().reshape(48, 2, 32).amax(-1)
    assert thresholds.shape == (48, 2)
    assert bool((thresholds <= original + 1e-7).all()) and bool((thresholds >= 0.55 * original - 1e-7).all())
    clipped = weight.clone()
    apply_clip(clipped, thresholds, 32)
    grouped_error = lambda w: ((x.reshape(256, 1, 2, 32) * (quantize(w) - weight).reshape(1, 48, 2, 32)).sum(-1)).pow(2).mean(0)  # noqa: E731
    assert bool((grouped_error(clipped) <= grouped_error(weight) + 1e-6).all())


def test_clip_search_handles_a_ragged_last_group():
    weight, x = torch.randn(16, 96) * 0.1, torch.randn(64, 96)
    thresholds = search_clip(weight, x, lambda w: fake_quantize(w, 4, 64, False), 64)
    assert thresholds.shape == (16, 2)


@pytest.mark.parametrize("build", [tiny_llama, tiny_gpt2])
def test_awq_pass_packs_every_target_and_beats_rtn_per_group(build):
    model = build()
    tokens = torch.randint(0, 128, (4, 64), generator=torch.Generator().manual_seed(0))
    model, [report] = compress.apply(model, [AWQConfig(bits=3, group_size=32, grid=10, clip_tokens=64)], data=tokens, progress=False)
    linears = [m for n, m in model.named_modules() if isinstance(m, (torch.nn.Linear, QuantizedLinear)) and n != "lm_head"]
    assert linears and all(isinstance(m, QuantizedLinear) for m in linears)
    assert report.details["alpha"] and all(0 <= a < 1 for a in report.details["alpha"].values())
    assert all(value <= 1.0 for value in report.details["loss_vs_rtn"].values())
    assert report.bytes_after < report.bytes_before / 5


def test_awq_names_the_supported_architectures_for_others():
    config = transformers.GPTJConfig(vocab_size=64, n_embd=32, n_layer=1, n_head=4, rotary_dim=4, n_positions=64)
    model = transformers.AutoModelForCausalLM.from_config(config).eval()
    with pytest.raises(UserError, match="GPTJBlock.*supported architectures: gpt2"):
        compress.apply(model, [AWQConfig(group_size=32)], data=torch.randint(0, 64, (2, 16)), progress=False)


def test_clip_search_draws_its_tokens_from_every_calibration_batch():
    """llm-awq's auto_clip takes its 512 tokens with a stride over all calibration tokens, not from the first batch."""
    from compress.algorithms.quantization.awq import AWQ
    from compress.engines.stats import Stats

    awq, stats = AWQ(AWQConfig(bits=3, group_size=32, clip_tokens=64)), Stats()
    for batch in range(4):
        awq.observe("layers.0.mlp.down_proj", None, torch.full((64, 8), float(batch)), stats)
        awq.observe("layers.0.self_attn.q_proj", None, torch.full((64, 8), float(batch)), stats)  # never clipped: nothing kept
    rows = awq.clip_inputs("layers.0.mlp.down_proj")
    assert rows.shape == (64, 8) and set(rows[:, 0].tolist()) == {0.0, 1.0, 2.0, 3.0}
    assert "layers.0.self_attn.q_proj" not in awq.samples
