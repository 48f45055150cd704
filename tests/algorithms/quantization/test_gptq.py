"""GPTQ: the paper's Algorithm 1 (same codes), groups incl. ragged, act_order, damp retries, reload."""

import pytest
import torch
import transformers

import compress
from compress.algorithms.quantization.gptq import (
    GPTQConfig,
    gptq_quantize,
    reconstruction_error,
)
from compress.algorithms.quantization.grid import dequantize, find_params, rtn_quantize
from compress.engines.stats import damped_cholesky_inverse
from compress.formats import QuantizedLinear


def correlated_layer(rows=24, columns=300, tokens=600, seed=0, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    mixing = torch.randn(columns, columns, generator=generator, dtype=dtype) / columns**0.5
    X = torch.randn(tokens, columns, generator=generator, dtype=dtype) @ mixing + 0.1 * torch.randn(tokens, columns, generator=generator, dtype=dtype)
    W = torch.randn(rows, columns, generator=generator, dtype=dtype)
    return W, X, 2 * X.T @ X / tokens


def algorithm_1(W, H, scale, zero, maxq, B, damp):
    """Frantar et al. 2022, Algorithm 1, line by line (float64): returns the codes."""
    W = W.clone()
    rows, columns = W.shape
    H = H + damp * torch.diag(H).mean() * torch.eye(columns, dtype=H.dtype)
    Hinv = torch.linalg.cholesky(torch.linalg.inv(H), upper=True)  # H^-1 <- Cholesky(H^-1)^T
    codes = torch.zeros(rows, columns, dtype=torch.long)
    Q = torch.zeros_like(W)
    for i in range(0, columns, B):
        end = min(i + B, columns)
        E = torch.zeros(rows, end - i, dtype=W.dtype)
        for j in range(i, end):
            codes[:, j] = torch.clamp(torch.round(W[:, j] / scale) + zero, 0, maxq).long()
            Q[:, j] = (codes[:, j] - zero) * scale  # quant(W[:, j])
            E[:, j - i] = (W[:, j] - Q[:, j]) / Hinv[j, j]
            W[:, j:end] -= torch.outer(E[:, j - i], Hinv[j, j:end])
        W[:, end:] -= E @ Hinv[i:end, end:]
    return codes


@pytest.mark.parametrize("symmetric", [False, True])
def test_same_codes_as_a_transcription_of_algorithm_1(symmetric):
    W, _, H = correlated_layer()
    scale, zero = find_params(W, bits=4, symmetric=symmetric)
    expected = algorithm_1(W, H, scale.double(), zero.double(), 15, B=128, damp=0.01)
    result = gptq_quantize(W, H, bits=4, group_size=None, symmetric=symmetric, damp=0.01, block_size=128)
    assert torch.equal(result.codes.long(), expected)
    assert torch.equal(result.scales[:, 0], scale) and torch.equal(result.zeros[:, 0], zero)
    assert result.retries == 0 and result.damp == 0.01


def test_block_size_is_only_speed():
    W, _, H = correlated_layer()
    a = gptq_quantize(W, H, bits=3, group_size=64, block_size=128)
    b = gptq_quantize(W, H, bits=3, group_size=64, block_size=1)
    assert (a.codes != b.codes).float().mean() < 1e-3  # same maths, float rounding aside


@pytest.mark.parametrize(("bits", "symmetric"), [(2, False), (3, True), (4, False), (8, True)])
def test_gptq_beats_rtn_on_the_calibration_outputs(bits, symmetric):
    W, X, H = correlated_layer(dtype=torch.float32)
    for act_order in (False, True):
        result = gptq_quantize(W, H, bits=bits, group_size=64, symmetric=symmetric, act_order=act_order)
        assert int(result.codes.max()) <= 2**bits - 1
        zeros = None if symmetric else result.zeros
        ours = reconstruction_error(W, dequantize(result.codes, result.scales, zeros, 64, bits), H)
        rtn = rtn_quantize(W, bits, 64, symmetric)
        baseline = reconstruction_error(W, dequantize(rtn.codes, rtn.scales, None if symmetric else rtn.zeros, 64, bits), H)
        assert ours < baseline, (bits, symmetric, act_order)
    # the reported error is the measured one on the calibration inputs
    restored = dequantize(result.codes, result.scales, None if symmetric else result.zeros, 64, bits)
    measured = float(((X.float() @ (W - restored).T).norm() ** 2) / ((X.float() @ W.T).norm() ** 2))
    assert abs(measured - ours) < 1e-3 * max(measured, 1e-6)


def test_act_order_keeps_static_groups_in_natural_order():
    W, _, H = correlated_layer(dtype=torch.float32)
    result = gptq_quantize(W, H, bits=4, group_size=64, act_order=True)
    for g in range(result.scales.shape[1]):  # every group's grid is the one of its natural columns
        scale, zero = find_params(W[:, g * 64 : (g + 1) * 64], bits=4, symmetric=False)
        assert torch.equal(result.scales[:, g], scale) and torch.equal(result.zeros[:, g], zero)


def test_damp_is_raised_until_cholesky_succeeds():
    indefinite = torch.tensor([[1.0, 3.0], [3.0, 1.0]], dtype=torch.float64)  # eigenvalues -2 and 4
    _, used, retries = damped_cholesky_inverse(indefinite, 0.01)
    assert retries == 3 and used == pytest.approx(10.0)
    result = gptq_quantize(torch.randn(4, 2), indefinite, bits=4, group_size=None)
    assert result.retries == 3


def test_dead_inputs_get_zero_weight():
    W, _, H = correlated_layer(columns=64, dtype=torch.float32)
    H[5, :] = 0
    H[:, 5] = 0
    result = gptq_quantize(W, H, bits=4, group_size=None)
    restored = dequantize(result.codes, result.scales, result.zeros, None, 4)
    assert torch.all(restored[:, 5] == 0)


def hidden_576_llama():
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=64, hidden_size=576, intermediate_size=256, num_hidden_layers=1, num_attention_heads=9, num_key_value_heads=3, tie_word_embeddings=True)
    return transformers.AutoModelForCausalLM.from_config(config).eval()


def test_576_wide_layers_with_group_128_work_warn_and_reload_to_the_same_logits(tmp_path):
    model = hidden_576_llama()
    tokens = torch.randint(0, 64, (4, 32), generator=torch.Generator().manual_seed(0))
    with pytest.warns(UserWarning, match="compressed-tensors"):
        model, (report,) = compress.apply(model, [GPTQConfig(bits=4, group_size=128)], tokens, progress=False)
    q_proj = model.model.layers[0].self_attn.q_proj
    assert isinstance(q_proj, QuantizedLinear) and q_proj.scales.shape == (576, 5)  # 4 groups of 128 + one of 64
    assert "model.layers.0.self_attn.q_proj" in report.details["ragged_last_group"]
    assert "mlp.down_proj" not in " ".join(report.details["ragged_last_group"])  # 256 wide: two full groups
    assert set(report.details["reconstruction_error"]) == set(report.modules) and len(report.modules) == 7
    with torch.no_grad():
        before = model(tokens).logits
    loaded = compress.load(compress.save(model, tmp_path / "gptq", manifest={"passes": [report.to_dict()]}))
    with torch.no_grad():
        assert (loaded.model(tokens).logits - before).abs().max() <= 1e-5


def test_gpt2_conv1d_end_to_end_and_tags():
    from tests.conftest import tiny_gpt2

    model = tiny_gpt2()
    tokens = torch.randint(0, 128, (4, 16), generator=torch.Generator().manual_seed(0))
    model, (report,) = compress.apply(model, [GPTQConfig(bits=3, group_size=32, act_order=True)], tokens, progress=False)
    assert len(report.modules) == 8 and all(isinstance(model.get_submodule(n), QuantizedLinear) for n in report.modules)
    assert 0 < report.details["mean_reconstruction_error"] < 0.2
    assert report.bytes_after < report.bytes_before / 5
    assert GPTQConfig().tag() == "gptq-w4-g128" and GPTQConfig(bits=3, group_size=64, symmetric=True, act_order=True).tag() == "gptq-w3-g64-sym-act"
    assert all(field.description for field in GPTQConfig.model_fields.values())


def test_listed_with_its_fields_and_recipes_validate(capsys):
    import json
    from pathlib import Path

    from compress.cli import main
    from compress.recipe import Recipe

    assert main(["ls", "passes", "--json"]) == 0
    gptq = {p["name"]: p for p in json.loads(capsys.readouterr().out)["passes"]}["gptq"]
    assert {"bits", "group_size", "symmetric", "act_order", "damp", "block_size"} <= set(gptq["fields"])
    assert gptq["engine"] == "sequential" and gptq["needs"] == ["calibration"]
    recipes = Path(__file__).resolve().parents[3] / "compress" / "recipes"
    assert Recipe.from_yaml(recipes / "gptq-4bit.yaml").variants[0].passes[0].tag() == "gptq-w4-g128"
    assert "gptq-w3-g64" in [v.name for v in Recipe.from_yaml(recipes / "demo.yaml").variants]


def test_zero_modules_is_an_error_for_gptq_too():
    from compress.errors import UserError
    from tests.conftest import tiny_llama

    with pytest.raises(UserError, match="pass 'gptq' touched no module"):
        compress.apply(tiny_llama(), [GPTQConfig(targets=["nothing"])], torch.zeros(2, 8, dtype=torch.long), progress=False)


def test_long_calibration_windows_are_cut_to_the_model_context():
    from compress.engines.sequential import fit_context
    from tests.conftest import tiny_gpt2

    model = tiny_gpt2()  # 256 positions
    assert fit_context(torch.zeros(3, 600, dtype=torch.long), model).shape == (6, 256)
    assert fit_context(torch.zeros(3, 100, dtype=torch.long), model).shape == (3, 100)
