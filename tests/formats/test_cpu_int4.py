import os
import subprocess
import sys

import pytest
import torch

from compress.formats import cpu_int4

needs_kernel = pytest.mark.skipif(not cpu_int4.kernel_available(), reason="this PyTorch has no CPU int4 ops")


@pytest.mark.parametrize(
    ("in_features", "group_size", "expected"),
    [(4096, 128, 128), (576, 128, 64), (576, None, 64), (1024, None, 256), (768, 256, 256), (96, 48, None), (100, 128, None), (64, 16, None)],
)
def test_kernel_group_size(in_features, group_size, expected):
    assert cpu_int4.kernel_group_size(in_features, group_size) == expected


@pytest.mark.parametrize(("style", "block"), [("lanes4", 64), ("lanes2", 32), ("pairs", 32), ("pairs", 16)])
@pytest.mark.parametrize("rows", [16, 48, 64, 112, 160])
def test_every_known_layout_unpacks_what_it_packs(style, block, rows):
    codes = torch.randint(0, 16, (rows, 96), dtype=torch.uint8)
    packed = cpu_int4._pack(codes, style, block)
    assert packed.shape == (rows, 48)
    assert torch.equal(cpu_int4._unpack(packed, rows, 96, style, block), codes)


@needs_kernel
@pytest.mark.parametrize("rows", [16, 48, 64, 112, 1040])
def test_kernel_layout_is_identified_and_undone(rows):
    assert cpu_int4.kernel_layout() is not None
    codes = torch.randint(0, 16, (rows, 128), dtype=torch.uint8)
    packed = cpu_int4.to_kernel_layout(codes)
    assert packed.numel() == rows * 64  # still 4 bits per weight
    assert torch.equal(cpu_int4.from_kernel_layout(packed, rows, 128), codes)


@needs_kernel
def test_kernel_computes_q_minus_8_times_scale_plus_zero():
    codes = torch.randint(0, 16, (32, 64), dtype=torch.uint8)
    table = torch.zeros(2, 32, 2)
    table[..., 0], table[..., 1] = 0.5, 1.0
    y = cpu_int4.int4_matmul(torch.eye(64, dtype=torch.bfloat16), cpu_int4.to_kernel_layout(codes), 32, table.bfloat16())
    assert torch.equal(y.float().t(), (codes.float() - 8) * 0.5 + 1.0)


@needs_kernel
def test_generic_build_layout_is_identified_in_a_fresh_process():
    # The layout depends on the CPU capability; force the portable build's one.
    script = (
        "import torch; from compress.formats import cpu_int4 as k;"
        "c = torch.randint(0, 16, (80, 64), dtype=torch.uint8);"
        "assert torch.equal(k.from_kernel_layout(k.to_kernel_layout(c), 80, 64), c);"
        "print(k.kernel_layout())"
    )
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default"}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "('pairs', 32)"
