"""SparseLinear: compressed-tensors' bitmask layouts, bytes that fall with sparsity, sparse + 4-bit."""

import numpy
import pytest
import torch
import torch.nn.functional as F

from compress.formats import FORMATS, QuantizedLinear, SparseLinear, build_packed
from compress.formats.sparse_linear import pack_bitmask, unpack_bitmask


def pruned_linear(out_features=32, in_features=64, pattern=None, dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    layer = torch.nn.Linear(in_features, out_features).to(dtype)
    with torch.no_grad():
        weight = layer.weight
        if pattern == "2:4":
            groups = weight.abs().reshape(out_features, -1, 4)
            drop = groups.topk(2, dim=-1, largest=False).indices
            weight.view(out_features, -1, 4).scatter_(-1, drop, 0)
        else:
            weight.masked_fill_(torch.rand_like(weight, dtype=torch.float32) < 0.5, 0)
    return layer


def test_bitmask_is_numpys_little_bit_order_as_compressed_tensors_stores_it():
    mask = torch.rand(5, 21) < 0.5
    expected = numpy.packbits(mask.numpy(), axis=-1, bitorder="little")
    assert numpy.array_equal(pack_bitmask(mask).numpy(), expected)
    assert torch.equal(unpack_bitmask(pack_bitmask(mask), 21), mask)


def test_unstructured_layout_tensors_and_values():
    dense = pruned_linear()
    layer = SparseLinear.from_linear(dense)
    mask = dense.weight != 0
    assert layer.layout == "sparse-bitmask" and FORMATS["sparse_bitmask"] is SparseLinear
    assert torch.equal(layer.compressed, dense.weight[mask])  # row-major kept values
    assert torch.equal(layer.row_offsets, torch.cumsum(mask.sum(1), 0) - mask.sum(1))
    assert layer.shape.tolist() == [32, 64]
    assert torch.equal(layer.dequantize(), dense.weight)
    x = torch.randn(3, 7, 64)
    assert torch.allclose(layer(x), dense(x), atol=1e-6)


def test_two_four_layout_is_chosen_for_two_four_weights():
    dense = pruned_linear(pattern="2:4")
    layer = SparseLinear.from_linear(dense)
    assert layer.layout == "sparse-24-bitmask" and layer.row_offsets is None
    assert layer.compressed.shape == (32, 32) and layer.shape.shape == (2, 1)
    assert torch.equal(layer.dequantize(), dense.weight)


def test_bytes_fall_with_sparsity():
    dense = pruned_linear(128, 256, dtype=torch.float16)
    dense.bias = None
    layer = SparseLinear.from_linear(dense)
    ratio = sum(t.numel() * t.element_size() for t in layer.state_dict().values()) / (128 * 256 * 2)
    density = layer.density()
    assert ratio == pytest.approx(density + 1 / 16 + 8 * 128 / (128 * 256 * 2) + 16 / (128 * 256 * 2))  # values + mask + offsets + shape
    assert ratio < 0.6


def test_sparse_plus_4bit_keeps_codes_and_scales():
    torch.manual_seed(0)
    codes = torch.randint(0, 16, (32, 128), dtype=torch.uint8)
    zeros = torch.full((32, 2), 8.0).half()
    codes.view(32, -1, 4)[..., :2] = 8  # zero point: these dequantize to exactly 0 (2:4)
    quantized = QuantizedLinear.from_codes(codes, torch.rand(32, 2).half() + 0.1, zeros, bits=4, group_size=64, bias=torch.randn(32))
    layer = SparseLinear.from_quantized(quantized)
    assert layer.layout == "sparse-24-bitmask" and layer.compressed.dtype == torch.uint8
    assert torch.equal(layer.dequantize(), quantized.dequantize())
    weight_bytes = sum(v.numel() * v.element_size() for k, v in layer.state_dict().items() if k != "bias")
    assert weight_bytes / (32 * 128 * 4) <= 0.2
    rebuilt = build_packed({"format": "sparse_bitmask", **layer.spec()})
    rebuilt.load_state_dict(layer.state_dict())
    x = torch.randn(2, 128)
    assert torch.allclose(rebuilt(x), F.linear(x, quantized.dequantize(), quantized.bias), atol=1e-5)


def test_gpt2_conv1d_is_read_as_out_by_in():
    from transformers.pytorch_utils import Conv1D

    conv = Conv1D(16, 8)  # nx=8 inputs, nf=16 outputs; weight (8, 16)
    with torch.no_grad():
        conv.weight[::2] = 0
    layer = SparseLinear.from_linear(conv)
    x = torch.randn(4, 8)
    assert torch.allclose(layer(x), conv(x), atol=1e-6)


def test_rebuilt_from_spec_and_state_dict():
    layer = SparseLinear.from_linear(pruned_linear())
    empty = build_packed({"format": "sparse_bitmask", **layer.spec()})
    assert {k: (v.shape, v.dtype) for k, v in empty.state_dict().items()} == {k: (v.shape, v.dtype) for k, v in layer.state_dict().items()}
    empty.load_state_dict(layer.state_dict())
    assert torch.equal(empty.dequantize(), layer.dequantize())


def test_a_dense_weight_is_refused_as_two_four():
    with pytest.raises(Exception, match="not 2:4 sparse"):
        SparseLinear.from_linear(torch.nn.Linear(8, 4), layout="sparse-24-bitmask")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_two_four_runs_the_semi_structured_kernel():
    dense = pruned_linear(128, 128, pattern="2:4", dtype=torch.float16).cuda()
    layer = SparseLinear.from_linear(dense)
    x = torch.randn(64, 128, device="cuda", dtype=torch.float16)
    y = layer(x)
    assert layer._semi_structured is not None
    assert torch.allclose(y.float(), dense(x).float(), atol=2e-2, rtol=1e-2)
