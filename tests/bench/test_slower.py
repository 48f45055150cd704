"""Variants slower than their dense source are named; noise and other machines are not compared."""

from compress.bench.slower import slower_than_dense

DENSE = {"model": "m", "variant": "dense", "device": "cpu", "decode_ms_per_token": 2.0, "prefill_ms": 10.0}


def _variant(**fields):
    return {"model": "m-x", "variant": "x", "source_model": "m", "device": "cpu", **fields}


def test_slower_decode_and_prefill_are_both_named():
    [line] = slower_than_dense([DENSE, _variant(decode_ms_per_token=4.0, prefill_ms=30.0)])
    assert "decode 4.00 ms/token vs 2.00 (2.00x)" in line and "prefill 30.00 ms vs 10.00 (3.00x)" in line


def test_noise_faster_variants_and_other_devices_say_nothing():
    records = [
        DENSE,
        _variant(decode_ms_per_token=2.05),  # within 5%
        _variant(decode_ms_per_token=1.0, prefill_ms=5.0),
        _variant(device="cuda", decode_ms_per_token=9.0),  # no dense record on cuda
        _variant(source_model="other", decode_ms_per_token=9.0),
    ]
    assert slower_than_dense(records) == []


def test_a_slower_load_is_named_too():
    [line] = slower_than_dense([{**DENSE, "load_seconds": 1.0}, _variant(load_seconds=3.0)])
    assert "load 3.00 s vs 1.00 (3.00x)" in line
