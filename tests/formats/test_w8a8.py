"""Int8Linear: int8 per-channel weights x per-token int8 activations, through a real int8 GEMM."""

from __future__ import annotations

import pytest
import torch

from compress.formats.dense import weight_matrix
from compress.formats.w8a8 import Int8Linear, fbgemm_available, quantize_per_channel, quantize_per_token
from tests.conftest import tiny_gpt2, tiny_llama


def _paper_w8a8(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """SmoothQuant's W8A8 written out: Y = diag(Δx) (X̄ W̄ᵀ) diag(Δw), Δ = absmax / 127 per token / channel."""
    delta_x = x.abs().amax(dim=1, keepdim=True) / 127
    delta_w = weight.abs().amax(dim=1) / 127
    x_bar = torch.round(x / delta_x).clamp(-127, 127)
    w_bar = torch.round(weight / delta_w[:, None]).clamp(-127, 127)
    return (x_bar.double() @ w_bar.double().t()) * delta_x.double() * delta_w.double()


def test_int_mm_path_is_the_paper_formula():
    torch.manual_seed(0)
    dense = torch.nn.Linear(96, 48, bias=False)
    layer = Int8Linear.from_linear(dense)
    x = torch.randn(7, 96) * torch.rand(7, 1) * 10
    got = layer._int_mm_forward(x)
    torch.testing.assert_close(got.double(), _paper_w8a8(x, dense.weight.detach()), rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not fbgemm_available(), reason="no x86 quantized engine in this build")
def test_cpu_kernel_is_fbgemm_and_close_to_per_token_int8():
    torch.manual_seed(0)
    dense = torch.nn.Linear(128, 64)
    layer = Int8Linear.from_linear(dense)
    x = torch.randn(2, 9, 128) * torch.rand(2, 9, 1) * 10  # rows of very different ranges
    exact = _paper_w8a8(x.reshape(-1, 128), dense.weight.detach()).float() + dense.bias.detach()
    got = layer(x).reshape(-1, 64)
    assert layer.kernel_name() == "fbgemm"
    assert layer._buffers.get("qweight") is None  # FBGEMM's prepacked copy is the only one held
    # 7-bit activations on AVX2 (reduce_range): within a few percent of exact per-token int8, per row
    row_error = (got - exact).norm(dim=1) / exact.norm(dim=1)
    assert float(row_error.max()) < 0.03


def test_weights_are_int8_and_state_dict_is_portable_after_prepacking():
    torch.manual_seed(0)
    dense = torch.nn.Linear(64, 32)
    layer = Int8Linear.from_linear(dense)
    layer(torch.randn(4, 64))  # may prepack and release qweight
    state = layer.state_dict()
    codes, scale = quantize_per_channel(dense.weight)
    assert state["qweight"].dtype == torch.int8 and torch.equal(state["qweight"], codes)
    torch.testing.assert_close(state["weight_scale"], scale)
    torch.testing.assert_close(layer.dequantize(), dense.weight.detach(), atol=float(scale.max()) / 2 + 1e-7, rtol=0)
    layer.double()
    assert layer.weight_scale.dtype == torch.float32 and layer._buffers["qweight"].dtype == torch.int8


def test_per_token_scales_are_per_row():
    x = torch.tensor([[1.0, -2.0], [100.0, 50.0]])
    codes, scale = quantize_per_token(x)
    assert codes.tolist() == [[64, -127], [127, 64]]
    torch.testing.assert_close(scale.squeeze(1), torch.tensor([2 / 127, 100 / 127]))


@pytest.mark.parametrize("build", [tiny_llama, tiny_gpt2])
def test_save_and_load_restore_w8a8_layers(tmp_path, build):
    import compress

    model = build()
    for name, module in list(model.named_modules()):
        if isinstance(module, torch.nn.Linear) and name != "lm_head" or type(module).__name__ == "Conv1D":
            model.set_submodule(name, Int8Linear.from_linear(module))
    tokens = torch.randint(0, 128, (2, 10))
    with torch.no_grad():
        before = model(tokens).logits
    compress.save(model, tmp_path / "w8a8")
    loaded, _, info = compress.load(tmp_path / "w8a8")
    kinds = {type(m).__name__ for m in loaded.modules()}
    assert "Int8Linear" in kinds
    with torch.no_grad():
        torch.testing.assert_close(loaded(tokens).logits, before)
    assert info.weight_bytes < sum(weight_matrix(m).numel() for m in build().modules() if isinstance(m, torch.nn.Linear) or type(m).__name__ == "Conv1D") * 4


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_runs_int_mm_and_matches_the_paper_formula():
    torch.manual_seed(0)
    dense = torch.nn.Linear(256, 128, bias=False)
    layer = Int8Linear.from_linear(dense).cuda()
    x = torch.randn(5, 256) * torch.rand(5, 1) * 10
    assert layer.kernel_name() == "int_mm"
    got = layer(x.cuda()).cpu()
    torch.testing.assert_close(got.double(), _paper_w8a8(x, dense.weight.detach()), rtol=1e-4, atol=1e-4)
