"""Fidelity to the dense source: KL divergence of next-token distributions and top-1 agreement.

llama.cpp's `perplexity --kl-divergence` reports these for its quantizations: far more sensitive
than perplexity for near-lossless formats, because perplexity averages errors that cancel.

The dense source is benchmarked first and its *reference* is written to a file: per predicted
position of the perplexity windows, its top-k token ids and log-probabilities and its argmax.
A compressed model benchmarked later on the same windows reads that file, so the two models
are never in memory together. Per position, with P the source and Q the compressed model,

    KL(P‖Q) = Σ_{i ∈ top-k(P)} p_i (log p_i − log q_i) + p_rest (log p_rest − log q_rest)

where p_rest = 1 − Σ_{top-k} p_i (and q_rest likewise over the same ids): the exact KL of the
two distributions coarse-grained to k + 1 outcomes. It is a lower bound of the full-vocabulary
KL (data-processing inequality) and equals it when k ≥ vocabulary. Top-1 agreement: the share
of positions where both argmaxes agree. A model compared with itself gets exactly 0 and 1.

    >>> import torch
    >>> lp = torch.log_softmax(torch.randn(5, 10), -1)
    >>> rec = ReferenceRecorder(top_k=4); rec.observe(lp)
    >>> cmp = ReferenceComparer(rec.reference("m", "x")); cmp.observe(lp)
    >>> cmp.result()["kl_mean"], cmp.result()["top1_agreement"]
    (0.0, 1.0)
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from compress.errors import UserError

TOP_K = 64
FORMAT = "scalecompress-fidelity-reference-v1"


class ReferenceRecorder:
    """Collects the dense model's top-k log-probs per predicted position, window by window."""

    def __init__(self, top_k: int = TOP_K):
        self.top_k = top_k
        self.indices: list[np.ndarray] = []
        self.logprobs: list[np.ndarray] = []
        self.argmax: list[np.ndarray] = []
        self.lengths: list[int] = []

    def observe(self, logprobs: torch.Tensor) -> None:
        """One window's [positions, vocab] float32 log-probs."""
        k = min(self.top_k, logprobs.shape[-1])
        values, ids = torch.topk(logprobs, k, dim=-1)
        self.indices.append(ids.to(torch.int32).cpu().numpy())
        self.logprobs.append(values.float().cpu().numpy())
        self.argmax.append(logprobs.argmax(dim=-1).to(torch.int32).cpu().numpy())
        self.lengths.append(int(logprobs.shape[0]))

    def reference(self, source: str, text_key: str) -> dict:
        return {"source": source, "text_key": text_key, "top_k": self.top_k,
                "indices": np.concatenate(self.indices), "logprobs": np.concatenate(self.logprobs),
                "argmax": np.concatenate(self.argmax), "lengths": np.asarray(self.lengths, dtype=np.int64)}


class ReferenceComparer:
    """Scores a model's log-probs against a reference, window by window."""

    def __init__(self, reference: dict):
        self.ref = reference
        self.offsets = np.concatenate([[0], np.cumsum(reference["lengths"])])
        self.window = 0
        self.kl_sums: list[float] = []
        self.top1_counts: list[int] = []
        self.kl_all: list[np.ndarray] = []

    def observe(self, logprobs: torch.Tensor) -> None:
        if self.window >= len(self.ref["lengths"]) or logprobs.shape[0] != self.ref["lengths"][self.window]:
            raise UserError(f"fidelity reference of {self.ref['source']!r} was computed on other windows "
                            f"(window {self.window}); delete it and rerun so it is rebuilt on this text and window")
        begin, end = self.offsets[self.window], self.offsets[self.window + 1]
        ids = torch.from_numpy(self.ref["indices"][begin:end]).long()
        p_log = torch.from_numpy(self.ref["logprobs"][begin:end]).double()
        q_log = logprobs.double().cpu().gather(-1, ids)
        p_top = p_log.exp()
        p_rest = (1 - p_top.sum(-1)).clamp(min=0)
        q_rest = (1 - q_log.exp().sum(-1)).clamp(min=1e-300)
        rest = torch.where(p_rest > 0, p_rest * (p_rest.clamp(min=1e-300).log() - q_rest.log()), torch.zeros_like(p_rest))
        kl = (p_top * (p_log - q_log)).sum(-1) + rest
        kl = kl.clamp(min=0).numpy()  # rounding can leave −1e-17 where the two agree
        agree = logprobs.argmax(dim=-1).cpu().numpy() == self.ref["argmax"][begin:end]
        self.kl_sums.append(float(kl.sum()))
        self.top1_counts.append(int(agree.sum()))
        self.kl_all.append(kl)
        self.window += 1

    def result(self) -> dict:
        """{"kl_mean", "kl_p99", "top1_agreement", "window_kl", "window_top1"} (means over positions)."""
        if self.window != len(self.ref["lengths"]):
            raise UserError(f"fidelity reference of {self.ref['source']!r} has {len(self.ref['lengths'])} windows, "
                            f"this run scored {self.window}; delete it and rerun")
        kl = np.concatenate(self.kl_all)
        return {"kl_mean": float(kl.mean()), "kl_p99": float(np.quantile(kl, 0.99)),
                "top1_agreement": float(sum(self.top1_counts) / kl.size),
                "window_kl": self.kl_sums, "window_top1": self.top1_counts}


def text_key(ids: np.ndarray, window: int, prefix_id: int | None) -> str:
    """Hash of the evaluated token ids and windowing: a reference only compares on the same key."""
    digest = hashlib.sha256(np.asarray(ids, dtype=np.int64).tobytes())
    digest.update(json.dumps([window, prefix_id]).encode())
    return digest.hexdigest()[:16]


def save_reference(reference: dict, path) -> Path:
    """Write atomically as .npz (arrays) with the metadata inside; no pickles."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = json.dumps({"format": FORMAT, "source": reference["source"], "text_key": reference["text_key"],
                       "top_k": reference["top_k"]})
    from compress.atomic import staged_file

    with staged_file(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, meta=np.frombuffer(meta.encode(), dtype=np.uint8), indices=reference["indices"],
                 logprobs=reference["logprobs"], argmax=reference["argmax"], lengths=reference["lengths"])
    return path


def load_reference(path) -> dict:
    """Read a reference written by `save_reference` (allow_pickle off)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            out = {key: data[key] for key in ("indices", "logprobs", "argmax", "lengths")}
    except (OSError, ValueError, KeyError) as error:
        raise UserError(f"fidelity reference {path} cannot be read ({error}); delete it and rerun") from None
    if meta.get("format") != FORMAT:
        raise UserError(f"fidelity reference {path} has format {meta.get('format')!r}, expected {FORMAT}; delete it")
    return {**meta, **out}
