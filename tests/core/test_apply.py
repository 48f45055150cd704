"""The framework around every pass: selection errors, NaN/Inf checks, needs, reports."""

import pytest
import torch

import compress
from compress.core.context import DataConfig, PassContext
from compress.errors import UserError
from compress.passes import MagnitudeConfig, RTNConfig
from tests.conftest import tiny_gpt2, tiny_llama


@pytest.mark.parametrize("config", [RTNConfig(targets=["no_such_layer"]), MagnitudeConfig(targets=["no_such_layer"])])
def test_a_pass_whose_targets_match_nothing_is_an_error_naming_it(config):
    with pytest.raises(UserError, match=rf"pass '{config.pass_name}' touched no module: targets \['no_such_layer'\] matched no module"):
        compress.apply(tiny_llama(), [config], progress=False)


def test_ignore_that_removes_everything_is_named():
    with pytest.raises(UserError, match=r"matched 14 module\(s\).*all removed by ignore \['layers'\]"):
        compress.apply(tiny_llama(), [MagnitudeConfig(ignore=["layers"])], progress=False)


def test_targets_that_match_no_linear_say_so():
    with pytest.raises(UserError, match=r"matched 5 module\(s\), e.g. model.layers.0.input_layernorm \(LlamaRMSNorm\).*none of them a linear"):
        compress.apply(tiny_llama(), [RTNConfig(targets=["LlamaRMSNorm"])], progress=False)


def test_rtn_on_an_already_quantized_model_is_an_error_not_a_silent_noop():
    model, _ = compress.apply(tiny_gpt2(), [RTNConfig(bits=4, group_size=32)], progress=False)
    with pytest.raises(UserError, match=r"pass 'rtn' touched no module.*already holds compressed layers \(QuantizedLinear\)"):
        compress.apply(model, [RTNConfig(bits=4, group_size=32)], progress=False)


@pytest.mark.parametrize(("config", "bad"), [(RTNConfig(bits=4, group_size=32), float("nan")), (MagnitudeConfig(sparsity=0.25), float("inf"))])
def test_a_pass_that_leaves_nan_weights_names_the_layer(config, bad):
    model = tiny_llama()
    with torch.no_grad():
        model.model.layers[1].mlp.up_proj.weight[3, 5] = bad  # magnitude prunes a NaN (it compares as small) but keeps an Inf
    with pytest.raises(UserError, match=rf"pass '{config.pass_name}' left \d+ NaN/Inf value\(s\) in model.layers.1.mlp.up_proj\."):
        compress.apply(model, [config], progress=False)


def test_inf_weight_is_caught_too():
    model = torch.nn.Sequential(torch.nn.Linear(16, 4), torch.nn.Linear(4, 4))
    with torch.no_grad():
        model[1].weight[0, 0] = float("inf")
    with pytest.raises(UserError, match=r"in 1\.weight"):
        compress.apply(model, [MagnitudeConfig(sparsity=0.25, storage="dense")], progress=False)


def test_report_fields_are_filled_by_the_framework():
    # zeros kept in place (storage: dense) so that rtn, which quantizes Linear layers, follows
    model, reports = compress.apply(tiny_llama(), [MagnitudeConfig(sparsity=0.5, storage="dense"), RTNConfig(bits=8, group_size=32)], progress=False)
    magnitude, rtn = reports
    assert magnitude.seconds > 0 and rtn.seconds > 0
    assert magnitude.bytes_before == magnitude.bytes_after > 0
    assert rtn.bytes_after < rtn.bytes_before / 3
    assert len(rtn.modules) == len(magnitude.modules) == 14
    assert rtn.to_dict()["pass"] == "rtn" and rtn.details["bits"] == 8
    assert all(not p.requires_grad or p.grad is None for p in model.parameters())


def test_apply_takes_configs_only_with_a_hint_for_recipes():
    with pytest.raises(UserError, match="expected a pass config.*Recipe.from_yaml"):
        compress.apply(tiny_llama(), "recipes/rtn-4bit.yaml", progress=False)


def test_progress_is_drawn_by_the_framework(capsys):
    compress.apply(tiny_llama(), [MagnitudeConfig()], progress=True)
    assert "magnitude" in capsys.readouterr().err


def test_context_providers_are_lazy_and_cached():
    class CountingTokenizer:
        calls = 0
        bos_token_id = 1

        def __call__(self, texts, add_special_tokens=False):
            CountingTokenizer.calls += 1
            return {"input_ids": [[ord(c) % 50 for c in text] for text in texts]}

    context = PassContext(tokenizer=CountingTokenizer(), data_config=DataConfig(samples=3, seq_len=16))
    assert CountingTokenizer.calls == 0
    first = context.calibration()
    calls = CountingTokenizer.calls
    assert first.shape == (3, 16) and context.calibration() is first and CountingTokenizer.calls == calls
    inputs, targets = context.train_sampler(batch_size=2, seq_len=8).next_batch()
    assert targets.shape == (2, 8) and targets.dtype == torch.long and bool((inputs[:, 0] == 1).all())
    calls = CountingTokenizer.calls
    context.train_sampler(batch_size=2, seq_len=8)
    assert CountingTokenizer.calls == calls  # the training text is tokenized once


def test_teacher_is_loaded_once_and_frozen():
    loads = []
    context = PassContext(teacher=lambda: loads.append(1) or torch.nn.Linear(2, 2))
    assert context.teacher() is context.teacher() and loads == [1]
    assert not any(p.requires_grad for p in context.teacher().parameters())
    with pytest.raises(UserError, match="needs a teacher"):
        PassContext().teacher()


def test_calibration_is_asked_for_before_any_pass_runs():
    with pytest.raises(UserError, match="needs calibration data"):
        PassContext().calibration()
    with pytest.raises(UserError, match="LongTensor"):
        PassContext(data=torch.zeros(2, 4))
