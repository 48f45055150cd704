"""The Chinchilla law L(N, D) = E + A·N^(−α) + B·D^(−β), fitted as Hoffmann et al. (2022) approach 3.

Approach 3 minimises the Huber loss (δ = 10⁻³) between the predicted and observed *log* loss,

    Σ_i Huber_δ( LSE(a − α log N_i, b − β log D_i, e) − log L_i ),   A = eᵃ, B = eᵇ, E = eᵉ,

with L-BFGS from several starting points, keeping the best. The paper starts from a fixed grid
of (a, b, e, α, β); here the starts come from a finer grid over (α, β) alone, where the law is
linear in (E, A, B) and non-negative least squares gives them exactly: the best few grid points
are refined (cheaper than the full grid, and the same minimum on the tests' synthetic laws). N and D are divided by their
geometric means first (conditioning; A and B are converted back).

The form is only identifiable when D varies independently of N. `identifiability` says why
not otherwise: with D fixed (Pythia: 300B tokens for every size) the B·D^(−β) term is a
constant that merges with E, so fit L(N) at that D instead; with D a function of N (the pocket
ladder's rule D ∝ √N) the two power laws cannot be told apart. Members trained at other token
budgets (the same N at 0.5× and 2× D) break that tie.

    >>> import numpy as np
    >>> N, D = np.meshgrid([1e5, 3e5, 1e6, 3e6], [1e7, 1e8, 1e9])
    >>> L = 1.7 + 400 * N ** -0.34 + 410 * D ** -0.28
    >>> fit = fit_chinchilla(N.ravel(), D.ravel(), L.ravel())
    >>> round(fit.E, 2), round(fit.alpha, 2), round(fit.beta, 2)
    (1.7, 0.34, 0.28)
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import minimize

from compress.errors import UserError

HUBER_DELTA = 1e-3


@dataclass(frozen=True)
class ChinchillaFit:
    E: float
    A: float
    alpha: float
    B: float
    beta: float
    loss: float  # the minimised Huber objective
    n_points: int

    def predict(self, n, d):
        n, d = np.asarray(n, dtype=float), np.asarray(d, dtype=float)
        return self.E + self.A * n ** -self.alpha + self.B * d ** -self.beta

    def describe(self) -> str:
        return (f"L(N, D) = {self.E:.4g} + {self.A:.4g}·N^(−{self.alpha:.3f}) + {self.B:.4g}·D^(−{self.beta:.3f}) "
                f"({self.n_points} points, Huber δ={HUBER_DELTA:g} on log L)")

    def to_dict(self) -> dict:
        return asdict(self)


def identifiability(n, d) -> tuple[bool, str]:
    """(can L(N, D) be fitted, why not). Needs ≥ 5 points and D varying independently of N."""
    n, d = np.asarray(n, dtype=float), np.asarray(d, dtype=float)
    if d.size == 0 or not np.all(np.isfinite(d)) or np.any(d <= 0):
        return False, "training tokens D are not recorded for every dense member"
    if np.ptp(np.log(d)) < 1e-9:
        return False, (f"every member saw the same D = {d[0]:.3g} tokens: the B·D^-β term is a constant, so the "
                       "law is L(N) at fixed D")
    if n.size < 5:
        return False, f"{n.size} points cannot fix the 5 parameters of L(N, D)"
    # Is log D a function of log N? Then D varies only along N and the terms cannot be separated.
    distinct_n = np.unique(np.round(np.log(n), 6))
    repeated = any(np.ptp(np.log(d[np.isclose(np.log(n), x, atol=1e-6)])) > 0.1 for x in distinct_n)
    if not repeated:
        return False, ("D is a function of N on this ladder (each size was trained at one token budget), so "
                       "A·N^-α and B·D^-β cannot be told apart; train some sizes at other budgets (e.g. 0.5× "
                       "and 2×) to identify L(N, D)")
    return True, ""


def _huber(r: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    small = np.abs(r) <= delta
    value = np.where(small, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta))
    grad = np.where(small, r, delta * np.sign(r))
    return value, grad


def _starts(n: np.ndarray, d: np.ndarray, loss: np.ndarray, keep: int = 3) -> list[np.ndarray]:
    """Starting points (a, b, e, α, β): the best (α, β) of a grid, with E, A, B by NNLS."""
    from scipy.optimize import nnls

    scored = []
    for alpha, beta in itertools.product(np.linspace(0.05, 1.45, 15), repeat=2):
        design = np.stack([np.ones_like(n), n ** -alpha, d ** -beta], axis=1)
        coef, _ = nnls(design, loss)
        predicted = design @ coef
        if np.all(predicted > 0):
            error = float(np.sum((np.log(predicted) - np.log(loss)) ** 2))
            E, A, B = np.maximum(coef, 1e-6 * loss.min())
            scored.append((error, np.array([math.log(A), math.log(B), math.log(E), alpha, beta])))
    scored.sort(key=lambda item: item[0])
    return [theta for _, theta in scored[:keep]]


def fit_chinchilla(n, d, loss, *, delta: float = HUBER_DELTA) -> ChinchillaFit:
    """Fit E, A, α, B, β to losses L at sizes N and token counts D (approach 3)."""
    n, d, loss = (np.asarray(v, dtype=float) for v in (n, d, loss))
    if not (n.shape == d.shape == loss.shape) or n.ndim != 1:
        raise UserError("chinchilla fit: pass one N, one D and one loss per dense member")
    if np.any(loss <= 0) or np.any(n <= 0) or np.any(d <= 0):
        raise UserError("chinchilla fit: N, D and the loss must be positive")
    n0, d0 = float(np.exp(np.log(n).mean())), float(np.exp(np.log(d).mean()))
    log_n, log_d, log_l = np.log(n / n0), np.log(d / d0), np.log(loss)

    def objective(theta):
        a, b, e, alpha, beta = theta
        terms = np.stack([a - alpha * log_n, b - beta * log_d, np.full_like(log_n, e)])
        top = terms.max(axis=0)
        lse = top + np.log(np.exp(terms - top).sum(axis=0))  # scipy's logsumexp is 30x slower on 3 rows
        weights = np.exp(terms - lse)  # softmax: d LSE / d term
        value, g = _huber(lse - log_l, delta)
        grad = np.array([np.sum(g * weights[0]), np.sum(g * weights[1]), np.sum(g * weights[2]),
                         np.sum(g * weights[0] * -log_n), np.sum(g * weights[1] * -log_d)])
        return float(value.sum()), grad

    best = None
    for theta0 in _starts(np.exp(log_n), np.exp(log_d), loss):
        result = minimize(objective, theta0, jac=True, method="L-BFGS-B",
                          bounds=[(-30, 30), (-30, 30), (-30, 30), (0.0, 3.0), (0.0, 3.0)],
                          options={"maxiter": 1000, "maxfun": 2000})
        if np.all(np.isfinite(result.x)) and (best is None or result.fun < best.fun):
            best = result
    a, b, e, alpha, beta = (float(v) for v in best.x)
    return ChinchillaFit(E=math.exp(e), A=math.exp(a) * n0 ** alpha, alpha=alpha, B=math.exp(b) * d0 ** beta,
                         beta=beta, loss=float(best.fun), n_points=int(n.size))
