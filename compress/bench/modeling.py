"""What the benchmark needs to know about any model: causal or not, context limit, device.

    >>> from transformers import LlamaConfig, LlamaForCausalLM
    >>> model = LlamaForCausalLM(LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
    ...     num_attention_heads=2, num_key_value_heads=2, vocab_size=64, max_position_embeddings=96))
    >>> is_causal_lm(model), max_positions(model), model_device(model)
    (True, 96, 'cpu')
"""

from __future__ import annotations

import torch

_POSITION_KEYS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "n_ctx", "max_sequence_length")


def max_positions(model) -> int | None:
    """The longest sequence the model accepts, from its config; None when it states none."""
    config = getattr(model, "config", None)
    for key in _POSITION_KEYS:
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def is_causal_lm(model) -> bool:
    """True for decoder-only language models (GPT-2, LLaMA, ...); False for encoders and seq2seq."""
    config = getattr(model, "config", None)
    if getattr(config, "is_encoder_decoder", False):
        return False
    by_name = type(model).__name__.endswith(("ForCausalLM", "LMHeadModel"))
    can_generate = getattr(model, "can_generate", None)
    if not callable(can_generate):
        return by_name
    try:
        return bool(can_generate())
    except Exception:  # noqa: BLE001 - a model that cannot answer is judged by its class name
        return by_name


def model_device(model) -> str:
    """'cuda' or 'cpu': where the model's first parameter (or buffer) lives."""
    for tensor in list(model.parameters())[:1] + list(model.buffers())[:1]:
        return "cuda" if tensor.device.type == "cuda" else tensor.device.type
    return "cpu"


def input_device(model) -> torch.device:
    """Device for input ids: the input embedding's device (right for accelerate device maps too)."""
    try:
        return model.get_input_embeddings().weight.device
    except (AttributeError, NotImplementedError):
        return next(model.parameters()).device


def logits_of(output) -> torch.Tensor:
    """Logits from a model output object or tuple."""
    logits = getattr(output, "logits", None)
    return logits if logits is not None else output[0]


def cache_argument(model) -> str:
    """Name of the KV-cache argument of `model.forward`: 'cache' (transformers ≥ 5.2x) or 'past_key_values'."""
    import inspect

    try:
        parameters = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        parameters = {}
    if "cache" in parameters:
        return "cache"
    return "past_key_values"


def cache_of(output):
    """The KV cache a forward pass returned (None when the model returned none)."""
    for name in ("cache", "past_key_values"):
        cache = getattr(output, name, None)
        if cache is not None:
            return cache
    return None


def last_logits_only(model) -> dict:
    """Forward kwargs that compute logits for the last position only, where the model supports it.

    A prompt's full [batch, tokens, vocab] logits can be hundreds of MB for 150k-token vocabularies;
    `generate` asks for the last position only, and so do we when only that one is used.
    """
    import inspect

    try:
        parameters = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return {}
    return {"logits_to_keep": 1} if "logits_to_keep" in parameters else {}
