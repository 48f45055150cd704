"""The public names of `import compress` stay callable whatever was imported before."""

import compress
import compress.bench.results  # noqa: F401 - a submodule import must not rebind compress.bench
import compress.core.apply  # noqa: F401
from compress.passes import MagnitudeConfig
from tests.conftest import tiny_llama


def test_public_functions_are_functions_after_submodule_imports():
    assert callable(compress.bench) and callable(compress.apply)
    assert callable(compress.load) and callable(compress.save)
    assert compress.Recipe.__name__ == "Recipe"


def test_apply_runs_a_pass_list():
    model = tiny_llama()
    model, reports = compress.apply(model, [MagnitudeConfig(sparsity=0.5)], progress=False)
    assert reports[0].pass_name == "magnitude"
    assert abs(reports[0].details["sparsity"] - 0.5) < 1e-3
