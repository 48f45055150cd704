import pytest
import torch
import torch.nn.functional as F

from compress.algorithms.quantization.grid import rtn_quantize
from compress.formats import QuantizedLinear, cpu_int4, native_kernels
from compress.formats.quantized_linear import KERNEL_MAX_ROWS, NATIVE_DECODE_MAX_ROWS, NATIVE_DECODE_MAX_ROWS_SPLIT

needs_kernels = pytest.mark.skipif(not (cpu_int4.kernel_available() and cpu_int4.kernel_layout() and native_kernels.available()),
                                   reason="no CPU int4 ops, or the prefill kernel cannot be built here")


def layer(bits, group_size=64, out_features=100, in_features=576, symmetric=False, bias=False):
    generator = torch.Generator().manual_seed(bits)
    weight = torch.randn(out_features, in_features, generator=generator)
    codes, scales, zeros = rtn_quantize(weight, bits, group_size, symmetric)
    return QuantizedLinear.from_codes(codes, scales, None if symmetric else zeros, bits=bits, group_size=group_size, symmetric=symmetric,
                                      bias=torch.randn(out_features, generator=generator) if bias else None)


@needs_kernels
@pytest.mark.parametrize("bits", [2, 3, 4, 5, 8])
@pytest.mark.parametrize("symmetric", [False, True])
def test_prefill_computes_with_the_exact_dequantized_weight(bits, symmetric):
    # out 100: full blocks of the layout, a tail packed in pairs and padding rows; in 576 with
    # group 128: a ragged last group of 64
    packed = layer(bits, group_size=128, symmetric=symmetric, bias=True)
    expected = packed.dequantize()
    x = torch.randn(3, 40, 576)
    with torch.no_grad():
        packed(x[0, :1])  # converts to the kernel layout and gives the portable bytes back
        assert packed._kernel is not None and packed._buffers["qweight"] is None
        assert packed.kernel_for(120) == "packed-prefill"
        y = packed(x)
    assert y.shape == (3, 40, 100)
    assert torch.allclose(y, F.linear(x, expected, packed.bias), atol=1e-4, rtol=1e-5)


@needs_kernels
@pytest.mark.parametrize("out_features", [16, 48, 200, 1040])  # one block, a tail only, several tiles, many tiles
def test_prefill_covers_every_tile_shape(out_features):
    packed = layer(4, group_size=32, out_features=out_features, in_features=96)
    x = torch.randn(NATIVE_DECODE_MAX_ROWS + 1, 96)
    with torch.no_grad():
        assert torch.allclose(packed(x), F.linear(x, packed.dequantize()), atol=1e-4)


@needs_kernels
def test_prefill_keeps_the_activation_dtype():
    packed = layer(4)
    x = torch.randn(64, 576).bfloat16()
    with torch.no_grad():
        y = packed(x)
    assert y.dtype == torch.bfloat16
    assert torch.allclose(y.float(), F.linear(x.float(), packed.dequantize()), atol=0.1, rtol=0.02)


def q8_0(x: torch.Tensor) -> torch.Tensor:
    """llama.cpp's Q8_0 activations, dequantized: per 32 inputs d = max|x| / 127, x^ = d * round(x / d)."""
    blocks = x.reshape(*x.shape[:-1], -1, 32)
    d = blocks.abs().amax(-1, keepdim=True) / 127
    return (torch.round(blocks / torch.where(d > 0, d, 1)) * d).reshape(x.shape)


@needs_kernels
@pytest.mark.parametrize("bits", [2, 3, 4, 5, 8])
@pytest.mark.parametrize("symmetric", [False, True])
def test_decode_kernel_is_the_exact_product_with_int8_activations(bits, symmetric):
    # out 100: full blocks, a tail in pairs and padding rows; in 576, group 128: a ragged last group
    packed = layer(bits, group_size=128, symmetric=symmetric, bias=True)
    expected = packed.dequantize()
    decodes = native_kernels.decodes(cpu_int4.kernel_layout())
    most = (NATIVE_DECODE_MAX_ROWS if bits <= 4 else NATIVE_DECODE_MAX_ROWS_SPLIT) if decodes else 0
    x = torch.randn(most or 1, 576) * torch.linspace(0.01, 30, 576)  # blocks of very different scales
    x[0, 64:96] = 0  # an all-zero block: d = 0
    with torch.no_grad():
        for rows in sorted({1, 3, most} - {0}):
            y = packed(x[:rows])
            if rows <= most:  # fp32 sums of codes x inputs: rounding relative to the output's scale
                reference = F.linear(q8_0(x[:rows]), expected, packed.bias)
                assert torch.allclose(y, reference, atol=1e-5 * float(reference.abs().max()) + 1e-4, rtol=1e-5)
                exact = F.linear(x[:rows], expected, packed.bias)  # and within int8's error of the exact product
                assert (y - exact).norm() <= 0.01 * exact.norm()
        y16 = packed(x[:1].bfloat16())
    assert y16.dtype == torch.bfloat16
    assert packed._kernel.native_decode_rows == most
    assert packed.kernel_for(most or 1) == ("packed-decode" if decodes else "cpu-int4" if bits <= 4 else "cpu-int4x2")
    assert packed.kernel_for(most + 1) == "packed-prefill" or not decodes


@needs_kernels
@pytest.mark.parametrize("group_size", [32, 64, 256, None])
def test_decode_kernel_sums_every_group_width(group_size):
    packed = layer(4, group_size=group_size, out_features=64, in_features=256)
    x = torch.randn(1, 256)
    with torch.no_grad():
        y = packed(x)
    assert packed.kernel_for(1) in ("packed-decode", "cpu-int4")
    if packed.kernel_for(1) == "packed-decode":
        reference = F.linear(q8_0(x), packed.dequantize())
        assert torch.allclose(y, reference, atol=1e-5 * float(reference.abs().max()) + 1e-4, rtol=1e-5)


@needs_kernels
def test_kernel_for_names_the_path_by_rows():
    four, eight = layer(4), layer(8)
    if native_kernels.decodes(cpu_int4.kernel_layout()):
        assert four.kernel_for(1) == four.kernel_for(NATIVE_DECODE_MAX_ROWS) == eight.kernel_for(NATIVE_DECODE_MAX_ROWS_SPLIT) == "packed-decode"
        assert four.kernel_for(NATIVE_DECODE_MAX_ROWS + 1) == eight.kernel_for(NATIVE_DECODE_MAX_ROWS_SPLIT + 1) == "packed-prefill"
    else:  # the int4 op for few rows
        assert four.kernel_for(1) == "cpu-int4" and eight.kernel_for(1) == "cpu-int4x2"
    assert four.kernel_for(64) == eight.kernel_for(64) == "packed-prefill"
    refused = layer(4, group_size=8, out_features=24, in_features=40)  # no kernel group size divides 40
    assert refused.kernel_for(1) == refused.kernel_for(100) == "dequantize-gemm"


@needs_kernels
def test_switched_off_the_layer_dequantizes_and_stays_exact(monkeypatch):
    monkeypatch.setenv("SCALECOMPRESS_COMPILE", "0")
    packed = layer(4)
    x = torch.randn(KERNEL_MAX_ROWS + 1, 576)
    assert packed.kernel_for(len(x)) == "dequantize-gemm" and packed.kernel_for(1) == packed.kernel_for(KERNEL_MAX_ROWS) == "cpu-int4"
    with torch.no_grad():
        assert torch.allclose(packed(x), F.linear(x, packed.dequantize()), atol=1e-4)


def test_a_failed_build_warns_once_and_the_layer_falls_back(monkeypatch, tmp_path):
    monkeypatch.setenv("CXX", "false")  # a "compiler" that always fails
    monkeypatch.setenv("SCALECOMPRESS_CACHE", str(tmp_path))
    native_kernels._library.cache_clear()
    try:
        with pytest.warns(UserWarning, match="native kernels for packed layers unavailable: false failed"):
            assert not native_kernels.available()
        packed = layer(4)
        x = torch.randn(KERNEL_MAX_ROWS + 1, 576)
        with torch.no_grad():
            assert torch.allclose(packed(x), F.linear(x, packed.dequantize()), atol=1e-4)
        assert not list(tmp_path.glob("kernels/*.so"))  # nothing half-built left in the cache
    finally:
        native_kernels._library.cache_clear()


@needs_kernels
def test_compiled_graphs_hold_the_kernels_as_one_op_without_breaks():
    packed = layer(4, group_size=128, bias=True)
    model = torch.nn.Sequential(packed, torch.nn.ReLU())
    x = {rows: torch.randn(rows, 576) for rows in (1, 40)}  # our decode kernel, then the prefill kernel
    with torch.inference_mode():
        expected = {rows: model(value) for rows, value in x.items()}  # (the first call converts the layout)
        fresh = layer(4, group_size=128, bias=True)  # a compiled model converts on its first call too
        assert torch.allclose(torch.compile(fresh, backend="aot_eager")(x[1]), F.linear(q8_0(x[1]), fresh.dequantize(), fresh.bias), atol=1e-4)
        compiled = torch.compile(model, fullgraph=True, backend="aot_eager")  # fullgraph: a graph break is an error
        for rows, value in x.items():
            assert torch.allclose(compiled(value), expected[rows], atol=1e-5)


@pytest.mark.skipif(not native_kernels.available(), reason="the kernels cannot be built here")
@pytest.mark.parametrize("layout", [("lanes2", 32), ("lanes4", 64), ("pairs", 32)])  # AVX2's, AVX-512's, the generic build's
@pytest.mark.parametrize("bits", [3, 4, 8])
def test_both_kernels_read_every_known_layout(layout, bits):
    # the layout is packed here in Python, so an AVX2 machine checks the AVX-512 one too; 112 rows:
    # full blocks and a tail of pairs
    from compress.formats import kernel_weight
    from compress.formats.affine import dequantize_codes

    generator = torch.Generator().manual_seed(bits)
    codes = torch.randint(0, 2**bits, (112, 256), dtype=torch.uint8, generator=generator)
    scales = (torch.rand(112, 2, generator=generator) * 0.1 + 0.01).half()
    zeros = torch.randint(0, 2**bits, (112, 2), generator=generator).half()
    nibbled = kernel_weight.nibbles(codes, zeros, bits, 128)
    packed = cpu_int4._pack(nibbled, *layout)
    bound = native_kernels.bind(packed, 112, nibbled.shape[1], scales, zeros if bits >= 4 else None, 8.0 if bits < 4 else float(2 ** (bits - 1)),
                                128, 256, 112, layout)
    weight = dequantize_codes(codes, scales, zeros, 128, bits, torch.float32)
    x = torch.randn(3, 256, generator=generator)
    assert torch.allclose(native_kernels.prefill(x, bound), F.linear(x, weight), atol=1e-4, rtol=1e-5)
    reference = F.linear(q8_0(x), weight)
    assert torch.allclose(native_kernels.decode(x, bound), reference, atol=1e-5 * float(reference.abs().max()) + 1e-4, rtol=1e-5)
    assert native_kernels.decodes(layout) == (layout[0] != "pairs")
