"""Fixtures for benchmark tests: a byte-level BPE tokenizer trained in a second, tiny models."""

from __future__ import annotations

import pytest
import torch

VOCAB = 384


def train_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from compress.data.plays import split_text

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=["<|endoftext|>"]
    )
    tokenizer.train_from_iterator([split_text("validation")[:120_000]], trainer)
    # No pad token on purpose: real GPT-2/LLaMA tokenizers often have none.
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|endoftext|>", bos_token="<|endoftext|>")


@pytest.fixture(scope="session")
def tokenizer():
    return train_tokenizer()


def make_llama(vocab: int = VOCAB, hidden: int = 32, layers: int = 2, positions: int = 256, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=positions, tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config).eval()


def make_gpt2(vocab: int = VOCAB, hidden: int = 32, layers: int = 2, positions: int = 256, seed: int = 0):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=vocab, n_embd=hidden, n_layer=layers, n_head=2, n_positions=positions, bos_token_id=0, eos_token_id=0)
    return GPT2LMHeadModel(config).eval()


@pytest.fixture(name="make_llama")
def _make_llama_fixture():
    return make_llama


@pytest.fixture(name="make_gpt2")
def _make_gpt2_fixture():
    return make_gpt2


@pytest.fixture(name="small")
def _small_settings():
    return dict(SMALL)


@pytest.fixture
def llama():
    return make_llama()


@pytest.fixture
def gpt2():
    return make_gpt2()


@pytest.fixture
def one_thread():
    # The shared 2-core machine is busy; one thread avoids spin-waiting on a stolen core.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# Settings small enough for a test to take a second or two.
SMALL = {
    "max_eval_tokens": 1024,
    "window": 128,
    "choice_items": 40,
    "prompt_tokens": 16,
    "new_tokens": 4,
    "repeats": 2,
    "warmup": 1,
}
