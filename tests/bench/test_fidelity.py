"""KL divergence and top-1 agreement against a dense reference; error bars from per-window values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from compress.bench.accuracy.fidelity import (
    ReferenceComparer,
    ReferenceRecorder,
    load_reference,
    save_reference,
)

TASKS = {"tasks": ["perplexity"], "max_eval_tokens": 1024, "window": 64}


def test_coarse_kl_matches_the_definition_and_equals_full_kl_when_k_covers_the_vocabulary():
    torch.manual_seed(0)
    p = torch.log_softmax(torch.randn(7, 12), -1)
    q = torch.log_softmax(torch.randn(7, 12), -1)
    full = (p.exp() * (p - q)).sum(-1)
    for k, exact in ((12, True), (3, False)):
        recorder = ReferenceRecorder(top_k=k)
        recorder.observe(p)
        comparer = ReferenceComparer(recorder.reference("src", "key"))
        comparer.observe(q)
        result = comparer.result()
        if exact:
            assert result["kl_mean"] == pytest.approx(float(full.mean()), rel=1e-6)
        else:  # coarse-graining can only lose divergence (data-processing inequality)
            assert 0 < result["kl_mean"] <= float(full.mean()) + 1e-12
        assert result["top1_agreement"] == pytest.approx(float((p.argmax(-1) == q.argmax(-1)).float().mean()))


def test_reference_round_trips_through_a_file_without_pickles(tmp_path):
    recorder = ReferenceRecorder(top_k=4)
    recorder.observe(torch.log_softmax(torch.randn(5, 9), -1))
    path = save_reference(recorder.reference("pocket-d32", "abc"), tmp_path / "ref.npz")
    loaded = load_reference(path)
    assert loaded["source"] == "pocket-d32" and loaded["text_key"] == "abc" and loaded["indices"].shape == (5, 4)


def test_a_model_compared_with_itself_has_zero_kl_and_full_agreement(tmp_path, tokenizer, make_llama):
    from compress.bench import bench

    model = make_llama()
    ref = tmp_path / "ref.npz"
    dense = bench(model, tokenizer, TASKS, model_name="tiny", progress=False, reference_out=ref)
    again = bench(model, tokenizer, TASKS, model_name="tiny", progress=False, reference=ref)
    assert again["kl_mean"] == 0.0 and again["kl_p99"] == 0.0 and again["top1_agreement"] == 1.0
    assert again["bits_per_byte"] == dense["bits_per_byte"]
    low, high = dense["bits_per_byte_ci"]
    assert low < dense["bits_per_byte"] < high and dense["bits_per_byte_se"] > 0
    assert len(dense["windows"]["nll"]) == dense["eval_windows"] > 1


def test_kl_grows_and_agreement_falls_as_bits_drop(tmp_path, tokenizer, make_gpt2):
    import copy

    import compress
    from compress.bench import bench
    from compress.passes import RTNConfig

    model = make_gpt2(hidden=64)
    ref = tmp_path / "ref.npz"
    bench(model, tokenizer, TASKS, model_name="tiny", progress=False, reference_out=ref)
    kls, agree = [], []
    for bits in (8, 4, 2):
        small, _ = compress.apply(copy.deepcopy(model), [RTNConfig(bits=bits, group_size=32)], progress=False)
        record = bench(small, tokenizer, TASKS, model_name="tiny", variant=f"w{bits}", progress=False, reference=ref)
        kls.append(record["kl_mean"])
        agree.append(record["top1_agreement"])
    assert 0 < kls[0] < kls[1] < kls[2]
    assert agree[0] >= agree[1] >= agree[2] and agree[0] > agree[2]


def test_bootstrap_intervals_cover_the_truth_in_at_least_90_percent_of_trials():
    from compress.bench.accuracy.uncertainty import ratio_interval

    rng = np.random.default_rng(7)
    true_rate, covered = 2.0, 0
    for trial in range(200):
        nbytes = rng.integers(200, 400, size=48).astype(float)
        nll = nbytes * true_rate * math.log(2) * rng.gamma(20, 1 / 20, size=48)  # mean-one noise per window
        est = ratio_interval(nll, nbytes, scale=1 / math.log(2), n_boot=400, seed=trial)
        covered += est.includes(true_rate)
    assert covered >= 180


def test_paired_difference_detects_a_small_shift_that_overlapping_intervals_hide():
    from compress.bench.accuracy.uncertainty import paired_difference, ratio_interval

    rng = np.random.default_rng(1)
    nbytes = np.full(64, 300.0)
    hardness = rng.gamma(5, 1 / 5, size=64)  # shared by both models
    dense = nbytes * hardness
    compressed = dense * 1.01
    a, b = ratio_interval(compressed, nbytes), ratio_interval(dense, nbytes)
    assert a.low < b.high  # the separate intervals overlap ...
    diff = paired_difference(compressed, dense, nbytes)
    assert diff.low > 0  # ... yet the paired test sees the compressed model is worse
    same = paired_difference(dense, dense, nbytes)
    assert same.includes(0.0) and same.value == 0.0
