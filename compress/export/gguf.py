"""GGUF export (llama.cpp and everything built on it), written with the `gguf` package.

Architectures: LLaMA-family (`llama`, also Mistral-shaped checkpoints without sliding window)
and GPT-2. Tensor names come from gguf's own `TensorNameMap`; LLaMA's q/k rows are permuted
the way llama.cpp's converter does (rows only, so block codes move whole).

Tensor types (`gguf_type`), blocks of 32 along each row:

| type | a block stores              | our codes that re-encode exactly                 |
|------|-----------------------------|--------------------------------------------------|
| F16  | fp16 weights                | -                                                |
| Q8_0 | d (fp16), int8 q: q * d     | 8-bit symmetric, group size a multiple of 32     |
| Q4_0 | d, 4-bit q: (q - 8) * d     | 4-bit symmetric, group size a multiple of 32     |
| Q4_1 | d, m (fp16), q: q * d + m   | 4-bit asymmetric, group size a multiple of 32    |

Re-encoded layers keep our codes and scales bit for bit; Q4_1's `m = -zero * scale` is rounded
to fp16, and the export reports the largest weight difference that rounding causes. Every
other layer is re-quantized by `gguf.quants.quantize` from our (dequantized) weights, and the
export reports the relative error it adds per tensor. `auto` picks the exact type per layer
(Q8_0 re-quantized where none exists) and F16 for dense matrices. Norms and biases stay F32;
a matrix whose rows are not a multiple of 32 is written F16 (as llama.cpp's converter does).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from compress.errors import UserError
from compress.export.common import dense_weight
from compress.formats.base import PackedModule
from compress.formats.quantized_linear import QuantizedLinear

FORMAT_NAME = "gguf"
TYPES = ("auto", "F16", "Q8_0", "Q4_0", "Q4_1")
BLOCK = 32
ARCHITECTURES = {"llama": "LLAMA", "mistral": "LLAMA", "gpt2": "GPT2"}


def _qtype(name: str):
    import gguf

    return gguf.GGMLQuantizationType[name]


def exact_type(module: nn.Module) -> str | None:
    """The GGUF type that holds this packed layer's codes exactly, or None."""
    if not isinstance(module, QuantizedLinear) or module.in_features % BLOCK:
        return None
    if module.group_size is not None and module.group_size < module.in_features and module.group_size % BLOCK:
        return None
    if module.bits == 4:
        return "Q4_0" if module.symmetric else "Q4_1"
    if module.bits == 8 and module.symmetric:
        return "Q8_0"
    return None


def reencode(module: QuantizedLinear, qtype: str) -> tuple[np.ndarray, float]:
    """Our codes as GGUF blocks (uint8 bytes, (out, blocks * block bytes)) and the largest
    weight difference the encoding adds (fp16 rounding of Q4_1's m; 0 for Q4_0 and Q8_0)."""
    out_features, in_features = module.out_features, module.in_features
    blocks = in_features // BLOCK
    codes = module.codes().reshape(out_features, blocks, BLOCK)
    column = torch.arange(blocks) * BLOCK
    group = column // module.group_size if module.group_size is not None and module.group_size < in_features else torch.zeros_like(column)
    scale = module.scales.float()[:, group]  # (out, blocks), fp16 values
    d = scale.half().numpy().view(np.uint8).reshape(out_features, blocks, 2)
    if qtype == "Q8_0":
        qs = (codes.to(torch.int16) - 128).to(torch.int8).numpy().view(np.uint8)
        return np.concatenate([d, qs], axis=-1).reshape(out_features, -1), 0.0
    qs = (codes[..., :16] | (codes[..., 16:] << 4)).numpy()
    if qtype == "Q4_0":
        return np.concatenate([d, qs], axis=-1).reshape(out_features, -1), 0.0
    zero = module.zeros.float()[:, group]
    exact_m = -zero.double() * scale.double()
    m16 = exact_m.half()
    error = float((m16.double() - exact_m).abs().max()) if m16.numel() else 0.0
    m = m16.numpy().view(np.uint8).reshape(out_features, blocks, 2)
    return np.concatenate([d, m, qs], axis=-1).reshape(out_features, -1), error


def _encode(weight: torch.Tensor, qtype: str) -> np.ndarray:
    import gguf

    if qtype == "F32":
        return weight.float().numpy()
    if qtype == "F16":
        return weight.half().numpy()
    return gguf.quants.quantize(weight.float().numpy(), _qtype(qtype))


def _relative_error(encoded: np.ndarray, qtype: str, reference: torch.Tensor) -> float:
    import gguf

    restored = torch.from_numpy(np.asarray(gguf.quants.dequantize(encoded, _qtype(qtype)), dtype=np.float32)).reshape(reference.shape)
    return float((restored - reference.float()).norm() / reference.float().norm().clamp_min(1e-30))


def _permute(weight: torch.Tensor, heads: int) -> torch.Tensor:
    """llama.cpp's q/k row order (convert_hf_to_gguf's `permute`); rows only."""
    return weight.reshape(heads, 2, weight.shape[0] // heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def _permute_rows(array: np.ndarray, heads: int) -> np.ndarray:
    return array.reshape(heads, 2, array.shape[0] // heads // 2, *array.shape[1:]).swapaxes(1, 2).reshape(array.shape)


def refusal(model: nn.Module) -> str | None:
    if any(getattr(m, "format_name", "") == "packed_embedding" for m in model.modules()):
        return "the model holds a packed embedding (rtn head/embedding), which this GGUF writer cannot express yet; use --format hf, or quantize without rtn's head/embedding settings"
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    if model_type not in ARCHITECTURES:
        return f"architecture {model_type!r} is not supported for GGUF (supported: {', '.join(sorted(ARCHITECTURES))}); use --format compressed-tensors or --format hf"
    if model_type == "mistral" and getattr(config, "sliding_window", None):
        return "Mistral with a sliding window is not supported for GGUF yet; use --format compressed-tensors or --format hf"
    return None


def write(model: nn.Module, path: Path, *, tokenizer: Any = None, gguf_type: str = "auto", progress: bool = False) -> dict[str, Any]:
    """Write one GGUF file at `path`; returns details (types per tensor, reported errors)."""
    import gguf

    if gguf_type not in TYPES:
        raise UserError(f"export: --gguf-type {gguf_type!r} is not supported; allowed: {', '.join(TYPES)}")
    reason = refusal(model)
    if reason:
        raise UserError(f"export: cannot write GGUF: {reason}")
    config = model.config
    arch = getattr(gguf.MODEL_ARCH, ARCHITECTURES[config.model_type])
    writer = gguf.GGUFWriter(str(path), gguf.MODEL_ARCH_NAMES[arch])
    _write_metadata(writer, config)
    vocab_note = _write_tokenizer(writer, tokenizer, config)
    details = _write_tensors(writer, model, arch, gguf_type)
    details["tokenizer"] = vocab_note
    details["gguf_type"] = gguf_type
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file(progress=progress)
    writer.close()
    return details


def _write_metadata(writer, config) -> None:
    writer.add_name(str(getattr(config, "_name_or_path", "") or config.model_type))
    writer.add_file_type(1)  # MOSTLY_F16; llama.cpp reads each tensor's own type
    writer.add_quantization_version(2)
    if config.model_type == "gpt2":
        writer.add_context_length(config.n_positions)
        writer.add_embedding_length(config.n_embd)
        writer.add_feed_forward_length(config.n_inner or 4 * config.n_embd)
        writer.add_block_count(config.n_layer)
        writer.add_head_count(config.n_head)
        writer.add_layer_norm_eps(config.layer_norm_epsilon)
        return
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    writer.add_vocab_size(config.vocab_size)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(getattr(config, "num_key_value_heads", None) or config.num_attention_heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_dimension_count(head_dim)
    rope = getattr(config, "rope_parameters", None) or {}
    theta = rope.get("rope_theta") if isinstance(rope, dict) else None
    writer.add_rope_freq_base(float(theta or getattr(config, "rope_theta", 10000.0)))
    if head_dim * config.num_attention_heads != config.hidden_size:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)


def _write_tensors(writer, model: nn.Module, arch, gguf_type: str) -> dict[str, Any]:
    import gguf

    config = model.config
    blocks = config.n_layer if config.model_type == "gpt2" else config.num_hidden_layers
    names = gguf.get_tensor_name_map(arch, blocks)
    modules = dict(model.named_modules())
    exact: dict[str, float] = {}
    requantized: dict[str, float] = {}
    types: dict[str, str] = {}
    from compress.saving import tied_names

    aliases = set(tied_names(model))  # a tied head is token_embd again: llama.cpp and transformers reuse it
    state = {k: v for k, v in model.state_dict().items() if v is not None and k not in aliases}
    seen: set[str] = set()
    for key in list(state):
        owner, _, leaf = key.rpartition(".")
        module = modules.get(owner)
        if isinstance(module, PackedModule):
            if owner in seen:
                continue
            seen.add(owner)
            entries = [(f"{owner}.weight", None, module)] + ([(f"{owner}.bias", module.bias.detach(), None)] if getattr(module, "bias", None) is not None else [])
        else:
            tensor = state[key]
            if config.model_type == "gpt2" and type(module).__name__ == "Conv1D" and leaf == "weight":
                tensor = tensor.t()
            entries = [(key, tensor, None)]
        for hf_name, tensor, packed in entries:
            if hf_name.endswith((".attn.bias", ".attn.masked_bias", "rotary_emb.inv_freq")):
                continue
            name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
            if name is None:
                raise UserError(f"export: GGUF has no name for tensor {hf_name!r} of a {config.model_type} model")
            if name in types:
                continue  # tied output: llama.cpp reuses token_embd
            heads = None
            if config.model_type != "gpt2" and name.endswith(("attn_q.weight", "attn_k.weight")):
                heads = config.num_attention_heads if "attn_q" in name else (getattr(config, "num_key_value_heads", None) or config.num_attention_heads)
            types[name] = _add(writer, name, tensor, packed, gguf_type, heads, exact, requantized)
    errors = list(requantized.values())
    return {
        "tensor_types": types,
        "reencoded_exactly": sorted(exact),
        "max_reencode_weight_difference": max(exact.values(), default=0.0),
        "requantized": requantized,
        "max_requantization_relative_error": max(errors, default=0.0),
        "mean_requantization_relative_error": sum(errors) / len(errors) if errors else 0.0,
    }


def _add(writer, name: str, tensor, packed, gguf_type: str, heads: int | None, exact: dict, requantized: dict) -> str:
    if packed is not None and gguf_type in ("auto", exact_type(packed)) and exact_type(packed) is not None:
        qtype = exact_type(packed)
        encoded, difference = reencode(packed, qtype)
        if heads:
            encoded = _permute_rows(encoded, heads)
        writer.add_tensor(name, encoded, raw_dtype=_qtype(qtype))
        exact[name] = difference
        return qtype
    weight = dense_weight(packed) if packed is not None else tensor.detach().float()
    if heads:
        weight = _permute(weight, heads)
    if weight.dim() < 2:
        writer.add_tensor(name, weight.float().numpy())
        return "F32"
    qtype = gguf_type
    if qtype == "auto":
        qtype = "Q8_0" if packed is not None else "F16"
    if qtype != "F16" and weight.shape[-1] % BLOCK:
        qtype = "F16"
    encoded = _encode(weight, qtype)
    if qtype == "F16":
        writer.add_tensor(name, encoded)
    else:
        writer.add_tensor(name, encoded, raw_dtype=_qtype(qtype))
    if packed is not None or qtype != "F16":
        requantized[name] = round(_relative_error(encoded, qtype, weight) if qtype != "F16" else float((weight.half().float() - weight).norm() / weight.norm().clamp_min(1e-30)), 8)
    return qtype


# ---------------------------------------------------------------------------------------------
# Tokenizer: what llama.cpp needs to load the file (token list, types, merges, special ids).


def _write_tokenizer(writer, tokenizer, config) -> str:
    import gguf

    if tokenizer is None or not getattr(tokenizer, "is_fast", False):
        _placeholder_vocab(writer, config)
        return "no tokenizer: placeholder tokens only (llama.cpp runs on token ids)"
    with tempfile.TemporaryDirectory() as folder:
        tokenizer.save_pretrained(folder)
        document = json.loads((Path(folder) / "tokenizer.json").read_text())
        model = document.get("model", {})
        if model.get("type") != "BPE":
            _placeholder_vocab(writer, config)
            return f"tokenizer model {model.get('type')!r} is not exported (BPE only); llama.cpp runs on token ids"
        byte_level = "ByteLevel" in json.dumps(document.get("pre_tokenizer")) or "ByteLevel" in json.dumps(document.get("decoder"))
        vocab = tokenizer.get_vocab()
        size = max(config.vocab_size, max(vocab.values()) + 1)
        tokens = [f"[PAD{i}]" for i in range(size)]
        for token, index in vocab.items():
            tokens[index] = token
        special = set(tokenizer.all_special_ids)
        added = {t.get("id") for t in document.get("added_tokens", [])}
        types = []
        for index, token in enumerate(tokens):
            if index in special:
                types.append(gguf.TokenType.CONTROL)
            elif index in added:
                types.append(gguf.TokenType.USER_DEFINED)
            elif token.startswith("[PAD") and index not in vocab.values():
                types.append(gguf.TokenType.UNUSED)
            elif not byte_level and len(token) == 6 and token.startswith("<0x") and token.endswith(">"):
                types.append(gguf.TokenType.BYTE)
            else:
                types.append(gguf.TokenType.NORMAL)
        writer.add_tokenizer_model("gpt2" if byte_level else "llama")
        if byte_level:
            writer.add_tokenizer_pre("default")
        writer.add_token_list(tokens)
        writer.add_token_types(types)
        if not byte_level:
            writer.add_token_scores([-float(i) for i in range(len(tokens))])
        special_vocab = gguf.SpecialVocab(folder, load_merges=byte_level, n_vocab=len(tokens))
        special_vocab.add_to_gguf(writer, quiet=True)
    return f"{'byte-level BPE (gpt2)' if byte_level else 'BPE with byte fallback (llama)'}, {len(tokens)} tokens"


def _placeholder_vocab(writer, config) -> None:
    """No usable tokenizer: llama.cpp's 'none' vocabulary, with placeholder tokens so readers that
    count tokens (transformers' GGUF loader takes GPT-2's vocab size from them) see the size."""
    import gguf

    writer.add_tokenizer_model("none")
    writer.add_token_list([f"[TOKEN{i}]" for i in range(config.vocab_size)])
    writer.add_token_types([gguf.TokenType.NORMAL] * config.vocab_size)
