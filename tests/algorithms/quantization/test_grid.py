import pytest
import torch

from compress.algorithms.quantization.grid import (
    dequantize,
    find_params,
    grid_params,
    group_count,
    quantize,
    rtn_quantize,
)


def gaussian(out_features=256, in_features=1024, seed=0):
    return torch.randn(out_features, in_features, generator=torch.Generator().manual_seed(seed))


def relative_error(weight, bits, group_size, symmetric=False):
    codes, scales, zeros = rtn_quantize(weight, bits, group_size, symmetric)
    restored = dequantize(codes, scales, None if symmetric else zeros, group_size, bits)
    return float((restored - weight).norm() / weight.norm())


@pytest.mark.parametrize("group_size", [None, 128])
@pytest.mark.parametrize("symmetric", [False, True])
def test_8_bit_error_under_1_percent(group_size, symmetric):
    assert relative_error(gaussian(), 8, group_size, symmetric) < 0.01


@pytest.mark.parametrize("symmetric", [False, True])
def test_4_bit_g128_error_under_12_percent(symmetric):
    assert relative_error(gaussian(), 4, 128, symmetric) < 0.12


def test_error_shrinks_with_bits_and_smaller_groups():
    weight = gaussian(64, 512)
    by_bits = [relative_error(weight, bits, 64) for bits in range(2, 9)]
    assert by_bits == sorted(by_bits, reverse=True)
    assert relative_error(weight, 4, 32) < relative_error(weight, 4, 128) < relative_error(weight, 4, None)


@pytest.mark.parametrize("bits", range(2, 9))
def test_codes_scales_zeros_types_and_ranges(bits):
    codes, scales, zeros = rtn_quantize(gaussian(32, 256), bits, 64)
    assert codes.dtype == torch.uint8 and codes.shape == (32, 256) and int(codes.max()) < 2**bits
    assert scales.dtype == zeros.dtype == torch.float16 and scales.shape == zeros.shape == (32, 4)
    assert bool((scales > 0).all()) and torch.equal(zeros, zeros.round()) and int(zeros.max()) < 2**bits


def test_zero_is_exact_and_zero_rows_stay_zero():
    weight = gaussian(4, 64)
    weight[0] = 0
    weight[1, ::2] = 0
    for symmetric in (False, True):
        codes, scales, zeros = rtn_quantize(weight, 3, 32, symmetric)
        restored = dequantize(codes, scales, None if symmetric else zeros, 32, 3)
        assert bool((restored[weight == 0] == 0).all())


def test_symmetric_zero_point_is_the_midpoint():
    _, _, zeros = rtn_quantize(gaussian(4, 64), 4, None, symmetric=True)
    assert bool((zeros == 8).all())


def test_ragged_last_group_uses_its_own_columns():
    weight = gaussian(8, 200)
    scales, zeros = grid_params(weight, 4, 64, symmetric=False)
    assert group_count(200, 64) == 4 and scales.shape == (8, 4)
    tail_scales, tail_zeros = find_params(weight[:, 192:], 4, symmetric=False)
    assert torch.equal(scales[:, 3], tail_scales) and torch.equal(zeros[:, 3], tail_zeros)
    codes = quantize(weight, scales, zeros, 4, 64)
    assert codes.shape == (8, 200)


def test_codes_are_nearest_for_the_stored_fp16_scales():
    weight = gaussian(16, 128)
    codes, scales, zeros = rtn_quantize(weight, 4, 128)
    restored = dequantize(codes, scales, zeros, 128, 4)
    step = scales.float()
    inside = (codes > 0) & (codes < 15)  # unclipped codes are within half a step
    assert bool(((restored - weight).abs() <= step / 2 + 1e-6)[inside].all())
