"""Our C++ kernels for packed weights held in the CPU int4 layout (`kernels/packed_matmul.cpp`).

`prefill`: many token rows times the weight, in fp32. PyTorch's int4 kernel
(`compress.formats.cpu_int4`) is made for decoding: on a 96-token prefill it computes ~2x slower
than fp32 GEMM, and dequantizing the whole weight first (one write of the dense weight per call)
costs about as much as the GEMM itself. This kernel dequantizes one tile of output rows at a time
into a buffer that stays in cache and multiplies it with the BLAS `sgemm` PyTorch uses, so the
dense weight never exists and the GEMM runs at BLAS speed. Values are exact: `(code - zero) *
scale` with the stored fp16 scales and zeros, the same numbers as `QuantizedLinear.dequantize()`.

`decode`: a few token rows straight from the codes (AVX2; the layout's blocks of 32 or 64 rows).
The activations are quantized to int8 per 32 inputs as llama.cpp does for its Q4_0/Q8_0 dot
products (d = max|x| / 127, q = round(x / d)), codes times q are summed in integers (vpmaddubsw,
four input columns per step) and the exact fp16 scale and zero are applied once per group. The
result is the exact product with the dequantized activations d * q, within 2^-8 of each block's
largest input: as close as the int4 op's bf16 activations. At one row it runs 2x as fast as the
int4 op, and up to 32 rows it beats both the op and the prefill kernel at 2-4 bits (8 at 5-8
bits), so layers use it there
(benchmarks/decode_speed.py --crossover).

Both are plain C++ (no PyTorch headers), built on first use with the system compiler in about a
second, cached in the cache directory under a key of its source, the compiler, PyTorch and the
CPU, and called through ctypes; threads come from PyTorch's own OpenMP runtime. Where they cannot
be built (no compiler, no exported `sgemm_`) one warning says so and layers fall back to the
int4 op and dequantize + `F.linear` (correct, slower). `SCALECOMPRESS_COMPILE=0` turns them off.

    >>> import torch
    >>> from compress.formats.quantized_linear import QuantizedLinear
    >>> layer = QuantizedLinear.from_codes(torch.randint(0, 16, (64, 128), dtype=torch.uint8),
    ...     torch.full((64, 1), 0.5).half(), torch.full((64, 1), 8.0).half(), bits=4, group_size=None)
    >>> x = torch.randn(40, 128)
    >>> y = layer(x)  # 40 rows: the prefill kernel where it builds, else dequantize + F.linear
    >>> torch.allclose(y, torch.nn.functional.linear(x, layer.dequantize()), atol=1e-4)
    True
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

SOURCE = Path(__file__).with_name("kernels") / "packed_matmul.cpp"
TILE_FLOATS = 1 << 16  # dequantized floats per tile (256 KB): stays in L2 while sgemm reads it

_I64, _PTR = ctypes.c_int64, ctypes.c_void_p


class _PackedWeight(ctypes.Structure):
    """The C side's `PackedWeight`: a layer's fixed arguments, passed by address."""
    _fields_ = [("packed", _PTR), ("rows", _I64), ("columns", _I64), ("block", _I64), ("half", _I64), ("scales", _PTR), ("zeros", _PTR),
                ("groups", _I64), ("default_zero", ctypes.c_double), ("group", _I64), ("in_features", _I64), ("out_features", _I64)]


def enabled() -> bool:
    """Whether the kernels may be used in this process (they may still fail to build)."""
    return os.environ.get("SCALECOMPRESS_COMPILE", "1") != "0"


def available() -> bool:
    """Whether the kernels are built (building them now if needed) and usable."""
    return enabled() and _library() is not None


@dataclass(frozen=True)
class Bound:
    """A weight's fixed arguments for both kernels, bound once per layer (`bind`)."""
    weight: _PackedWeight
    address: int  # of `weight`, what the kernels take
    in_features: int
    out_features: int
    keep: tuple  # the tensors the pointers point into: alive as long as this is


def bind(packed: torch.Tensor, rows: int, columns: int, scales: torch.Tensor, zeros: torch.Tensor | None, default_zero: float,
         group: int, in_features: int, out_features: int, layout: tuple[str, int]) -> Bound:
    """Bind a kernel-layout weight (`packed`, rows x columns nibbles) with its fp16 `scales` and
    `zeros` (None: every code's zero is `default_zero`); `group` is the quantization group size
    along the inputs (the last group may be ragged)."""
    style, block = layout
    scales = scales.to(torch.float16).contiguous()
    zeros = zeros.to(torch.float16).contiguous() if zeros is not None else None
    weight = _PackedWeight(packed.data_ptr(), rows, columns, block, int(style != "pairs"), scales.data_ptr(),
                           zeros.data_ptr() if zeros is not None else None, scales.shape[1], default_zero, group, in_features, out_features)
    bound = Bound(weight, ctypes.addressof(weight), in_features, out_features, (packed, scales, zeros))
    _BOUND[bound.address] = bound  # what the compiled graph's op finds it by
    return bound


def prefill(x: torch.Tensor, weight: Bound) -> torch.Tensor:
    """`x` (..., K) fp32 contiguous times the bound weight -> (..., out_features) fp32."""
    if torch.compiler.is_compiling():
        return torch.ops.scalecompress.packed_matmul(x, weight.address, weight.out_features, False)
    library = _library()
    return _call(library.prefill, x, weight, TILE_FLOATS, torch.get_num_threads(), library.sgemm)


def decode(x: torch.Tensor, weight: Bound) -> torch.Tensor:
    """The same product for a few rows, from the codes directly (see `decodes`), with the
    activations quantized to int8 per 32 inputs (llama.cpp's Q8_0)."""
    if torch.compiler.is_compiling():
        return torch.ops.scalecompress.packed_matmul(x, weight.address, weight.out_features, True)
    return _call(_library().decode, x, weight, torch.get_num_threads())


# Under torch.compile both kernels are one opaque op of the graph (a ctypes call would break the
# graph at every layer): `scalecompress::packed_matmul`, found by the address `bind` registers. A
# bare dispatcher kernel (~8 us a call) rather than torch.library.custom_op (~25 us); eager calls
# skip the dispatcher altogether.
_BOUND: weakref.WeakValueDictionary[int, Bound] = weakref.WeakValueDictionary()
_OPS = torch.library.Library("scalecompress", "DEF")
_OPS.define("packed_matmul(Tensor x, int address, int out_features, bool decoding) -> Tensor")
_OPS.impl("packed_matmul", lambda x, address, out_features, decoding: (decode if decoding else prefill)(x, _BOUND[address]), "CPU")


@torch.library.register_fake("scalecompress::packed_matmul")
def _(x: torch.Tensor, address: int, out_features: int, decoding: bool) -> torch.Tensor:
    return x.new_empty(x.shape[:-1] + (out_features,))


def _call(function, x: torch.Tensor, weight: Bound, *tail) -> torch.Tensor:
    y = torch.empty(x.shape[:-1] + (weight.out_features,))
    if function(x.data_ptr(), x.numel() // weight.in_features, weight.address, y.data_ptr(), *tail):
        raise ValueError(f"packed kernel refused a weight of {weight.weight.columns} columns for {weight.in_features} inputs")
    return y


def decodes(layout: tuple[str, int] | None) -> bool:
    """Whether `decode` has its vectorised loop for this layout (else it would run scalar)."""
    library = _library() if enabled() else None
    return library is not None and library.decode_vectorised and layout is not None and layout[0] != "pairs" and layout[1] in (32, 64)


@dataclass(frozen=True)
class _Library:
    prefill: Any
    decode: Any
    decode_vectorised: bool  # the decode loop has its AVX2 path ("half" layouts of 32 and 64 rows)
    sgemm: ctypes.c_void_p


@functools.cache
def _library() -> _Library | None:
    """The built kernels and the address of BLAS sgemm_, or None, warning once why not."""
    try:
        sgemm = ctypes.cast(ctypes.CDLL(str(_torch_lib() / "libtorch_cpu.so")).sgemm_, ctypes.c_void_p)
    except (OSError, AttributeError):
        return _refuse("this PyTorch exports no BLAS sgemm_")
    compiler = shutil.which(os.environ.get("CXX", "c++")) or shutil.which("g++")
    if compiler is None:
        return _refuse("no C++ compiler (set CXX or install g++)")
    try:
        library = ctypes.CDLL(str(_build(compiler)))
    except subprocess.CalledProcessError as error:
        lines = (error.stderr or "").strip().splitlines()
        return _refuse(f"{Path(compiler).name} failed: {lines[-1] if lines else f'exit {error.returncode}'}")
    except OSError as error:
        return _refuse(f"loading it failed: {error}")
    prefill_function, decode_function = library.scalecompress_packed_prefill, library.scalecompress_packed_gemv
    prefill_function.restype, prefill_function.argtypes = ctypes.c_int, [_PTR, _I64, _PTR, _PTR, _I64, ctypes.c_int, _PTR]
    decode_function.restype, decode_function.argtypes = ctypes.c_int, [_PTR, _I64, _PTR, _PTR, ctypes.c_int]
    library.scalecompress_gemv_vectorised.restype = ctypes.c_int
    return _Library(prefill_function, decode_function, bool(library.scalecompress_gemv_vectorised()), sgemm)


def _refuse(why: str):
    warnings.warn(f"native kernels for packed layers unavailable: {why}; prefill dequantizes each layer instead (correct, slower)", stacklevel=3)
    return None


def _torch_lib() -> Path:
    return Path(torch.__file__).parent / "lib"


def _openmp() -> list[str]:
    """Link PyTorch's own OpenMP runtime (one thread pool in the process), or none at all."""
    runtimes = sorted(_torch_lib().glob("libgomp*.so*"))
    if not runtimes:
        return []
    return ["-fopenmp", f"-L{_torch_lib()}", f"-Wl,-rpath,{_torch_lib()}", f"-l:{runtimes[0].name}"]


def _build(compiler: str) -> Path:
    """The shared library, compiled once per (source, compiler, PyTorch, CPU) into the cache."""
    from compress.cache import cache_dir

    flags = ["-O3", "-march=native", "-shared", "-fPIC", "-std=c++17", *_openmp()]
    key = hashlib.sha256("\n".join([SOURCE.read_text(), compiler, " ".join(flags), torch.__version__, _cpu()]).encode()).hexdigest()[:16]
    target = cache_dir("kernels") / f"packed_matmul-{key}.so"
    if target.is_file():
        return target
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as scratch:
        built = Path(scratch) / target.name
        subprocess.run([compiler, *flags[:4], str(SOURCE), "-o", str(built), *flags[4:]], check=True, capture_output=True, text=True)
        os.replace(built, target)  # atomic: a concurrent build or a kill leaves a whole file or none
    return target


def _cpu() -> str:
    """What -march=native depends on: the CPU model and its flags."""
    try:
        text = Path("/proc/cpuinfo").read_text()
        wanted = [line for line in text.splitlines() if line.startswith(("model name", "flags", "Features"))][:2]
        return platform.machine() + "\n" + "\n".join(wanted)
    except OSError:
        return platform.machine() + platform.processor()
