"""A sweep records a width- or depth-pruned variant by its *stored* parameters (issue 9: pruned
results sit on the dense curve by what they hold), not by its dense source's count."""

from __future__ import annotations

import json

from compress.checkpoint import count_params
from compress.recipe import Recipe
from compress.sweep import run_recipe
from tests.reliability.conftest import TINY_BENCH, build_checkpoint


def test_a_structured_variant_is_recorded_with_its_stored_params(tmp_path):
    import compress

    source = build_checkpoint(tmp_path / "tiny-llama")
    recipe = Recipe.from_yaml_text(
        f"version: 1\nmodel: {source}\n"
        "variants:\n  - name: width\n    passes: [{pass: structured, heads: 0.5, mlp: 0.5, importance: magnitude}]\n"
        f"bench: {json.dumps(TINY_BENCH)}\n"
    )
    result = run_recipe(recipe, out=tmp_path / "out", progress=False, log=lambda m: None)
    records = {r["variant"]: r for r in result.records}
    pruned, _, _ = compress.load(result.saved_model)
    total, non_embedding = count_params(pruned)
    assert non_embedding < records["dense"]["non_embedding_params"]
    assert (records["width"]["params"], records["width"]["non_embedding_params"]) == (total, non_embedding)
