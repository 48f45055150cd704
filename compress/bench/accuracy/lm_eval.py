"""Optional lm-evaluation-harness tasks (hellaswag, arc_easy, ...) on the in-memory model.

Runs through the harness's `HFLM` wrapper, so compressed models (custom packed modules) are
evaluated as they are, without a save/reload. Needs `pip install lm-eval` and the tasks'
datasets (the Hub, or a local HF datasets cache); offline without a cache it stops with one line.

    >>> from compress.bench.accuracy.lm_eval import run_lm_eval
    >>> # run_lm_eval(model, tokenizer, ["arc_easy"], limit=100)
    >>> # {'arc_easy': {'acc': 0.43, 'acc_norm': 0.39}}
"""

from __future__ import annotations

from compress.errors import ScaleCompressError, UserError

_INSTALL = "pip install 'lm-eval>=0.4' (or scalecompress[lm-eval])"


def _harness():
    try:
        from lm_eval import simple_evaluate
        from lm_eval.models.huggingface import HFLM
    except ImportError as error:
        raise UserError(
            f"bench.tasks: lm-evaluation-harness tasks need the lm-eval package ({error}); {_INSTALL}, "
            "or keep to the built-in tasks: perplexity, choice, latency"
        ) from None
    return simple_evaluate, HFLM


def run_lm_eval(model, tokenizer, tasks: list[str], *, limit: int | None = None, batch_size: int = 8) -> dict[str, dict[str, float]]:
    """{task: {metric: value}} from lm-evaluation-harness, zero-shot; stderr entries left out."""
    simple_evaluate, HFLM = _harness()
    try:
        wrapped = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
    except Exception as error:  # noqa: BLE001 - the harness raises many kinds; the user needs one line
        raise ScaleCompressError(f"lm-eval could not wrap the model ({type(error).__name__}: {error})") from None
    try:
        output = simple_evaluate(model=wrapped, tasks=list(tasks), num_fewshot=0, limit=limit, log_samples=False)
    except KeyError as error:
        raise UserError(f"bench.tasks: lm-eval does not know task {error}; list tasks with `lm-eval ls tasks`") from None
    except Exception as error:  # noqa: BLE001 - dataset downloads fail in many ways offline
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ScaleCompressError(
            f"lm-eval tasks {', '.join(tasks)} failed ({type(error).__name__}: {message}); "
            "offline? their datasets must be in the local HF datasets cache (HF_DATASETS_OFFLINE=1)"
        ) from None
    if not output or "results" not in output:
        raise ScaleCompressError(f"lm-eval returned no results for {', '.join(tasks)}")
    return {task: _metrics(values) for task, values in output["results"].items()}


def _metrics(values: dict) -> dict[str, float]:
    # The harness keys metrics as "acc,none" (metric, filter); keep the number, drop stderr.
    out = {}
    for key, value in values.items():
        name = key.split(",", 1)[0]
        if "stderr" in name or not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        out[name] = float(value)
    return out
