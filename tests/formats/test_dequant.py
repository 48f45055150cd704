import pytest
import torch
import torch.nn.functional as F

from compress.algorithms.quantization.grid import rtn_quantize
from compress.formats import QuantizedLinear, cpu_int4, dequant
from compress.formats.quantized_linear import KERNEL_MAX_ROWS

needs_kernel = pytest.mark.skipif(not cpu_int4.kernel_available(), reason="this PyTorch has no CPU int4 ops")


def layer(bits, group_size=64, out_features=100, in_features=576, symmetric=False):
    weight = torch.randn(out_features, in_features, generator=torch.Generator().manual_seed(bits))
    codes, scales, zeros = rtn_quantize(weight, bits, group_size, symmetric)
    return QuantizedLinear.from_codes(codes, scales, None if symmetric else zeros, bits=bits, group_size=group_size, symmetric=symmetric)


@needs_kernel
@pytest.mark.parametrize("bits", [2, 3, 4, 5, 8])
@pytest.mark.parametrize("symmetric", [False, True])
def test_prefill_dequantization_from_the_kernel_layout_is_exact(bits, symmetric):
    packed = layer(bits, group_size=128, symmetric=symmetric)  # ragged last group, rows padded to 112 for the kernel
    expected = packed.dequantize()
    with torch.no_grad():
        packed(torch.randn(1, 576))
    assert packed._kernel is not None and packed._buffers["qweight"] is None
    assert torch.equal(dequant.dense_weight(packed, torch.float32, rows=500), expected)
    x = torch.randn(KERNEL_MAX_ROWS + 1, 576)
    assert packed.kernel_for(len(x)) == "dequantize-gemm"
    with torch.no_grad():
        assert torch.allclose(packed(x), F.linear(x, expected), atol=1e-4)


@needs_kernel
def test_kernel_for_names_the_path_by_rows():
    four, eight = layer(4), layer(8)
    assert four.kernel_for(1) == "cpu-int4" and four.kernel_for(KERNEL_MAX_ROWS) == "cpu-int4"
    assert eight.kernel_for(1) == "cpu-int4x2" and eight.kernel_for(64) == "dequantize-gemm"
    assert four.kernel_for(KERNEL_MAX_ROWS + 1) == "dequantize-gemm"
    refused = layer(4, group_size=8, out_features=24, in_features=40)
    assert refused.kernel_for(1) == "dequantize-gemm"


@needs_kernel
@pytest.mark.slow
def test_compiled_dequantization_matches_eager(monkeypatch):
    monkeypatch.setenv("SCALECOMPRESS_COMPILE", "1")
    packed = layer(4, out_features=256, in_features=512, group_size=128)
    with torch.no_grad():
        packed(torch.randn(1, 512))
    assert packed.kernel_for(64) == "compiled-dequantize-gemm"
    assert torch.equal(dequant.dense_weight(packed, torch.float32, rows=64), packed.dequantize())
