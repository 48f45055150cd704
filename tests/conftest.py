"""Shared fixtures: offline Hub, a private cache, tiny models built from configs."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    # Tests never touch the user's cache; one cache per test session keeps ladders reusable.
    monkeypatch.setenv("SCALECOMPRESS_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def tiny_llama(vocab_size: int = 128, hidden: int = 64, intermediate: int = 128, layers: int = 2, tie: bool = True):
    import transformers

    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=tie,
    )
    return transformers.AutoModelForCausalLM.from_config(config).eval()


def tiny_gpt2(vocab_size: int = 128, hidden: int = 64, layers: int = 2):
    import transformers

    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=vocab_size, n_embd=hidden, n_layer=layers, n_head=4, n_positions=256, bos_token_id=0, eos_token_id=0)
    return transformers.AutoModelForCausalLM.from_config(config).eval()


@pytest.fixture
def llama_model():
    return tiny_llama()


@pytest.fixture
def gpt2_model():
    return tiny_gpt2()


@pytest.fixture
def llama_dir(tmp_path, llama_model):
    from compress.checkpoint import save

    return save(llama_model, tmp_path / "tiny-llama")


@pytest.fixture
def gpt2_dir(tmp_path, gpt2_model):
    from compress.checkpoint import save

    return save(gpt2_model, tmp_path / "tiny-gpt2")
