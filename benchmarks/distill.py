"""Distillation acceptance figures on the pocket ladder: recovery after pruning, QAT at 2 bits,
prune-then-distill against a dense model of the same size (the Minitron claim), kill + resume.

    SCALECOMPRESS_CACHE=/work/cache OMP_NUM_THREADS=1 python benchmarks/distill.py --part magnitude
    python benchmarks/distill.py --part qat --model /path/to/pocket-d128-l4 --tokens 262144
    python benchmarks/distill.py --part minitron --lrs 1e-3,3e-3

Every part: the student is made by the toolkit's own passes, distilled by the `distill` pass
with each learning rate of `--lrs`; the learning rate is chosen on the *validation* plays and only
the chosen student is scored on the test plays (bits/byte, the benchmark runner's protocol).
Compute ratio to training from scratch counts the teacher's forward passes:
(6 N_student + 2 N_teacher) D_distill / (6 N_reference D_reference), N = all parameters (the tied
embedding once: it is the output projection's matmul), beside the same with non-embedding N.
Prints one JSON object per part and a Markdown table row; `--json-out` appends them to a file.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import compress  # noqa: E402
from compress.algorithms.distillation.kd import DistillConfig  # noqa: E402
from compress.core.context import DataConfig  # noqa: E402


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), platform.processor())
    return {"cpu": cpu, "threads": torch.get_num_threads(), "load_average": [round(x, 2) for x in os.getloadavg()], "torch": torch.__version__}


def bits_per_byte(model, tokenizer, split: str) -> float:
    record = compress.bench(model, tokenizer, {"tasks": ["perplexity"], "text_source": f"plays:{split}"}, variant="measured", progress=False)
    return record["bits_per_byte"]


def ladder_member(name: str) -> tuple[str, dict]:
    from compress.scaling.ladder import load_ladder

    ladder = load_ladder("pocket", cached_only=True)
    member = next(m for m in ladder.members if m.name == name)
    return member.path, {"params": member.params, "non_embedding_params": member.non_embedding_params, "tokens": member.tokens}


def count(model) -> tuple[int, int]:
    from compress.checkpoint import count_params

    return count_params(model)


def distilled(student, teacher, tokenizer, lrs, config_fields, work_dir=None):
    """Distill a copy of `student` at each lr; return (best student, its lr, validation table, report)."""
    trials = []
    for lr in lrs:
        candidate = copy.deepcopy(student)
        started = time.perf_counter()
        candidate, reports = compress.apply(candidate, [DistillConfig(lr=lr, **config_fields)], tokenizer=tokenizer, teacher=teacher, progress=False, work_dir=work_dir)
        validation = bits_per_byte(candidate, tokenizer, "validation")
        trials.append((validation, lr, candidate, reports[-1].details, time.perf_counter() - started))
        print(f"  lr {lr:g}: validation bits/byte {validation:.4f} ({trials[-1][4]:.0f}s)", file=sys.stderr, flush=True)
    best = min(trials, key=lambda t: t[0])
    return best[2], best[1], {f"{t[1]:g}": round(t[0], 4) for t in trials}, best[3]


def compute_ratio(student_params, teacher_params, tokens, reference_params, reference_tokens) -> float:
    return (6 * student_params + 2 * teacher_params) * tokens / (6 * reference_params * reference_tokens)


def recovery_part(kind: str, teacher_path: str, args) -> dict:
    """Prune (magnitude/wanda 50%) or quantize (rtn w2 g64), then distill; recovery of the gap."""
    model, tokenizer, info = compress.load(teacher_path)
    teacher = copy.deepcopy(model)
    if kind == "qat":
        from compress.algorithms.quantization.rtn import RTNConfig

        passes = [RTNConfig(bits=2, group_size=64)]
    elif kind == "magnitude":
        from compress.algorithms.pruning.magnitude import MagnitudeConfig

        passes = [MagnitudeConfig(sparsity=0.5)]
    else:
        from compress.passes import WandaConfig

        passes = [WandaConfig(sparsity=0.5)]
    student, _ = compress.apply(model, passes, tokenizer=tokenizer, progress=False)
    dense_test = bits_per_byte(teacher, tokenizer, "test")
    compressed_test = bits_per_byte(student, tokenizer, "test")
    stored = compress.checkpoint.weight_bytes(student) if hasattr(compress.checkpoint, "weight_bytes") else None
    best, lr, table, details = distilled(student, teacher, tokenizer, args.lrs, {"tokens": args.tokens, "batch_size": args.batch_size, "seq_len": args.seq_len})
    test = bits_per_byte(best, tokenizer, "test")
    teacher_tokens = args.teacher_tokens or ladder_tokens(teacher_path)
    return {
        "part": kind,
        "model": teacher_path,
        "dense_test_bpb": round(dense_test, 4),
        "compressed_test_bpb": round(compressed_test, 4),
        "distilled_test_bpb": round(test, 4),
        "recovered_fraction": round((compressed_test - test) / (compressed_test - dense_test), 3),
        "chosen_lr": lr,
        "validation_bpb_by_lr": table,
        "train_tokens": details["train_tokens"],
        "teacher_training_tokens": teacher_tokens,
        "token_fraction_of_teacher": round(details["train_tokens"] / teacher_tokens, 4) if teacher_tokens else None,
        "stored_bytes_before_after": stored,
        "tokens_per_s": details["tokens_per_s"],
        "peak_rss_bytes": details["peak_rss_bytes"],
        "train_seconds": details["train_seconds"],
    }


def minitron_part(teacher_path: str, args) -> dict:
    """Width- or depth-prune the teacher to the reference's size, distill with <= 25% of the
    reference's training tokens, and compare test bits/byte with the dense reference."""
    from compress.passes import DepthConfig, StructuredConfig

    reference_path = args.reference or ladder_member("pocket-d96-l4")[0]
    reference, tokenizer, _ = compress.load(reference_path)
    reference_params, reference_non_embedding = count(reference)
    reference_tokens = ladder_tokens(reference_path)
    reference_test = bits_per_byte(reference, tokenizer, "test")
    reference_validation = bits_per_byte(reference, tokenizer, "validation")
    del reference
    model, tokenizer, _ = compress.load(teacher_path)
    teacher = copy.deepcopy(model)
    teacher_params, teacher_non_embedding = count(teacher)
    tokens = args.tokens if args.tokens != 262_144 else reference_tokens // 4
    candidates = {
        "width": [StructuredConfig(heads=args.heads, mlp=args.mlp)],
        "depth": [DepthConfig(fraction=args.depth)],
    }
    rows = []
    for shape, passes in candidates.items():
        if shape not in args.shapes:
            continue
        student, _ = compress.apply(copy.deepcopy(model), passes, tokenizer=tokenizer, progress=False)
        params, non_embedding = count(student)
        off = non_embedding / reference_non_embedding - 1
        pruned_test = bits_per_byte(student, tokenizer, "test")
        print(f"{shape}: {non_embedding:,} non-embedding params ({off:+.1%} against the reference), pruned test bits/byte {pruned_test:.4f}", file=sys.stderr, flush=True)
        best, lr, table, details = distilled(student, teacher, tokenizer, args.lrs, {"tokens": tokens, "batch_size": args.batch_size, "seq_len": args.seq_len})
        rows.append({
            "shape": shape,
            "passes": [p.to_recipe_dict() for p in passes],
            "params": params,
            "non_embedding_params": non_embedding,
            "size_off_reference": round(non_embedding / reference_non_embedding - 1, 4),
            "pruned_test_bpb": round(pruned_test, 4),
            "chosen_lr": lr,
            "validation_bpb_by_lr": table,
            "best_validation_bpb": min(table.values()),
            "distilled_test_bpb": round(bits_per_byte(best, tokenizer, "test"), 4),
            "train_tokens": details["train_tokens"],
            "token_fraction_of_reference": round(details["train_tokens"] / reference_tokens, 4),
            "compute_ratio": round(compute_ratio(params, teacher_params, details["train_tokens"], reference_params, reference_tokens), 4),
            "compute_ratio_non_embedding": round(compute_ratio(non_embedding, teacher_non_embedding, details["train_tokens"], reference_non_embedding, reference_tokens), 4),
            "tokens_per_s": details["tokens_per_s"],
            "peak_rss_bytes": details["peak_rss_bytes"],
            "train_seconds": details["train_seconds"],
        })
    chosen = min(rows, key=lambda r: r["best_validation_bpb"])  # the shape, too, is chosen on validation
    return {
        "part": "minitron",
        "teacher": teacher_path,
        "reference": reference_path,
        "reference_test_bpb": round(reference_test, 4),
        "reference_validation_bpb": round(reference_validation, 4),
        "reference_params": reference_params,
        "reference_non_embedding_params": reference_non_embedding,
        "reference_tokens": reference_tokens,
        "teacher_params": teacher_params,
        "chosen_shape": chosen["shape"],
        "student_beats_reference": chosen["distilled_test_bpb"] < reference_test,
        "candidates": rows,
    }


def resume_part(args) -> dict:
    """Kill `scalecompress run` (SIGKILL) once a distillation checkpoint exists, rerun it, and
    compare the saved weights with an uninterrupted run of the same recipe."""
    import signal
    import subprocess
    import tempfile

    from safetensors.torch import load_file

    source = args.model or ladder_member("pocket-d48-l2")[0]
    folder = Path(tempfile.mkdtemp(prefix="distill-resume-"))
    recipe = folder / "recipe.yaml"
    recipe.write_text(
        f"version: 1\nmodel: {source}\npasses:\n  - {{pass: magnitude, sparsity: 0.5}}\n"
        f"  - {{pass: distill, steps: 24, batch_size: 8, seq_len: 64, checkpoint_every: 6}}\nbench: {{tasks: [perplexity], max_eval_tokens: 2048}}\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def run(out: Path, kill: bool) -> tuple[int, str]:
        command = [sys.executable, "-m", "compress", "run", str(recipe), "--out", str(out), "--no-progress"]
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if kill:
            while process.poll() is None and not any((out / ".train").glob("*/*/step-*/state.json")):
                time.sleep(0.2)
            process.send_signal(signal.SIGKILL)
        log = process.communicate()[0]
        return process.returncode, log

    killed_code, _ = run(folder / "killed", kill=True)
    code, resumed_log = run(folder / "killed", kill=False)
    straight_code, _ = run(folder / "straight", kill=False)
    weights = [load_file(str(folder / name / "model" / "model.safetensors")) for name in ("killed", "straight")]
    identical = weights[0].keys() == weights[1].keys() and all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    leftovers = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if ".partial" in p.name or "step-" in p.name)
    resume_line = next((line for line in resumed_log.splitlines() if "resuming from step" in line), None)
    return {
        "part": "resume",
        "model": source,
        "killed_exit_code": killed_code,
        "resumed_exit_code": code,
        "uninterrupted_exit_code": straight_code,
        "resume_log_line": resume_line,
        "weights_identical": identical,
        "leftover_partial_or_checkpoint_paths": leftovers,
        "folder": str(folder),
    }


def ladder_tokens(path: str) -> int | None:
    record = Path(path) / "ladder_member.json"
    return json.loads(record.read_text())["tokens"] if record.is_file() else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["magnitude", "wanda", "qat", "minitron", "resume"], required=True)
    parser.add_argument("--model", help="Teacher checkpoint folder (default: the cached pocket-d128-l4).")
    parser.add_argument("--reference", help="Dense model the pruned student must beat (minitron; default: the cached pocket-d96-l4).")
    parser.add_argument("--tokens", type=int, default=262_144, help="Distillation tokens per trial.")
    parser.add_argument("--lrs", default="1e-3", help="Comma-separated learning rates tried; chosen on validation.")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--teacher-tokens", type=int, help="Tokens the teacher was trained on (default: read from its ladder_member.json).")
    parser.add_argument("--shapes", default="width,depth", help="minitron: pruning shapes tried (chosen on validation).")
    parser.add_argument("--heads", type=float, default=0.25, help="minitron width: fraction of attention heads removed.")
    parser.add_argument("--mlp", type=float, default=0.55, help="minitron width: fraction of MLP channels removed.")
    parser.add_argument("--depth", type=float, default=0.5, help="minitron depth: fraction of blocks removed.")
    parser.add_argument("--json-out", type=Path, help="Append the result as one JSON line here.")
    args = parser.parse_args()
    args.lrs = [float(x) for x in args.lrs.split(",")]
    teacher_path = args.model or ladder_member("pocket-d128-l4")[0]
    started = time.perf_counter()
    if args.part in ("magnitude", "wanda", "qat"):
        result = recovery_part(args.part, teacher_path, args)
    elif args.part == "minitron":
        args.shapes = args.shapes.split(",")
        result = minitron_part(teacher_path, args)
    else:
        result = resume_part(args)
    result.update(machine=machine(), wall_seconds=round(time.perf_counter() - started, 1), command=" ".join(sys.argv))
    print(json.dumps(result))
    if args.json_out:
        with args.json_out.open("a") as handle:
            handle.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
