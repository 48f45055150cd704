"""Running statistics of a module's inputs on the calibration data, and the damped inverse
Hessian that GPTQ and SparseGPT share.

Every statistic is a running sum (float64), updated once per calibration batch: no sample is
kept twice. Modules that read the same input (q/k/v, gate/up) share the product XᵀX of a batch:
the engine hands them the same input tensor and `Stats` computes it once.

    >>> import torch
    >>> stats = Stats()
    >>> x = torch.randn(100, 8)
    >>> stats.hessian("q").add(x); stats.hessian("k").add(x)
    >>> torch.allclose(stats.hessian("q").matrix(), 2 * x.T.double() @ x.double() / 100)
    True
"""

from __future__ import annotations

import torch

from compress.errors import ScaleCompressError


class RunningHessian:
    """H = 2/N Σ x xᵀ over N calibration tokens (GPTQ's Hessian of the layer-wise squared error).

    Products are computed in float32 per batch (thousands of tokens) and summed in float64.
    """

    def __init__(self, columns: int, memo: dict | None = None) -> None:
        self.sum = torch.zeros(columns, columns, dtype=torch.float64)
        self.count = 0
        self._memo = memo if memo is not None else {}

    def add(self, inputs: torch.Tensor) -> None:
        """Add a batch of inputs [tokens, columns]."""
        key = id(inputs)
        cached = self._memo.get(key)
        if cached is None or cached[0] is not inputs:
            flat = inputs.float()
            product = (flat.T @ flat).to(device=self.sum.device, dtype=torch.float64)
            self._memo[key] = cached = (inputs, product)
        self.sum += cached[1]
        self.count += inputs.shape[0]

    def matrix(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        if not self.count:
            raise ScaleCompressError("a Hessian with no calibration tokens was asked for; the module never ran on the calibration data")
        return (self.sum * (2.0 / self.count)).to(dtype)


class ChannelSum:
    """Per input channel Σ f(x) over tokens (float64), e.g. Σ x² (Wanda's ‖X_j‖²) or Σ |x|."""

    def __init__(self, columns: int, power: int) -> None:
        self.sum = torch.zeros(columns, dtype=torch.float64)
        self.count = 0
        self.power = power

    def add(self, inputs: torch.Tensor) -> None:
        values = inputs.float().abs()
        if self.power == 2:
            values = values.square()
        self.sum += values.sum(dim=0).to(device=self.sum.device, dtype=torch.float64)
        self.count += inputs.shape[0]

    def mean(self) -> torch.Tensor:
        return self.sum / max(self.count, 1)


class ChannelMax:
    """Per input channel max |x| over tokens (SmoothQuant's and AWQ's activation scale)."""

    def __init__(self, columns: int) -> None:
        self.max = torch.zeros(columns, dtype=torch.float32)

    def add(self, inputs: torch.Tensor) -> None:
        self.max = torch.maximum(self.max, inputs.detach().abs().amax(dim=0).float().to(self.max.device))


class Stats:
    """The statistics of one pass over one block, by module name; created lazily on first use."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, str], object] = {}
        self._memo: dict = {}

    def _get(self, kind: str, name: str, build):
        key = (kind, name)
        if key not in self._items:
            self._items[key] = build()
        return self._items[key]

    def hessian(self, name: str, columns: int | None = None) -> RunningHessian:
        return self._get("hessian", name, lambda: RunningHessian(_need(columns, name), self._memo))

    def input_sq(self, name: str, columns: int | None = None) -> ChannelSum:
        return self._get("sq", name, lambda: ChannelSum(_need(columns, name), power=2))

    def input_abs(self, name: str, columns: int | None = None) -> ChannelSum:
        return self._get("abs", name, lambda: ChannelSum(_need(columns, name), power=1))

    def abs_max(self, name: str, columns: int | None = None) -> ChannelMax:
        return self._get("max", name, lambda: ChannelMax(_need(columns, name)))

    def next_batch(self) -> None:
        """Forget the shared per-batch products (the engine calls this after every batch)."""
        self._memo.clear()

    def drop(self, name: str) -> None:
        """Free a module's statistics once it is compressed."""
        for key in [k for k in self._items if k[1] == name]:
            del self._items[key]


def _need(columns: int | None, name: str) -> int:
    if columns is None:
        raise ScaleCompressError(f"statistics of {name!r} were read before any input was observed")
    return columns


def damped_cholesky_inverse(hessian: torch.Tensor, damp: float, *, retries: int = 6) -> tuple[torch.Tensor, float, int]:
    """Upper Cholesky factor of (H + λI)⁻¹ with λ = damp · mean(diag H), as GPTQ/SparseGPT use.

    When the factorisation fails (H not positive definite in floating point), λ is multiplied
    by 10 and it is tried again, up to `retries` times. Returns (factor, damp used, retries made).
    Dead inputs (zero diagonal) must be handled by the caller before (set H_jj = 1, W[:, j] = 0).

        >>> factor, used, tries = damped_cholesky_inverse(torch.eye(3) * 2, 0.01)
        >>> tries, torch.allclose(factor.T @ factor, torch.eye(3, dtype=torch.float64) / 2.02)
        (0, True)
    """
    hessian = hessian.double()
    mean_diag = float(torch.diag(hessian).mean())
    for attempt in range(retries + 1):  # one working copy at a time: these matrices can be large
        current = damp * 10**attempt
        damped = hessian.clone()
        damped.diagonal().add_(current * mean_diag)
        lower, info = torch.linalg.cholesky_ex(damped)
        del damped
        if int(info) == 0:
            inverse = torch.cholesky_inverse(lower)
            del lower
            upper, info = torch.linalg.cholesky_ex(inverse, upper=True)
            del inverse
            if int(info) == 0:
                return upper, current, attempt
    raise ScaleCompressError(f"the Hessian is not positive definite even with damp={current:g}; use more calibration samples")
