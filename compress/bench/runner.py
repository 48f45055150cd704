"""The benchmark runner: phases load → accuracy → latency → memory → energy, one flat record out.

Accuracy work is never timed: latency runs in its own phase with its own warmup. Memory and
energy trackers run across the phases and are read at the end. The model is put in eval mode
on `config.device` for the run, and its mode and device are restored afterwards.

    >>> import compress
    >>> # record = compress.bench(model, tokenizer, {"tasks": ["perplexity", "latency"]}, model_name="tiny")
    >>> # record["perplexity"], record["decode_ms_per_token"], record["energy_source"]
"""

from __future__ import annotations

import datetime as _dt
import time
from contextlib import contextmanager

import torch

from compress.bench.config import BenchConfig, as_config
from compress.bench.describe import default_model_name, describe_checkpoint, is_local
from compress.bench.modeling import is_causal_lm, max_positions, model_device
from compress.bench.trackers.energy import EnergyTracker
from compress.bench.trackers.memory import MemoryTracker
from compress.bench.results import SCHEMA_VERSION
from compress.errors import UserError


class _Session:
    """Trackers shared by the load phase (CLI) and the benchmark phases."""

    def __init__(self, config: BenchConfig):
        self.memory = MemoryTracker(config.device)
        self.energy = EnergyTracker(config.device, cpu_watts_per_core=config.cpu_watts_per_core)


def bench(
    model,
    tokenizer,
    config: BenchConfig | dict | None = None,
    *,
    model_name: str = "model",
    variant: str = "dense",
    progress: bool = True,
    reference=None,
    reference_out=None,
    **record_fields,
) -> dict:
    """Benchmark an in-memory model; returns the flat results record (see compress.bench.results).

    `record_fields` fill or override description fields (family, source_model, method, bits,
    group_size, sparsity, params, non_embedding_params, path, passes). Pass `params` for
    compressed models: by default params are counted on the model as it is.

    Fidelity to a dense source (KL divergence, top-1 agreement; see accuracy/fidelity.py):
    `reference_out` writes this model's top-k next-token log-probs on the perplexity windows to
    that file; `reference` compares this model with such a file (the source need not be loaded).

        >>> import compress
        >>> # record = compress.bench(model, tokenizer, {"tasks": ["perplexity"]}, model_name="tiny")
        >>> # round(record["perplexity"], 2), record["energy_source"]
    """
    config = as_config(config)
    return _run(model, tokenizer, config, _Session(config), model_name=model_name, variant=variant, progress=progress,
                reference=reference, reference_out=reference_out, **record_fields)


def bench_checkpoint(
    source: str,
    config: BenchConfig | dict | None = None,
    *,
    model_name: str | None = None,
    variant: str | None = None,
    dtype: str | None = None,
    trust_remote_code: bool = False,
    progress: bool = True,
    **record_fields,
) -> dict:
    """Load a checkpoint (hub id or folder) inside a tracked load phase, then benchmark it.

    The variant and description fields come from the checkpoint's compression.json when it has
    one, else the model is taken as dense.

        >>> # bench_checkpoint("out/tiny-rtn4", {"device": "cpu"})["weight_bytes"]
    """
    from compress.checkpoint import load, read_manifest

    config = as_config(config)
    session = _Session(config)
    from compress.quiet import quiet_transformers

    started = time.perf_counter()
    with session.memory.track("load"), session.energy.track("load"), quiet_transformers(logs=False, bars=not progress):
        model, tokenizer, info = load(source, dtype=dtype, device=config.device, trust_remote_code=trust_remote_code)
    record_fields.setdefault("load_seconds", time.perf_counter() - started)
    if tokenizer is None and _needs_tokenizer(config):
        raise UserError(f"{source}: no tokenizer found beside the model; save one with the checkpoint (compress.save(..., tokenizer=...))")
    fields = describe_checkpoint(source, info, read_manifest(source) if is_local(source) else None)
    chosen_variant = variant or fields.pop("variant", "dense")
    fields.pop("variant", None)
    fields.update(record_fields)
    return _run(model, tokenizer, config, session, model_name=model_name or default_model_name(source), variant=chosen_variant, progress=progress, **fields)


def write_reference(model, tokenizer, config: BenchConfig | dict | None, path, *, model_name: str) -> None:
    """Only the dense reference for fidelity metrics (the perplexity windows, no other task)."""
    from compress.bench.accuracy.fidelity import ReferenceRecorder, save_reference
    from compress.bench.accuracy.perplexity import evaluate_perplexity
    from compress.bench.text import bos_prefix, load_eval_text

    config = as_config(config)
    recorder = ReferenceRecorder()
    with _prepared(model, config):
        scores = evaluate_perplexity(model, tokenizer, load_eval_text(config.text_source), window=config.window,
                                     max_tokens=config.max_eval_tokens, batch_size=config.eval_batch_size,
                                     prefix_id=bos_prefix(tokenizer), progress=False, fidelity=recorder)
    save_reference(recorder.reference(model_name, scores["text_key"]), path)


def _needs_tokenizer(config: BenchConfig) -> bool:
    return bool(set(config.tasks) & {"perplexity", "choice", "latency"} or config.lm_eval_tasks)


@contextmanager
def _prepared(model, config: BenchConfig):
    """Eval mode, the configured device and thread count for the run; all restored after."""
    from compress.devices import resolve_device

    resolve_device(config.device, flag="bench.device")  # one check, one message, for every command
    was_training = model.training
    original = model_device(model)
    threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    if original != config.device:
        model.to(config.device)
    model.eval()
    try:
        yield
    finally:
        if original != config.device:
            model.to(original)
        model.train(was_training)
        torch.set_num_threads(threads)


def _run(model, tokenizer, config: BenchConfig, session: _Session, *, model_name: str, variant: str, progress: bool,
         reference=None, reference_out=None, **record_fields) -> dict:
    from compress.bench.env import capture_env

    if tokenizer is None and _needs_tokenizer(config):
        raise UserError(f"bench {model_name}: tasks {', '.join(config.tasks)} need a tokenizer; pass one, or use tasks: [] for memory only")
    _refuse_compressed_as_dense(model, model_name, variant)
    record = _identity(model, config, model_name, variant)
    record.update(record_fields)
    notes: list[str] = []
    causal = is_causal_lm(model)
    with _prepared(model, config):
        record["threads"] = torch.get_num_threads()
        env = capture_env()
        if "latency" in config.tasks and causal:  # before the memory phase: its buffer is not the model's
            from compress.bench.env import read_bandwidth

            env["read_bandwidth"] = read_bandwidth(config.device, torch.get_num_threads())
        with session.memory.track("inference"):
            with session.energy.track("accuracy"):  # phase 2: accuracy (never timed)
                fidelity = (reference, reference_out, model_name)
                record.update(_accuracy(model, tokenizer, config, causal, notes, progress, fidelity))
            generated = 0
            if "latency" in config.tasks:  # phase 3: latency, its own warmup, nothing else running
                with session.energy.track("latency"):
                    latency = _latency(model, tokenizer, config, causal, notes, progress)
                generated = latency.pop("generated_tokens")
                record.update(latency)
                record.update(_roofline(model, record, env.get("read_bandwidth")))
    memory = _memory(model, session)  # phase 4
    if memory["load_peak_rss_bytes"] is None:  # no load phase here: keep what the caller passed
        memory.pop("load_peak_rss_bytes")
    record.update(memory)
    record.update(_energy(session, generated))  # phase 5
    record["notes"] = notes
    record["env"] = env
    record["timestamp"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    record["schema"] = SCHEMA_VERSION
    return record


def _refuse_compressed_as_dense(model, model_name: str, variant: str) -> None:
    # A dense record is the baseline every fit and gate compares against: it must be dense.
    from compress.formats.base import PackedModule

    if variant == "dense" and any(isinstance(m, PackedModule) for m in model.modules()):
        raise UserError(f"{model_name} holds packed (compressed) layers and cannot be recorded as 'dense'; name its variant (--variant, or variant=...)")


def _identity(model, config: BenchConfig, model_name: str, variant: str) -> dict:
    from compress.checkpoint import count_params

    total, non_embedding = count_params(model)
    dense = variant == "dense"
    return {
        "model": model_name,
        "variant": variant,
        "device": config.device,
        "scenario": config.scenario_id(),
        "family": None,
        "source_model": model_name if dense else None,
        "method": "dense" if dense else None,
        "bits": None,
        "group_size": None,
        "sparsity": None,
        "params": total,
        "non_embedding_params": non_embedding,
        "path": None,
        "passes": [],
        "loss": None,
        "perplexity": None,
        "bits_per_byte": None,
        "acc": None,
        "acc_norm": None,
        "eval_tokens": None,
        "eval_window": None,
        "choice_items": None,
        "choice_unit": None,
        "lm_eval": None,
        "prefill_ms": None,
        "prefill_ms_p90": None,
        "ttft_ms": None,
        "decode_ms_per_token": None,
        "decode_ms_per_token_p10": None,
        "decode_ms_per_token_p90": None,
        "tokens_per_s": None,
        "batch_size": None,
        "prompt_tokens": None,
        "new_tokens": None,
        "load_peak_rss_bytes": None,
    }


def _accuracy(model, tokenizer, config: BenchConfig, causal: bool, notes: list[str], progress: bool,
              fidelity=(None, None, "model")) -> dict:
    out: dict = {}
    wants = [task for task in ("perplexity", "choice") if task in config.tasks]
    if wants and not causal:
        notes.append(f"{type(model).__name__} is not a causal LM: {' and '.join(wants)} do not apply and were skipped")
        wants = []
    if "perplexity" in wants:
        from compress.bench.accuracy.perplexity import evaluate_perplexity
        from compress.bench.text import bos_prefix, load_eval_text

        from compress.bench.accuracy.fidelity import ReferenceComparer, ReferenceRecorder, load_reference
        from compress.bench.accuracy.uncertainty import fidelity_intervals, perplexity_intervals

        reference, reference_out, model_name = fidelity
        ref = load_reference(reference) if reference is not None else None
        observer = ReferenceComparer(ref) if ref is not None else ReferenceRecorder() if reference_out else None
        prefix = bos_prefix(tokenizer)
        scores = evaluate_perplexity(
            model, tokenizer, load_eval_text(config.text_source), window=config.window,
            max_tokens=config.max_eval_tokens, batch_size=config.eval_batch_size, prefix_id=prefix, progress=progress,
            fidelity=observer,
        )
        windows, key = scores.pop("windows"), scores.pop("text_key")
        scores.update(perplexity_intervals(windows))
        if ref is not None:
            if ref["text_key"] != key:
                raise UserError(f"fidelity reference {reference} was computed on other text or windows; delete it "
                                "so the sweep rebuilds it from the dense source")
            result = observer.result()
            windows.update(kl=result["window_kl"], top1=result["window_top1"])
            scores.update(kl_mean=result["kl_mean"], kl_p99=result["kl_p99"], top1_agreement=result["top1_agreement"],
                          fidelity_source=ref["source"], fidelity_top_k=ref["top_k"], **fidelity_intervals(windows))
        elif reference_out:
            from compress.bench.accuracy.fidelity import save_reference

            save_reference(observer.reference(model_name, key), reference_out)
        scores["windows"] = windows
        if prefix is not None:
            notes.append("perplexity windows start with the tokenizer's BOS token; every text token is predicted")
        if not scores.pop("exact_bytes"):
            notes.append("bits_per_byte: the tokenizer gives no offsets; bytes counted by decoding single tokens")
        if scores["eval_window"] < config.window:
            notes.append(f"perplexity window {scores['eval_window']} (the model's max positions), not {config.window}")
        scores.pop("eval_bytes")
        out.update(scores)
    if "choice" in wants:
        from compress.bench.accuracy.choice import evaluate_choice

        scores = evaluate_choice(
            model, tokenizer, n_items=config.choice_items, seed=config.choice_seed, unit=config.choice_unit,
            context_tokens=config.choice_context_tokens, batch_items=config.choice_batch_items,
            max_positions=max_positions(model), progress=progress,
        )
        if scores["context_tokens"] < config.choice_context_tokens:
            notes.append(f"choice context {scores['context_tokens']} tokens (median) to fit the model's max positions")
        from compress.bench.accuracy.uncertainty import mean_interval

        acc, acc_norm = mean_interval(scores["correct"]), mean_interval(scores["correct_norm"])
        out.update(acc=scores["acc"], acc_norm=scores["acc_norm"], choice_items=scores["items"], choice_unit=config.choice_unit,
                   acc_se=acc.se, acc_ci=[acc.low, acc.high], acc_norm_se=acc_norm.se,
                   acc_norm_ci=[acc_norm.low, acc_norm.high], choice_correct=scores["correct"])
    if config.lm_eval_tasks:
        from compress.bench.accuracy.lm_eval import run_lm_eval

        out["lm_eval"] = run_lm_eval(model, tokenizer, config.lm_eval_tasks, limit=config.lm_eval_limit, batch_size=config.eval_batch_size)
    return out


def _latency(model, tokenizer, config: BenchConfig, causal: bool, notes: list[str], progress: bool) -> dict:
    from compress.bench.latency import measure_latency, prompt_batch
    from compress.bench.text import load_eval_text

    prompt_tokens, new_tokens = config.prompt_tokens, config.new_tokens
    limit = max_positions(model)
    if limit is not None and prompt_tokens + (new_tokens if causal else 0) > limit:
        prompt_tokens = max(1, limit - (new_tokens if causal else 0))
        notes.append(f"latency prompt cut to {prompt_tokens} tokens to fit {limit} positions")
    text = load_eval_text(config.text_source)
    needed = prompt_tokens * config.batch_size
    ids = tokenizer(text[: needed * 16], add_special_tokens=False, verbose=False)["input_ids"]  # ≥ 1 token per 16 chars
    if not causal:
        notes.append("not a causal LM: latency is the forward pass over the prompt; no decode")
    return measure_latency(
        model, prompt_batch(ids, prompt_tokens, config.batch_size), new_tokens=new_tokens,
        repeats=config.repeats, warmup=config.warmup, decode=causal, progress=progress,
    )


def _roofline(model, record: dict, bandwidth: dict | None) -> dict:
    """Bandwidth limit of the decode figure and the fraction reached; the kernels packed layers pick."""
    from compress.bench.kernels import kernel_counts
    from compress.bench.roofline import roofline

    out = roofline(model, record.get("decode_ms_per_token"), bandwidth)
    batch, prompt = record.get("batch_size") or 1, record.get("prompt_tokens") or 1
    out["kernels"] = kernel_counts(model, prefill_rows=batch * prompt, decode_rows=batch)
    return out


def _memory(model, session: _Session) -> dict:
    from compress.checkpoint import weight_bytes

    inference = session.memory.result().get("inference", {})
    return {
        "weight_bytes": weight_bytes(model),
        "peak_rss_bytes": inference.get("peak_rss_bytes"),
        "load_peak_rss_bytes": session.memory.result().get("load", {}).get("peak_rss_bytes"),
        "cuda_max_allocated_bytes": inference.get("cuda_max_allocated_bytes"),
    }


def _energy(session: _Session, generated_tokens: int) -> dict:
    energy = session.energy.result()
    joules = energy["joules"]
    measured = [joules[phase] for phase in ("accuracy", "latency") if phase in joules]
    latency = joules.get("latency")
    return {
        "energy_j": sum(measured) if measured else None,
        "energy_j_per_token": latency / generated_tokens if latency is not None and generated_tokens else None,
        "energy_phases": {phase: round(value, 6) for phase, value in joules.items()},
        "energy_source": energy["source"],
        "energy_method": energy["method"],
    }
