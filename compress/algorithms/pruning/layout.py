"""Where the parts of a decoder live, per architecture, for the passes that change shapes or
remove blocks (`structured`, `depth`): the block list, the attention and MLP projections, and
the config fields that describe their sizes.

    >>> import transformers
    >>> config = transformers.LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32,
    ...     num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1)
    >>> model = transformers.AutoModelForCausalLM.from_config(config)
    >>> layout = decoder_layout(model, "structured")
    >>> layout.family, layout.path, len(layout.layers)
    ('llama', 'model.layers', 2)
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from compress.errors import UserError

# model_type -> family. LLaMA-like: separate q/k/v/o and a gated gate/up/down MLP.
LLAMA_LIKE = ("llama", "mistral", "qwen2", "qwen3")
# Blocks can be removed from any of these (depth pruning).
BLOCK_LISTS = {**{name: "model.layers" for name in LLAMA_LIKE}, "gpt2": "transformer.h", "gpt_neox": "gpt_neox.layers", "opt": "model.decoder.layers"}


@dataclass
class DecoderLayout:
    """The block list of a model and, for LLaMA-like models, the names inside each block."""

    family: str
    path: str  # dotted path of the ModuleList of blocks
    layers: nn.ModuleList
    attention: str = "self_attn"
    mlp: str = "mlp"


def decoder_layout(model: nn.Module, pass_name: str, *, width: bool = False) -> DecoderLayout:
    """The layout of `model`, or a UserError naming the architectures `pass_name` supports.

    `width=True` asks for a LLaMA-like model (what structured width pruning can rewrite).
    """
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    supported = LLAMA_LIKE if width else tuple(BLOCK_LISTS)
    if model_type not in supported:
        raise UserError(
            f"pass {pass_name!r} supports {', '.join(supported)} models; this one is "
            f"{model_type or type(model).__name__}. Use unstructured passes (wanda, sparsegpt, magnitude) for other architectures"
        )
    path = BLOCK_LISTS[model_type]
    try:
        layers = model.get_submodule(path)
    except AttributeError:
        layers = None
    if not isinstance(layers, nn.ModuleList) or not len(layers):
        raise UserError(f"pass {pass_name!r}: a {model_type} causal LM has its blocks at {path!r}; {type(model).__name__} does not (load it as a causal LM)")
    return DecoderLayout(family="llama" if model_type in LLAMA_LIKE else model_type, path=path, layers=layers)
