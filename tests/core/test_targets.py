import pytest

from compress.core.targets import select_linears, select_modules
from compress.errors import UserError
from tests.conftest import tiny_gpt2


def names(model, targets, ignore=None):
    return [name for name, _ in select_linears(model, targets, ignore)]


def test_linear_class_covers_all_projections_but_not_the_head(llama_model):
    selected = names(llama_model, ["Linear"])
    assert len(selected) == 2 * 7  # q k v o gate up down per layer
    assert "lm_head" not in selected
    assert not any("embed" in n for n in selected)


def test_gpt2_conv1d_counts_as_linear():
    selected = names(tiny_gpt2(), ["Linear"])
    assert "transformer.h.0.attn.c_attn" in selected and "lm_head" not in selected


def test_head_only_when_named(llama_model):
    assert names(llama_model, ["Linear", "lm_head"])[-1] == "lm_head"
    assert names(llama_model, ["re:lm_head"]) == ["lm_head"]


def test_suffix_regex_and_ignore(llama_model):
    assert names(llama_model, ["q_proj"]) == ["model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.q_proj"]
    assert names(llama_model, ["re:layers\\.1\\..*proj$"], ignore=["mlp"]) == [
        "model.layers.1.self_attn.q_proj",
        "model.layers.1.self_attn.k_proj",
        "model.layers.1.self_attn.v_proj",
        "model.layers.1.self_attn.o_proj",
    ]
    assert len(names(llama_model, ["Linear"], ignore=["re:.*"])) == 0


def test_embeddings_need_an_explicit_name(llama_model):
    assert [n for n, _ in select_modules(llama_model, ["Embedding"])] == []
    assert [n for n, _ in select_modules(llama_model, ["embed_tokens"])] == ["model.embed_tokens"]


def test_bad_regex_is_a_user_error(llama_model):
    with pytest.raises(UserError, match="bad regex"):
        names(llama_model, ["re:("])


def test_parent_name_covers_children(llama_model):
    assert names(llama_model, ["layers.0.mlp"]) == ["model.layers.0.mlp.gate_proj", "model.layers.0.mlp.up_proj", "model.layers.0.mlp.down_proj"]
