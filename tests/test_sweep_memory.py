"""A sweep measures a compressed variant as a user loading its saved folder would (issue 14)."""

import json

import pytest

import compress
from compress.bench.config import as_config
from compress.bench.fresh_bench import bench_in_fresh_process
from compress.recipe import Recipe
from compress.sweep import run_recipe
from tests.bench.conftest import VOCAB, train_tokenizer
from tests.conftest import tiny_llama

BENCH = {"tasks": ["latency"], "prompt_tokens": 8, "new_tokens": 4, "repeats": 1, "warmup": 0}


@pytest.mark.slow
def test_sweep_memory_of_a_variant_equals_a_fresh_bench_of_its_folder(tmp_path):
    # ~120 MB of dense fp32 weights: inside the sweep's process they would show in every figure.
    model = tiny_llama(vocab_size=VOCAB, hidden=512, intermediate=2048, layers=6)
    source = compress.save(model, tmp_path / "source", tokenizer=train_tokenizer())
    del model
    recipe = Recipe.from_yaml_text(
        f"version: 1\nmodel: {source}\nvariants:\n  - name: w8\n    passes: [{{pass: rtn, bits: 8, group_size: null}}]\n"
        f"bench: {json.dumps(BENCH)}\n", source="memory.yaml")
    result = run_recipe(recipe, out=tmp_path / "out", progress=False, log=lambda m: None)
    record = next(r for r in result.records if r["variant"] == "w8")
    fresh = bench_in_fresh_process(result.saved_model, as_config(BENCH), model_name="again", variant="w8")
    for key in ("load_peak_rss_bytes", "peak_rss_bytes"):
        assert abs(record[key] - fresh[key]) <= 0.1 * fresh[key], (key, record[key], fresh[key])
