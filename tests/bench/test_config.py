import pytest

from compress.bench.config import BenchConfig, as_config
from compress.errors import UserError


def test_defaults_are_the_documented_ones():
    config = BenchConfig()
    assert config.device == "cpu"
    assert config.tasks == ["perplexity", "choice", "latency"]
    assert (config.max_eval_tokens, config.window, config.choice_items) == (16384, 512, 500)
    assert (config.prompt_tokens, config.new_tokens, config.batch_size, config.repeats, config.warmup) == (96, 32, 1, 5, 1)
    assert config.max_ppl_increase is None and config.lm_eval_tasks == []


def test_every_field_is_described():
    for name, field in BenchConfig.model_fields.items():
        assert field.description, name


def test_scenario_id_tracks_only_settings_that_change_numbers():
    base = BenchConfig()
    assert base.scenario_id() == BenchConfig().scenario_id()
    assert len(base.scenario_id()) == 10
    assert BenchConfig(eval_batch_size=16, max_ppl_increase=0.05, device="cuda").scenario_id() == base.scenario_id()
    assert BenchConfig(window=256).scenario_id() != base.scenario_id()
    assert BenchConfig(new_tokens=64).scenario_id() != base.scenario_id()
    assert BenchConfig(tasks=["perplexity"]).scenario_id() != base.scenario_id()


def test_lm_eval_tasks_are_the_non_builtin_ones():
    config = BenchConfig(tasks=["perplexity", "hellaswag", "arc_easy", "hellaswag"])
    assert config.tasks == ["perplexity", "hellaswag", "arc_easy"]
    assert config.lm_eval_tasks == ["hellaswag", "arc_easy"]


def test_bad_input_is_a_user_error_naming_field_and_allowed_values():
    with pytest.raises(UserError, match="bench: unknown field 'windw'; did you mean 'window'"):
        as_config({"windw": 12})
    with pytest.raises(UserError, match="bench: field 'device'='gpu'.*'cpu' or 'cuda'"):
        as_config({}, device="gpu")
    with pytest.raises(UserError, match="bench: field 'repeats'=0"):
        as_config({"repeats": 0})
    with pytest.raises(UserError, match="did you mean 'perplexity'"):
        as_config({"tasks": ["perplexty"]})


def test_overrides_win_and_none_overrides_are_ignored():
    config = as_config({"repeats": 3, "window": 64}, repeats=7, window=None)
    assert (config.repeats, config.window) == (7, 64)
