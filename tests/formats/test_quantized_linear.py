import pytest
import torch
import torch.nn.functional as F

from compress.formats import FORMATS, QuantizedLinear, build_packed, cpu_int4
from compress.formats.quantized_linear import KERNEL_MAX_ROWS
from compress.algorithms.quantization.grid import dequantize, rtn_quantize

needs_kernel = pytest.mark.skipif(not cpu_int4.kernel_available(), reason="this PyTorch has no CPU int4 ops")


def make_layer(bits=4, group_size=128, symmetric=False, out_features=64, in_features=256, bias=True, dtype=torch.float32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(out_features, in_features, generator=generator)
    codes, scales, zeros = rtn_quantize(weight, bits, group_size, symmetric)
    bias_tensor = torch.randn(out_features, generator=generator).to(dtype) if bias else None
    layer = QuantizedLinear.from_codes(codes, scales, None if symmetric else zeros, bits=bits, group_size=group_size, symmetric=symmetric, bias=bias_tensor)
    return layer, weight, codes


def relative(a, b):
    a, b = a.detach().float(), b.detach().float()
    return float((a - b).norm() / b.norm())


def test_registered_and_rebuilt_from_spec():
    layer, _, codes = make_layer(bits=3, group_size=64)
    assert FORMATS["packed_int"] is QuantizedLinear
    empty = build_packed({"format": "packed_int", **layer.spec()})
    assert {k: (v.shape, v.dtype) for k, v in empty.state_dict().items()} == {k: (v.shape, v.dtype) for k, v in layer.state_dict().items()}
    empty.load_state_dict(layer.state_dict())
    assert torch.equal(empty.codes(), codes)


@pytest.mark.parametrize("bits", range(2, 9))
@pytest.mark.parametrize("symmetric", [False, True])
def test_dequantize_is_dense_out_by_in_and_matches_the_grid(bits, symmetric):
    layer, _, codes = make_layer(bits=bits, symmetric=symmetric, out_features=48, in_features=200)  # ragged last group
    dense = layer.dequantize()
    assert dense.shape == (48, 200) and dense.dtype == torch.float32
    expected = dequantize(codes, layer.scales, layer.zeros, 128, bits)
    assert torch.equal(dense, expected)
    assert layer.dequantize(torch.bfloat16).dtype == torch.bfloat16


@pytest.mark.parametrize("bits", range(2, 9))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("native", [True, False], ids=["our-kernels", "int4-op"])
def test_forward_matches_dense_matmul_of_the_dequantized_weight(bits, dtype, native, monkeypatch):
    if not native:  # PyTorch's int4 op for few rows, dequantize + F.linear for many
        monkeypatch.setenv("SCALECOMPRESS_COMPILE", "0")
    layer, _, _ = make_layer(bits=bits, group_size=64, in_features=576)
    layer.to(dtype)
    reference = lambda x: F.linear(x.float(), layer.dequantize(), layer.bias.float())
    with torch.no_grad():
        decode = torch.randn(2, 1, 576).to(dtype)  # few rows: kernel path on CPU
        prefill = torch.randn(2, KERNEL_MAX_ROWS, 576).to(dtype)  # many rows: dequantize path
        y_decode, y_prefill = layer(decode), layer(prefill)
    assert (layer._kernel is not None) == cpu_int4.kernel_available()
    assert y_decode.shape == (2, 1, 64) and y_decode.dtype == dtype
    assert y_prefill.shape == (2, KERNEL_MAX_ROWS, 64) and y_prefill.dtype == dtype
    # bf16 (int4 op) or int8 (our decode kernel) activations: errors of their rounding, not of the weight
    assert relative(y_decode, reference(decode)) < 0.01
    assert relative(y_prefill, reference(prefill)) < (1e-5 if dtype == torch.float32 else 0.01)


@needs_kernel
@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_kernel_replaces_the_portable_buffer_and_state_dict_rebuilds_it(bits):
    layer, _, codes = make_layer(bits=bits)
    saved = {k: v.clone() for k, v in layer.state_dict().items()}
    with torch.no_grad():
        layer(torch.randn(1, 256))
    assert layer._buffers["qweight"] is None  # one packed copy in RAM
    assert layer.memory_bytes() < 64 * 256 * 1.2  # no dense copy: well under 2 bytes per weight
    state = layer.state_dict()
    assert state.keys() == saved.keys()
    assert all(torch.equal(state[k], saved[k]) for k in saved)
    assert torch.equal(layer.codes(), codes)


def test_state_dict_and_reload_give_identical_outputs():
    layer, _, _ = make_layer(bits=4)
    x = torch.randn(3, 256)
    with torch.no_grad():
        before = layer(x)
        other = QuantizedLinear.from_spec(layer.spec())
        other.load_state_dict(layer.state_dict())
        assert torch.equal(other(x), before)
        # loading into a layer that already converted to the kernel layout
        other.load_state_dict(make_layer(bits=4, seed=1)[0].state_dict())
        assert not torch.equal(other(x), before)


def test_dtype_moves_keep_scales_fp16_and_cast_the_bias():
    layer, _, _ = make_layer(bits=4)
    scales = layer.scales.clone()
    with torch.no_grad():
        layer(torch.randn(1, 256))
    layer.to(torch.bfloat16)
    assert layer.scales.dtype == torch.float16 and torch.equal(layer.scales, scales)
    assert layer.zeros.dtype == torch.float16 and layer.bias.dtype == torch.bfloat16
    assert layer.qweight is not None and layer.qweight.dtype == torch.uint8
    layer.half()
    assert torch.equal(layer.scales, scales)


def test_shapes_the_kernel_refuses_fall_back_to_dequantize():
    layer, _, _ = make_layer(bits=4, group_size=8, out_features=24, in_features=40, bias=False)
    x = torch.randn(5, 40)
    with torch.no_grad():
        y = layer(x)
    assert layer._kernel is None
    assert relative(y, F.linear(x, layer.dequantize())) < 1e-6


def test_gradients_flow_to_the_input():
    layer, _, _ = make_layer(bits=4)
    x = torch.randn(2, 256, requires_grad=True)
    layer(x).sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape


def test_bytes_are_packed_sizes():
    for bits, per_row in [(2, 64), (3, 96), (4, 128), (8, 256)]:
        layer, _, _ = make_layer(bits=bits, bias=False)
        assert layer.qweight.shape == (64, per_row)
        sizes = {k: v.numel() * v.element_size() for k, v in layer.state_dict().items()}
        assert sizes == {"qweight": 64 * per_row, "scales": 64 * 2 * 2, "zeros": 64 * 2 * 2}


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_dequantizes_on_the_fly():
    layer, _, _ = make_layer(bits=4)
    with torch.no_grad():
        layer(torch.randn(1, 256))  # converted to the CPU kernel layout first
        layer.to("cuda", torch.float16)
        x = torch.randn(3, 256, device="cuda", dtype=torch.float16)
        y = layer(x)
    assert y.device.type == "cuda" and y.dtype == torch.float16
    assert layer.scales.dtype == torch.float16 and layer._kernel is None
    reference = F.linear(x.float(), layer.dequantize().to("cuda"), layer.bias.float())
    assert relative(y, reference) < 0.01
