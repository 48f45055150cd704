import pytest
import torch

from compress.errors import ScaleCompressError
from compress.formats.packing import pack_codes, packed_columns, unpack_codes


@pytest.mark.parametrize("bits", range(2, 9))
@pytest.mark.parametrize("columns", [1, 3, 8, 13, 64, 100])
def test_round_trip_is_exact_for_every_bit_width(bits, columns):
    generator = torch.Generator().manual_seed(bits * 1000 + columns)
    codes = torch.randint(0, 2**bits, (7, columns), dtype=torch.uint8, generator=generator)
    packed = pack_codes(codes, bits)
    assert packed.dtype == torch.uint8
    assert packed.shape == (7, packed_columns(columns, bits))
    assert torch.equal(unpack_codes(packed, bits, columns), codes)


@pytest.mark.parametrize(("bits", "bytes_per_64"), [(2, 16), (3, 24), (4, 32), (5, 64), (6, 64), (7, 64), (8, 64)])
def test_packed_sizes(bits, bytes_per_64):
    # 2-bit: 4 per byte; 3-bit: 8 codes in 3 bytes; 4-bit: 2 per byte; 5..8: one byte each
    assert packed_columns(64, bits) == bytes_per_64
    assert pack_codes(torch.zeros(2, 64, dtype=torch.uint8), bits).numel() == 2 * bytes_per_64


def test_bit_order_is_little_endian():
    assert pack_codes(torch.tensor([[0x1, 0xF]], dtype=torch.uint8), 4).item() == 0xF1
    assert pack_codes(torch.tensor([[1, 2, 3, 0]], dtype=torch.uint8), 2).item() == 0b00111001
    three = pack_codes(torch.tensor([[7, 0, 0, 0, 0, 0, 0, 5]], dtype=torch.uint8), 3)
    assert three.tolist() == [[7, 0, 5 << 5]]


def test_batched_leading_dimensions():
    codes = torch.randint(0, 8, (2, 3, 16), dtype=torch.uint8)
    assert torch.equal(unpack_codes(pack_codes(codes, 3), 3, 16), codes)


def test_rejects_codes_that_do_not_fit_and_wrong_widths():
    with pytest.raises(ScaleCompressError, match="does not fit in 3 bits"):
        pack_codes(torch.tensor([[8]], dtype=torch.uint8), 3)
    with pytest.raises(ScaleCompressError, match="supported bit-widths"):
        packed_columns(8, 1)
    with pytest.raises(ScaleCompressError, match="need"):
        unpack_codes(torch.zeros(1, 5, dtype=torch.uint8), 4, 8)
