"""Our `gptq` against llm-compressor's GPTQ (W4A16, asymmetric, group 64), in one run.

Both sides get the same model file, the same calibration tokens and the same evaluation
windows on this machine, one after the other, with the same thread count. llm-compressor runs
in its own virtual environment (benchmarks/.peers/llm-compressor; created here when missing:
torch==2.13.0 first, then llmcompressor), never as a dependency of this package.

Models: a trained pocket member (default: the largest cached member of the pocket ladder;
or `--model PATH`), and a randomly initialised LLaMA shaped like SmolLM2-135M (hidden 576,
30 layers, intermediate 1536, 9 heads / 3 KV heads, vocab 49152, tied embeddings).
Recorded: perplexity of each side on the same windows of the test plays (ratio ours/peer), and
calibration wall time (the `oneshot` call against our `compress.apply`; ratio ours/peer).
Acceptance (issue 8): perplexity ratio <= 1.01 on the trained model; time ratio <= 1 on both.

    SCALECOMPRESS_CACHE=/work/cache python benchmarks/peer_gptq.py
    python benchmarks/peer_gptq.py --model PATH --skip-135m
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".peers" / "llm-compressor"
SMOLLM2_135M = {
    "hidden_size": 576, "num_hidden_layers": 30, "intermediate_size": 1536, "num_attention_heads": 9,
    "num_key_value_heads": 3, "vocab_size": 49152, "tie_word_embeddings": True, "max_position_embeddings": 2048,
}


def mean_nll(model, windows) -> float:
    """Mean next-token NLL (nats) over windows [n, L]: every token but each window's first predicted."""
    import torch
    import torch.nn.functional as F

    total, count = 0.0, 0
    with torch.no_grad():
        for row in windows.split(8):
            logits = model(input_ids=row, use_cache=False).logits[:, :-1].float()
            total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), row[:, 1:].reshape(-1), reduction="sum"))
            count += row[:, 1:].numel()
    return total / count


def peer_worker(args) -> None:
    """Runs inside the llm-compressor venv: oneshot GPTQ, then the NLL on the evaluation windows."""
    import torch
    from datasets import Dataset
    from llmcompressor import oneshot
    from llmcompressor.modifiers.quantization import GPTQModifier
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(args.threads)
    data = load_file(args.tokens)
    calibration, windows = data["calibration"], data["eval"]
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
    dataset = Dataset.from_dict({"input_ids": calibration.tolist(), "attention_mask": torch.ones_like(calibration).tolist()})
    weights = {"num_bits": 4, "type": "int", "symmetric": False, "strategy": "group", "group_size": args.group_size}
    recipe = GPTQModifier(config_groups={"group_0": {"targets": ["Linear"], "weights": weights}}, ignore=["lm_head"], block_size=128, dampening_frac=0.01)
    start = time.perf_counter()
    oneshot(model=model, dataset=dataset, recipe=recipe, num_calibration_samples=len(calibration), max_seq_length=calibration.shape[1],
            shuffle_calibration_samples=False, batch_size=args.batch_size)
    seconds = time.perf_counter() - start
    Path(args.out).write_text(json.dumps({"seconds": seconds, "nll": mean_nll(model, windows), "actorder": "static (llm-compressor default)"}))


def save_placeholder_tokenizer(folder: Path) -> None:
    """The calibration ids are given directly, but llm-compressor's oneshot refuses a dataset without a
    processor in the model folder: write a one-word tokenizer that is never used to encode anything."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"<unk>": 0}, unk_token="<unk>")), unk_token="<unk>").save_pretrained(folder)


def ensure_venv() -> Path:
    python = VENV / "bin" / "python"
    if python.exists() and subprocess.run([str(python), "-c", "import llmcompressor"], capture_output=True, check=False).returncode == 0:
        return python
    print(f"creating {VENV} (torch==2.13.0, then llmcompressor)", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "torch==2.13.0"], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "llmcompressor"], check=True)
    return python


def compare(name: str, model_dir: Path, calibration, windows, python: Path, args, group_size: int, work: Path) -> dict:
    from safetensors.torch import save_file

    import compress
    from compress.core.context import DataConfig
    from compress.passes import GPTQConfig

    tokens = work / f"{name}-tokens.safetensors"
    save_file({"calibration": calibration.contiguous(), "eval": windows.contiguous()}, str(tokens))
    out = work / f"{name}-peer.json"
    threads, batch_size = args.threads, args.batch_size
    command = [str(python), __file__, "--peer-worker", "--model-dir", str(model_dir), "--tokens", str(tokens), "--out", str(out),
               "--threads", str(threads), "--batch-size", str(batch_size), "--group-size", str(group_size)]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""}, check=False)
    if done.returncode != 0:
        sys.exit(f"llm-compressor failed on {name}: {done.stderr[-3000:]}")
    peer = json.loads(out.read_text())
    ours = {}
    for act_order in (True, False) if args.both_orders else (True,):
        model = compress.load(model_dir).model
        start = time.perf_counter()
        compress.apply(model, [GPTQConfig(bits=4, group_size=group_size, symmetric=False, act_order=act_order)], calibration,
                       data_config=DataConfig(batch_size=batch_size), progress=False)
        ours["act_order" if act_order else "no_act_order"] = {"seconds": time.perf_counter() - start, "nll": mean_nll(model, windows)}
    dense = compress.load(model_dir).model
    dense_nll = mean_nll(dense, windows)
    matched = ours["act_order"]  # llm-compressor's default is static activation ordering: compare like with like
    result = {
        "model": name, "group_size": group_size, "calibration": f"{calibration.shape[0]}x{calibration.shape[1]}", "eval_tokens": int(windows[:, 1:].numel()),
        "dense_perplexity": math.exp(dense_nll), "peer_perplexity": math.exp(peer["nll"]),
        "ours_perplexity": math.exp(matched["nll"]), "perplexity_ratio": math.exp(matched["nll"] - peer["nll"]),
        "peer_seconds": peer["seconds"], "ours_seconds": matched["seconds"],
        "time_ratio": matched["seconds"] / peer["seconds"], "threads": threads, "batch_size": batch_size,
    }
    if "no_act_order" in ours:
        result["ours_no_act_order_perplexity"] = math.exp(ours["no_act_order"]["nll"])
        result["ours_no_act_order_seconds"] = ours["no_act_order"]["seconds"]
    print(json.dumps(result), file=sys.stderr, flush=True)  # each model as it finishes: a long run keeps what it measured
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="trained checkpoint (default: the largest cached pocket member)")
    parser.add_argument("--skip-135m", action="store_true", help="only the trained model")
    parser.add_argument("--samples", type=int, default=128, help="calibration windows for the trained model")
    parser.add_argument("--samples-135m", type=int, default=32, help="calibration windows of 512 tokens for the 135M-shaped model")
    parser.add_argument("--layers-135m", type=int, default=30)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--group-size", type=int, default=64, help="group size on the trained model (the peer refuses one that a layer's width does not divide)")
    parser.add_argument("--group-size-135m", type=int, default=64, help="group size on the 135M-shaped model")
    parser.add_argument("--skip-trained", action="store_true", help="only the 135M-shaped model")
    parser.add_argument("--both-orders", action="store_true", help="also run ours without act_order (an extra row, not compared)")
    # the peer side (run by the venv's python)
    parser.add_argument("--peer-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    parser.add_argument("--tokens", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer_worker:
        args.model = args.model_dir
        peer_worker(args)
        return 0
    sys.path.insert(0, str(HERE.parent))
    import torch
    import transformers

    import compress
    from compress.bench.modeling import max_positions
    from compress.bench.text import encode, load_eval_text
    from compress.data.calibration import calibration_batches

    torch.set_num_threads(args.threads)
    python = ensure_venv()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        path = args.model
        if path is None:
            from compress.scaling.ladder import load_ladder

            path = max(load_ladder("pocket", cached_only=True, progress=False).members, key=lambda m: m.non_embedding_params).path
        if not args.skip_trained:
            model, tokenizer, _ = compress.load(path)
            seq_len = min(512, max_positions(model) or 512)
            calibration = calibration_batches(tokenizer, n_samples=args.samples, seq_len=seq_len, seed=0)
            ids = torch.as_tensor(encode(tokenizer, load_eval_text("plays:test")).ids)
            windows = ids[: len(ids) // seq_len * seq_len].reshape(-1, seq_len)
            results.append(compare(Path(path).name, Path(path), calibration, windows, python, args, args.group_size, work))
        if not args.skip_135m:
            torch.manual_seed(0)
            config = transformers.LlamaConfig(**{**SMOLLM2_135M, "num_hidden_layers": args.layers_135m})
            random_dir = compress.save(transformers.AutoModelForCausalLM.from_config(config).eval(), work / "smollm2-135m-shape-random")
            save_placeholder_tokenizer(random_dir)
            generator = torch.Generator().manual_seed(0)
            calibration = torch.randint(0, config.vocab_size, (args.samples_135m, 512), generator=generator)
            windows = torch.randint(0, config.vocab_size, (16, 512), generator=generator)
            results.append(compare("random SmolLM2-135M shape", random_dir, calibration, windows, python, args, args.group_size_135m, work))
    machine = {"cpu": platform.processor() or platform.machine(), "threads": args.threads, "load_average": os.getloadavg()}
    print(json.dumps({"results": results, "machine": machine}, indent=2))
    for r in results:
        print(f"| {r['model']} | g{r['group_size']} | {r['calibration']} | {r['dense_perplexity']:.3f} | {r['peer_perplexity']:.3f} | {r['ours_perplexity']:.3f} "
              f"| {r['perplexity_ratio']:.4f} | {r['peer_seconds']:.1f} | {r['ours_seconds']:.1f} | {r['time_ratio']:.2f} |", file=sys.stderr)
    trained_ok = args.skip_trained or results[0]["perplexity_ratio"] <= 1.01
    return 0 if trained_ok and all(r["time_ratio"] <= 1.0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
