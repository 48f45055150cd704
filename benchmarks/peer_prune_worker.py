"""The llm-compressor side of benchmarks/peer_prune.py; runs inside the peer's own venv
(benchmarks/.peers/llm-compressor), never in ours, and imports nothing of scalecompress.

    python peer_prune_worker.py MODEL_DIR TOKENS.safetensors OUT.safetensors {wanda|sparsegpt} SPARSITY

Prunes the plain transformers checkpoint MODEL_DIR with llm-compressor's WandaPruningModifier or
SparseGPTModifier on exactly the calibration token ids in TOKENS.safetensors ("input_ids",
[samples, seq_len]), writes the pruned weights (dense, safetensors) to OUT and prints one JSON
line {"seconds": ..., "versions": {...}} (the time of `oneshot` itself).
"""

import json
import sys
import time

import torch
from safetensors.torch import load_file, save_file


def main() -> None:
    model_dir, tokens_path, out_path, method, sparsity = sys.argv[1:6]
    import importlib.metadata

    from datasets import Dataset
    from llmcompressor import oneshot
    from llmcompressor.modifiers.pruning import SparseGPTModifier, WandaPruningModifier
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    tokens = load_file(tokens_path)["input_ids"]
    dataset = Dataset.from_dict({"input_ids": tokens.tolist(), "attention_mask": torch.ones_like(tokens).tolist()})
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    modifier = {"wanda": WandaPruningModifier, "sparsegpt": SparseGPTModifier}[method]
    recipe = modifier(sparsity=float(sparsity), targets=["Linear"], ignore=["re:.*lm_head"])
    start = time.perf_counter()
    oneshot(
        model=model,
        tokenizer=tokenizer,
        dataset=dataset,
        recipe=recipe,
        num_calibration_samples=len(tokens),
        max_seq_length=tokens.shape[1],
        shuffle_calibration_samples=False,
    )
    seconds = time.perf_counter() - start
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items() if not k.endswith("lm_head.weight") or not model.config.tie_word_embeddings}
    save_file(state, out_path)
    versions = {name: importlib.metadata.version(name) for name in ("llmcompressor", "compressed-tensors", "torch", "transformers")}
    print(json.dumps({"seconds": seconds, "versions": versions}))


if __name__ == "__main__":
    main()
