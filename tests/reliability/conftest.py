"""Fixtures for the reliability tests: one tiny checkpoint with a tokenizer, a tiny bench, a CLI runner."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

# Perplexity only, on a few windows: a job takes well under a second.
TINY_BENCH = {"tasks": ["perplexity"], "max_eval_tokens": 64, "window": 16, "eval_batch_size": 4, "threads": 1}


def build_checkpoint(folder: Path, *, gpt2: bool = False) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from compress.checkpoint import save

    # Byte-level, no merges: built instantly (training a BPE takes a minute on a busy machine).
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    bpe = Tokenizer(models.BPE(vocab={char: index for index, char in enumerate(alphabet)}, merges=[]))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.add_special_tokens(["<|endoftext|>"])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", bos_token="<|endoftext|>")
    torch.manual_seed(0)
    if gpt2:
        model = GPT2LMHeadModel(GPT2Config(vocab_size=300, n_embd=32, n_layer=1, n_head=2, n_positions=64, bos_token_id=0, eos_token_id=0))
    else:
        model = LlamaForCausalLM(LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                             num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64))
    return save(model.eval(), folder, tokenizer=tokenizer)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A LLaMA-style checkpoint with its tokenizer. Read-only: copy it before changing anything."""
    return build_checkpoint(tmp_path_factory.mktemp("reliability") / "tiny-llama")


@pytest.fixture
def tiny_copy(tiny_checkpoint, tmp_path) -> Path:
    return Path(shutil.copytree(tiny_checkpoint, tmp_path / "copy" / tiny_checkpoint.name))


def tree_digest(folder: Path) -> dict[str, str]:
    """Every file under a folder (links not followed) and a hash of its bytes."""
    digest = {}
    for path in sorted(Path(folder).rglob("*")):
        if path.is_symlink():
            digest[str(path.relative_to(folder))] = "link:" + str(path.readlink())
        elif path.is_file():
            digest[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digest


def cli(capsys, *args):
    from compress.cli import main

    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err
