"""Which norm (or linear) feeds which linears, per architecture, and how to fold a per-channel
scale between them so the network computes exactly the same function.

AWQ and SmoothQuant both multiply the input channels of a group of linears by `s` and divide
the output of whatever produced those channels by `s`. That is free at inference only when
the producer is a norm (scale its weight and bias) or a linear (scale its output rows), with
nothing non-linear in between: LLaMA's `input_layernorm -> q/k/v`, `v_proj -> o_proj`
(attention is linear in V), `up_proj -> down_proj` (SiLU(gate) * up is linear in up). A fused
producer contributes only the rows that feed the group: GPT-2's `c_attn` emits q | k | v, and
only its value third feeds `attn.c_proj`.

    >>> import transformers
    >>> config = transformers.LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32,
    ...     num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2)
    >>> block = transformers.AutoModelForCausalLM.from_config(config).model.layers[0]
    >>> [(group.smooth, group.balance) for group in block_mappings(block)][:2]
    [('input_layernorm', ('self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj')), ('self_attn.v_proj', ('self_attn.o_proj',))]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from compress.errors import UserError
from compress.formats.dense import is_transposed, weight_matrix


@dataclass(frozen=True)
class Mapping:
    """`smooth` (a norm or linear, relative to the block) produces the inputs of `balance`."""

    smooth: str
    balance: tuple[str, ...]
    rows: str | None = None  # which outputs of a linear `smooth` feed `balance`: None = all; "last_third" = v of a fused q | k | v


@dataclass
class ResolvedMapping:
    """A mapping found in one block: names and the modules themselves."""

    smooth: str
    balance: tuple[str, ...]
    smooth_module: nn.Module
    balance_modules: tuple[nn.Module, ...]
    rows: slice = field(default_factory=lambda: slice(None))  # the producer's outputs that are the balance linears' inputs

    @property
    def channels(self) -> int:
        return _in_features(self.balance_modules[0])

    @property
    def producer_is_norm(self) -> bool:
        """True when a norm (not a linear) produces the inputs: SmoothQuant smooths only these."""
        return not _is_linear(self.smooth_module)


_LLAMA = (
    Mapping("input_layernorm", ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")),
    Mapping("self_attn.v_proj", ("self_attn.o_proj",)),  # kept only where v's outputs are o's inputs (no GQA)
    Mapping("post_attention_layernorm", ("mlp.gate_proj", "mlp.up_proj")),
    Mapping("mlp.up_proj", ("mlp.down_proj",)),
)
_OPT = (
    Mapping("self_attn_layer_norm", ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")),
    Mapping("self_attn.v_proj", ("self_attn.out_proj",)),
    Mapping("final_layer_norm", ("fc1",)),
)
_GPT2 = (  # Conv1D layers: weight is (in, out)
    Mapping("ln_1", ("attn.c_attn",)),
    Mapping("attn.c_attn", ("attn.c_proj",), rows="last_third"),  # v -> attention output, as LLaMA's v -> o
    Mapping("ln_2", ("mlp.c_fc",)),
)
_GPT_NEOX = (  # also exact with Pythia's parallel residual: each norm feeds only its branch
    Mapping("input_layernorm", ("attention.query_key_value",)),
    Mapping("post_attention_layernorm", ("mlp.dense_h_to_4h",)),
)

# block class -> (model_type named in messages, mappings)
ARCHITECTURES: dict[str, tuple[str, tuple[Mapping, ...]]] = {
    "LlamaDecoderLayer": ("llama", _LLAMA),
    "Qwen2DecoderLayer": ("qwen2", _LLAMA),
    "MistralDecoderLayer": ("mistral", _LLAMA),
    "OPTDecoderLayer": ("opt", _OPT),
    "GPT2Block": ("gpt2", _GPT2),
    "GPTNeoXLayer": ("gpt_neox", _GPT_NEOX),
}


def supported_architectures() -> list[str]:
    """Model types with norm -> linear mappings, e.g. for error messages."""
    return sorted({model_type for model_type, _ in ARCHITECTURES.values()})


def block_mappings(block: nn.Module, *, pass_name: str = "awq") -> list[ResolvedMapping]:
    """The mappings of one Transformer block, resolved to its modules.

    A linear -> linear mapping is dropped where the shapes do not line up (v -> o under
    grouped-query attention, where one value channel feeds several heads).
    """
    kind = type(block).__name__
    if kind not in ARCHITECTURES:
        raise UserError(
            f"{pass_name}: no norm -> linear mappings for blocks of type {kind}; supported architectures: "
            f"{', '.join(supported_architectures())}. Use rtn or gptq for this model"
        )
    if kind == "OPTDecoderLayer" and not getattr(block, "do_layer_norm_before", True):
        raise UserError(f"{pass_name}: this OPT model applies its layer norms after attention (do_layer_norm_before=false), so scales cannot be folded into them; use rtn or gptq")
    resolved = []
    for mapping in ARCHITECTURES[kind][1]:
        smooth = block.get_submodule(mapping.smooth)
        balance = tuple(block.get_submodule(name) for name in mapping.balance)
        channels = {_in_features(module) for module in balance}
        produced = _out_features(smooth) if _is_linear(smooth) else smooth.weight.shape[0]
        rows = slice(None)
        if mapping.rows == "last_third":
            rows, produced = slice(2 * produced // 3, produced), produced // 3
        if len(channels) != 1 or produced not in channels:
            continue
        resolved.append(ResolvedMapping(mapping.smooth, mapping.balance, smooth, balance, rows))
    return resolved


@torch.no_grad()
def fold_scales(mapping: ResolvedMapping, scales: torch.Tensor) -> None:
    """Divide what `mapping.smooth` produces by `scales` and multiply the inputs of its linears.

    For a norm: weight (and bias) / s. For a linear producer: its output rows (and bias) / s,
    only those in `mapping.rows` for a fused producer.
    For each balance linear: input column j * s_j. The block's function is unchanged.
    """
    scales = scales.detach().to(torch.float64)
    if scales.dim() != 1 or scales.numel() != mapping.channels or not bool((scales > 0).all()):
        raise ValueError(f"fold_scales: need {mapping.channels} positive scales, got shape {tuple(scales.shape)}")
    smooth = mapping.smooth_module
    if _is_linear(smooth):
        _scale_output(smooth, 1.0 / scales, mapping.rows)
    else:
        smooth.weight.copy_((smooth.weight.double() / scales).to(smooth.weight.dtype))
        if getattr(smooth, "bias", None) is not None:
            smooth.bias.copy_((smooth.bias.double() / scales).to(smooth.bias.dtype))
    for module in mapping.balance_modules:
        _scale_input(module, scales)


def _is_linear(module: nn.Module) -> bool:
    return isinstance(module, nn.Linear) or is_transposed(module)


def _in_features(module: nn.Module) -> int:
    return weight_matrix(module).shape[1]


def _out_features(module: nn.Module) -> int:
    return weight_matrix(module).shape[0]


def _scale_input(module: nn.Module, scales: torch.Tensor) -> None:
    weight = weight_matrix(module)
    weight.copy_((weight.double() * scales[None, :]).to(weight.dtype))


def _scale_output(module: nn.Module, scales: torch.Tensor, rows: slice = slice(None)) -> None:
    weight = weight_matrix(module)[rows]  # a view: writes go through
    weight.copy_((weight.double() * scales[:, None]).to(weight.dtype))
    if module.bias is not None:
        bias = module.bias[rows]
        bias.copy_((bias.double() * scales).to(bias.dtype))
