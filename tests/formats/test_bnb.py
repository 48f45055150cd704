"""bitsandbytes layers on CPU: real quantized tensors, transformers' serialization, honest sizes."""

from __future__ import annotations

import warnings

import pytest
import torch

from compress.formats.bnb import is_bnb_linear, quantization_config, to_bnb_linear
from compress.model_info import count_params, weight_bytes
from tests.conftest import tiny_gpt2

pytest.importorskip("bitsandbytes")


def _convert(model, kind):
    for name, module in list(model.named_modules()):
        if (type(module) is torch.nn.Linear and name != "lm_head") or type(module).__name__ == "Conv1D":
            model.set_submodule(name, to_bnb_linear(module, kind=kind))
    model.config.quantization_config = quantization_config(kind=kind, double_quant=True, compute_dtype="float32", threshold=6.0, skip=["lm_head"])
    return model


@pytest.mark.parametrize("kind", ["nf4", "fp4", "int8"])
def test_layers_run_on_cpu_and_stay_close_to_dense(kind):
    torch.manual_seed(0)
    dense = torch.nn.Linear(128, 64).eval()
    layer = to_bnb_linear(dense, kind=kind)
    assert is_bnb_linear(layer) and layer.weight.dtype in (torch.uint8, torch.int8)
    x = torch.randn(4, 128)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        error = float((layer(x) - dense(x)).norm() / dense(x).norm())
    assert error < (0.15 if kind != "int8" else 0.02)


@pytest.mark.parametrize("kind", ["nf4", "int8"])
def test_saved_gpt2_conv1d_folder_reloads_with_plain_transformers(tmp_path, kind):
    import transformers

    import compress

    build = tiny_gpt2
    model = _convert(build(), kind)
    tokens = torch.randint(0, 128, (2, 10), generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        before = model(tokens).logits
        compress.save(model, tmp_path / kind)
        reloaded = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / kind)
        assert sum(is_bnb_linear(m) for m in reloaded.modules()) == sum(is_bnb_linear(m) for m in model.modules()) > 0
        torch.testing.assert_close(reloaded(tokens).logits, before, rtol=0, atol=0)
    assert count_params(model) == count_params(build())  # the dense layer's count, not the packed one


def test_nf4_stores_under_a_third_of_fp32_when_linears_dominate():
    import transformers

    config = transformers.LlamaConfig(vocab_size=32, hidden_size=256, intermediate_size=768, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4)
    dense = transformers.AutoModelForCausalLM.from_config(config).eval()
    fp32_bytes = weight_bytes(dense)
    quantized = _convert(transformers.AutoModelForCausalLM.from_config(config).eval(), "nf4")
    stored = sum(t.numel() * t.element_size() for t in quantized.state_dict().values())
    assert stored == weight_bytes(quantized)  # counted from the real tensors, quant statistics included
    assert stored <= 0.3 * fp32_bytes
