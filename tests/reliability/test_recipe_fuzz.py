"""Property: whatever recipe text arrives, `validate` answers with a Recipe or the toolkit's
one-line RecipeError, within 1 s and 200 MB, never anything else.

Recipes are generated from the schema (every registered pass and its fields, every section)
and then mutated: wrong types, unknown keys, extreme and non-finite values, huge strings,
duplicate keys, nested aliases, broken YAML. Derandomized, so CI runs the same 1,000+ cases.
"""

from __future__ import annotations

import time
import tracemalloc

import pytest
import yaml

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from compress.errors import RecipeError  # noqa: E402
from compress.recipe import ALLOWED_TOP_LEVEL, DataConfig, Recipe, ReportConfig  # noqa: E402
from compress.core.registry import all_passes  # noqa: E402

DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml when present: generation stays cheap
PASSES = {spec.name: sorted(spec.config.model_fields) for spec in all_passes()}
EXAMPLES = 1000  # the acceptance floor

weird_scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, 2, 3, 4, 8, 16, 128, -1, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["Linear", "re:.*", "re:(", "re:[", "2:4", "4:8", "layer", "global", "all", "", "x" * 5000]),
)
values = st.recursive(weird_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)), max_leaves=6)


@st.composite
def pass_entry(draw):
    name = draw(st.one_of(st.sampled_from(sorted(PASSES)), st.sampled_from(["rnt", "RTN", "gptq?", ""]), weird_scalars))
    fields = PASSES.get(name, []) if isinstance(name, str) else []
    entry = {"pass": name}
    for field in draw(st.lists(st.sampled_from(fields or ["bits"]), max_size=4, unique=True)):
        entry[field] = draw(values)
    if draw(st.booleans()):
        entry[draw(st.text(min_size=1, max_size=10))] = draw(values)  # unknown key
    return entry


@st.composite
def recipe_document(draw):
    document: dict = {}
    if draw(st.integers(0, 9)):
        document["version"] = draw(st.one_of(st.just(1), weird_scalars))
    shape = draw(st.sampled_from(["passes", "variants", "both", "none"]))
    if shape in ("passes", "both"):
        document["passes"] = draw(st.one_of(st.lists(pass_entry(), max_size=3), values))
    if shape in ("variants", "both"):
        document["variants"] = draw(st.lists(st.one_of(st.fixed_dictionaries({"passes": st.lists(pass_entry(), max_size=2)}, optional={"name": weird_scalars}), values), max_size=3))
    for key in draw(st.lists(st.sampled_from(sorted(ALLOWED_TOP_LEVEL - {"version", "passes", "variants"})), max_size=4, unique=True)):
        if key in ("data", "report"):
            fields = sorted((DataConfig if key == "data" else ReportConfig).model_fields)
            document[key] = draw(st.one_of(st.dictionaries(st.sampled_from(fields), values, max_size=3), values))
        elif key == "bench":
            document[key] = draw(st.one_of(st.dictionaries(st.sampled_from(["tasks", "window", "device", "max_ppl_increase", "repeats", "windw"]), values, max_size=3), values))
        else:
            document[key] = draw(values)
    if draw(st.integers(0, 9)) == 0:
        document[draw(st.text(max_size=12))] = draw(values)
    return document


@st.composite
def recipe_text(draw):
    document = draw(recipe_document())
    text = yaml.dump(document, Dumper=DUMPER, sort_keys=False, allow_unicode=True)
    mutation = draw(st.sampled_from(["none", "none", "alias", "duplicate", "cut", "noise", "deep"]))
    if mutation == "alias":
        depth, width = draw(st.integers(1, 12)), draw(st.integers(2, 12))
        lines = [f"x0: &x0 [{', '.join(['v'] * width)}]"] + [f"x{i}: &x{i} [{', '.join([f'*x{i - 1}'] * width)}]" for i in range(1, depth + 1)]
        text = "\n".join(lines) + "\n" + text
    elif mutation == "duplicate" and text.strip() and not text.startswith(("[", "{", "-")):
        text = text + text.splitlines()[0] + "\n"
    elif mutation == "cut":
        text = text[: draw(st.integers(0, max(len(text) - 1, 0)))]
    elif mutation == "noise":
        position = draw(st.integers(0, len(text)))
        text = text[:position] + draw(st.text(max_size=6)) + text[position:]
    elif mutation == "deep":
        depth = draw(st.integers(10, 3000))
        text = "version: 1\npasses: " + "[" * depth + "]" * depth + "\n"
    return text


@pytest.mark.slow
@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(recipe_text())
def test_validate_answers_every_recipe_with_a_recipe_or_one_line(text):
    tracemalloc.start()
    started = time.perf_counter()
    try:
        Recipe.from_yaml_text(text, "fuzz.yaml")
    except RecipeError as error:
        message = str(error)
        assert "\n" not in message and len(message) < 2000 and message.startswith("fuzz.yaml")
    finally:
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert elapsed < 1.0, f"validate took {elapsed:.2f}s"
    assert peak < 200 * 2**20, f"validate held {peak / 2**20:.0f} MB"
