import pytest
import torch
import transformers
from pydantic import ValidationError

import compress
from compress.algorithms.pruning.magnitude import MagnitudeConfig
from compress.core.context import PassContext
from compress.core.registry import get_pass
from compress.errors import UserError


def llama():
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False)
    return transformers.AutoModelForCausalLM.from_config(config).eval()


def gpt2():
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=128, n_embd=64, n_layer=2, n_head=4, n_positions=64, bos_token_id=0, eos_token_id=0)
    return transformers.AutoModelForCausalLM.from_config(config).eval()


MODELS = {"llama": llama, "gpt2": gpt2}


def rows_by_inputs(module):
    """The weight as (out, in) whatever the class (GPT-2's Conv1D stores (in, out))."""
    return module.weight.t() if type(module).__name__ == "Conv1D" else module.weight


def targeted(model, report):
    modules = dict(model.named_modules())
    return {name: rows_by_inputs(modules[name]).detach() for name in report.modules}


def run(model, **fields):
    fields.setdefault("storage", "dense")  # these tests read the pruned weights in place
    return get_pass("magnitude").run(model, MagnitudeConfig(**fields), PassContext(progress=False))


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_layer_scope_gives_exactly_the_sparsity_in_every_layer(arch):
    model = MODELS[arch]()
    head = model.lm_head.weight.detach().clone()
    embedding = model.get_input_embeddings().weight.detach().clone()
    report = run(model, sparsity=0.5)
    weights = targeted(model, report)
    assert len(weights) == (14 if arch == "llama" else 8)
    for name, weight in weights.items():
        assert int((weight == 0).sum()) == weight.numel() // 2, name
        assert report.details["sparsity_per_layer"][name] == 0.5
    assert report.details["sparsity"] == 0.5
    assert "lm_head" not in report.modules
    assert torch.equal(model.get_input_embeddings().weight, embedding)
    if arch == "llama":  # GPT-2 ties its head to the embedding
        assert torch.equal(model.lm_head.weight, head)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_global_scope_gives_exactly_the_sparsity_in_total(arch):
    model = MODELS[arch]()
    report = run(model, sparsity=0.5, scope="global")
    weights = targeted(model, report)
    zeros = sum(int((w == 0).sum()) for w in weights.values())
    assert zeros == sum(w.numel() for w in weights.values()) // 2
    assert report.details["sparsity"] == 0.5
    per_layer = report.details["sparsity_per_layer"]
    assert len(set(per_layer.values())) > 1  # one threshold, different fractions per layer
    for name, weight in weights.items():
        assert per_layer[name] == round(float((weight == 0).float().mean()), 6)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
@pytest.mark.parametrize(("pattern", "n", "m"), [("2:4", 2, 4), ("4:8", 4, 8)])
def test_n_m_pattern_along_the_inputs_of_every_row(arch, pattern, n, m):
    model = MODELS[arch]()
    report = run(model, pattern=pattern)
    for name, weight in targeted(model, report).items():
        out_features, in_features = weight.shape
        groups = weight.reshape(out_features, in_features // m, m)
        assert bool(((groups == 0).sum(-1) >= m - n).all()), name
    assert report.details["pattern"] == pattern and report.details["sparsity"] == 0.5


def test_report_is_honest_about_bytes_and_the_model_still_runs():
    model = llama()
    model, (report,) = compress.apply(model, [MagnitudeConfig(sparsity=0.3, storage="dense")], progress=False)
    assert report.bytes_before == report.bytes_after > 0
    assert report.details["target_sparsity"] == 0.3 and report.details["stored"] == "dense"
    model = llama()
    model, (report,) = compress.apply(model, [MagnitudeConfig(sparsity=0.5)], progress=False)
    assert report.bytes_after < 0.6 * report.bytes_before and report.details["stored"] == "sparse"  # values + bitmask
    with torch.no_grad():
        assert torch.isfinite(model(torch.randint(0, 128, (1, 8))).logits).all()


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_row_scope_gives_every_output_row_the_same_sparsity(arch):
    model = MODELS[arch]()
    report = run(model, sparsity=0.5, scope="row")
    for name, weight in targeted(model, report).items():
        assert bool(((weight == 0).sum(1) == weight.shape[1] // 2).all()), name
    assert report.details["scope"] == "row" and report.details["sparsity"] == 0.5


def test_pattern_needs_divisible_inputs():
    model = torch.nn.Sequential(torch.nn.Linear(12, 4))
    with pytest.raises(UserError, match="divisible by 8"):
        run(model, pattern="4:8")


def test_config_validation_and_tags():
    assert MagnitudeConfig().tag() == "magnitude-50%"
    assert MagnitudeConfig(sparsity=0.3, scope="global").tag() == "magnitude-30%-global"
    assert MagnitudeConfig(pattern="2:4").tag() == "magnitude-2:4"
    assert MagnitudeConfig(scope="row").tag() == "magnitude-50%-row"
    assert MagnitudeConfig(storage="dense").tag() == "magnitude-50%-dense"
    assert MagnitudeConfig(pattern="1:4").sparsity == 0.75  # implied: 3 of 4 zeroed
    assert MagnitudeConfig(pattern="2:4", sparsity=0.5).pattern == "2:4"
    for bad, message in [
        ({"pattern": "2:4", "sparsity": 0.3}, "contradicts pattern"),
        ({"pattern": "4:2"}, "N:M"),
        ({"pattern": "2:4", "scope": "global"}, "cannot be combined"),
        ({"sparsity": 1.0}, "less than 1"),
        ({"scope": "model"}, "layer"),
    ]:
        with pytest.raises(ValidationError, match=message):
            MagnitudeConfig(**bad)
    config = MagnitudeConfig(pattern="1:4")
    assert MagnitudeConfig.model_validate(config.model_dump()) == config
