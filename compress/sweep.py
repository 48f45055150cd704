"""Run a recipe end to end: dense family → compressed variants → benchmarks → curve → report.

A recipe becomes a list of jobs (one per (model, variant)); each job loads its model, applies
the variant's passes, benchmarks it and appends one record to the results store. A rerun skips
the jobs already recorded, and `shard=(i, n)` runs every n-th job so any scheduler can spread
a sweep (each shard writes its own results file; reports read them all).

    >>> from compress.recipe import Recipe
    >>> from compress.sweep import plan_jobs
    >>> recipe = Recipe.from_yaml_text("version: 1\\nmodel: gpt2\\npasses: [{pass: rtn}]\\n")
    >>> [(job.model, job.variant_name) for job in plan_jobs(recipe)]
    [('gpt2', 'dense'), ('gpt2', 'rtn-w4-g128')]
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from compress.errors import UserError
from compress.faults import fault_point
from compress.gate import check_gate  # noqa: F401 - public here too
from compress.recipe import Recipe, Variant
from compress.units import format_bytes

DENSE = "dense"


@dataclass(frozen=True)
class Job:
    model: str  # name in results (ladder member name, or the model id/folder)
    source: str  # what compress.load takes
    variant: Variant | None  # None = the dense model as it is
    family: str | None = None
    tokens: int | None = None  # training tokens of a ladder member (the D of a scaling law)

    @property
    def variant_name(self) -> str:
        return self.variant.name if self.variant else DENSE


@dataclass
class SweepResult:
    out: Path
    records: list[dict[str, Any]]
    ran: int
    skipped: int
    gate_failures: list[str] = field(default_factory=list)
    slower_than_dense: list[str] = field(default_factory=list)  # variants whose latency exceeds their dense source's
    report: dict[str, Any] | None = None
    saved_model: Path | None = None
    exported: dict[str, Any] | None = None  # the recipe's `export:` artifact (compress/export)


def _by_size(member) -> tuple[bool, int]:
    # Hub ladders leave sizes empty until measured: keep their YAML (smallest-first) order.
    return (member.non_embedding_params is None, member.non_embedding_params or 0)


def _select_members(members: list, choice: str | int | list[str]) -> list:
    ordered = sorted(members, key=_by_size)
    if choice == "all":
        return ordered
    if isinstance(choice, int):
        return ordered[-choice:]
    names = {m.name for m in members}
    unknown = [n for n in choice if n not in names]
    if unknown:
        raise UserError(f"compress: members {unknown} are not in the ladder; members: {', '.join(sorted(names))}")
    return [m for m in ordered if m.name in choice]


def plan_jobs(recipe: Recipe, *, model: str | None = None, ladder=None) -> list[Job]:
    """The (model, variant) jobs of a recipe, dense baselines first, in a fixed order."""
    jobs: list[Job] = []
    model = model or recipe.model
    family = getattr(ladder, "family", None)
    members = list(getattr(ladder, "members", []) or [])
    for member in sorted(members, key=_by_size):
        jobs.append(Job(member.name, str(member.path), None, family, getattr(member, "tokens", None)))
    if model:
        from compress.bench.describe import default_model_name

        targets = [(default_model_name(model), model, None)]
    else:
        targets = [(m.name, str(m.path), family) for m in _select_members(members, recipe.compress)]
    for name, source, target_family in targets:
        if model:
            jobs.append(Job(name, source, None, target_family))
        for variant in recipe.variants:
            jobs.append(Job(name, source, variant, target_family))
    unique: dict[tuple[str, str], Job] = {}
    for job in jobs:
        unique.setdefault((job.model, job.variant_name), job)
    return list(unique.values())


def parse_shard(text: str | None) -> tuple[int, int]:
    """'2/4' -> (1, 4) (zero-based index); None -> (0, 1)."""
    if not text:
        return 0, 1
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise UserError(f"--shard {text!r} must look like i/n, e.g. 1/4 (shards are numbered from 1)") from None
    if not 1 <= index <= count:
        raise UserError(f"--shard {text!r}: i must be between 1 and n")
    return index - 1, count


def results_path(out: Path, shard: tuple[int, int]) -> Path:
    index, count = shard
    return out / ("results.jsonl" if count == 1 else f"results.shard-{index + 1}-of-{count}.jsonl")


def load_all_records(out: Path) -> list[dict[str, Any]]:
    """Every record of a sweep's output folder, all shards merged."""
    from compress.scaling.placement import read_records

    return read_records(out) if any(out.glob("results*.jsonl")) else []


def run_recipe(
    recipe: Recipe,
    *,
    out: str | Path | None = None,
    model: str | None = None,
    device: str | None = None,
    shard: tuple[int, int] = (0, 1),
    progress: bool = True,
    log=print,
    trust_remote_code: bool = False,
    overwrite: bool = False,
) -> SweepResult:
    """Run every job of `recipe` not yet in the results store, then write the report.

    One run at a time per output folder (a second one fails at once, naming the first). The
    model's own code runs only with `trust_remote_code=True` (never from the recipe); a saved
    checkpoint replaces only a folder scalecompress wrote, unless `overwrite=True`.
    """
    from compress.outdir import OutputLock

    out_dir = Path(out or recipe.out or Path("scalecompress-out") / Path(recipe.source_file or "recipe").stem)
    with OutputLock(out_dir):
        return _run_locked(recipe, out_dir, model, device, shard, progress, log, trust_remote_code, overwrite)


def _run_locked(recipe, out_dir, model, device, shard, progress, log, trust_remote_code, overwrite) -> SweepResult:
    from compress.atomic import write_text
    from compress.bench.config import as_config
    from compress.bench.results import ResultsStore, record_key
    from compress.bench.slower import slower_than_dense
    from compress.outdir import state_dir
    from compress.quiet import quiet_transformers

    write_text(state_dir(out_dir) / "recipe.yaml", recipe.to_yaml())  # the recipe as run; never over a user file
    bench_fields = dict(recipe.bench)
    if device:
        bench_fields["device"] = device
    bench_config = as_config(bench_fields)
    ladder = _ladder(recipe, progress)
    jobs = plan_jobs(recipe, model=model, ladder=ladder)
    index, count = shard
    jobs = jobs[index::count]
    store = ResultsStore(results_path(out_dir, shard))
    scenario = bench_config.scenario_id()
    # Every results file of the folder counts: an unsharded rerun skips what the shards recorded.
    recorded = {record_key(r) for r in load_all_records(out_dir)}
    ran = skipped = 0
    saved_model = None
    single = (model or recipe.model) is not None and len(recipe.variants) == 1
    bar = tqdm(total=len(jobs), desc="jobs", unit="job", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    with quiet_transformers(), bar:
        for number, job in enumerate(jobs, 1):
            label = f"[{number}/{len(jobs)}] {job.model} / {job.variant_name}"
            bar.set_postfix_str(f"{job.model} / {job.variant_name}")
            if (job.model, job.variant_name, bench_config.device, scenario) in recorded:
                skipped += 1
                bar.write(f"{label}: already in {store.path.name}, skipped") if progress else log(f"{label}: skipped (recorded)")
                bar.update()
                continue
            started = time.perf_counter()
            reference = reference_path(out_dir, job.model, scenario)
            wanted = job.variant is not None or any(j.variant is not None and j.model == job.model for j in jobs)
            work_dir = out_dir / ".train" / f"{job.model}-{job.variant_name}".replace("/", "_")
            record, saved = _run_job(job, recipe, bench_config, out_dir if single and job.variant else None,
                                     reference if wanted else None, trust_remote_code, overwrite, work_dir)
            shutil.rmtree(work_dir, ignore_errors=True)  # the job is done: nothing left to resume
            if work_dir.parent.is_dir() and not any(work_dir.parent.iterdir()):
                work_dir.parent.rmdir()
            saved_model = saved or saved_model
            store.append(record)
            recorded.add(record_key(record))
            ran += 1
            message = f"{label}: {_summary(record)} ({time.perf_counter() - started:.1f}s)"
            bar.write(message) if progress else log(message)
            bar.update()
    records = [r for r in load_all_records(out_dir) if r.get("scenario") == scenario]
    result = SweepResult(out=out_dir, records=records, ran=ran, skipped=skipped, saved_model=saved_model)
    result.gate_failures = check_gate(records, bench_config.max_ppl_increase)
    result.slower_than_dense = slower_than_dense(records)
    from compress.export.recipe_section import export_saved

    result.exported = export_saved(recipe.export, saved_model or _previous_save(out_dir, single), out_dir)
    if ladder is not None and count == 1:
        fault_point("report")
        result.report = _report(records, out_dir, recipe)
    return result


def _previous_save(out_dir: Path, single: bool) -> Path | None:
    """A resumed single-model run skipped its job: export the model its first run saved."""
    saved = out_dir / "model"
    return saved if single and (saved / "compression.json").is_file() else None


def _ladder(recipe: Recipe, progress: bool):
    if not recipe.ladder:
        return None
    from compress.scaling.ladder import load_ladder

    return load_ladder(recipe.ladder, progress=progress)


def _summary(record: dict[str, Any]) -> str:
    parts = []
    for key, label, digits in (("bits_per_byte", "bpb", 3), ("acc", "acc", 3), ("decode_ms_per_token", "ms/tok", 2)):
        if record.get(key) is not None:
            parts.append(f"{label} {record[key]:.{digits}f}")
    if record.get("weight_bytes"):
        parts.append(format_bytes(record["weight_bytes"]))
    return ", ".join(parts)


def reference_path(out_dir: Path, model: str, scenario: str) -> Path:
    """Where the dense source's next-token reference (for KL and top-1 agreement) is kept."""
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in model)
    return out_dir / "references" / f"{safe}-{scenario}.npz"


def _run_job(job: Job, recipe: Recipe, bench_config, save_to: Path | None, reference: Path | None = None,
             trust_remote_code: bool = False, overwrite: bool = False, work_dir: Path | None = None):
    import compress
    from compress.bench import bench
    from compress.bench.fresh_bench import bench_in_fresh_process
    from compress.checkpoint import count_params, read_manifest

    model, tokenizer, info = compress.load(job.source, device="cpu", trust_remote_code=trust_remote_code)
    manifest = read_manifest(job.source) if Path(job.source).expanduser().is_dir() else None
    if info.compressed or (manifest and manifest.get("passes")):
        applied = (manifest or {}).get("variant") or "compressed"
        raise UserError(
            f"{job.source} is already a compressed checkpoint ({applied}): a sweep measures variants against their dense "
            "source, and this one would be recorded as dense; give the dense model it came from "
            f"({(manifest or {}).get('source_model') or 'see its compression.json'})"
        )
    if job.variant is not None and reference is not None and not reference.is_file():
        # The dense record predates the reference (or another shard ran it): build it from the
        # source, loaded here anyway before compression, so both models are never held at once.
        from compress.bench.runner import write_reference

        write_reference(model, tokenizer, bench_config, reference, model_name=job.model)
    fields: dict[str, Any] = {
        "family": job.family,
        "source_model": job.model,
        "method": DENSE,
        "bits": None,
        "group_size": None,
        "sparsity": None,
        "params": info.params,
        "non_embedding_params": info.non_embedding_params,
        "path": job.source,
        "passes": [],
        "train_tokens": job.tokens,
    }
    saved = None
    if job.variant is not None:
        # work_dir: training passes checkpoint there, so a killed sweep resumes mid-training
        model, reports = compress.apply(model, job.variant.passes, tokenizer=tokenizer, data_config=recipe.data, progress=False, work_dir=work_dir)
        fields.update(describe_variant(job.variant, reports))
        # stored parameters: width/depth pruning shrinks the model (packed layers count as dense)
        fields["params"], fields["non_embedding_params"] = count_params(model)
        manifest = {"source_model": job.source, "variant": job.variant_name, "recipe": recipe.to_dict(), "passes": [r.to_dict() for r in reports]}
        if save_to is not None:
            saved = compress.save(model, save_to / "model", tokenizer=tokenizer, overwrite=overwrite, manifest=manifest)
            fields["path"] = str(saved)
            fields["content_sha256"] = read_manifest(saved).get("content_sha256")
        fault_point("bench")
        # Measured as a user loading the saved checkpoint sees it (issue 14): in a fresh process,
        # never beside the dense model this process loaded. Unsaved variants go through a scratch save.
        scratch = None if saved is not None else Path(tempfile.mkdtemp(prefix="scalecompress-variant-"))
        folder = saved or compress.save(model, scratch / "model", tokenizer=tokenizer, manifest=manifest)
        del model
        try:
            fidelity = {} if reference is None else {"reference": reference}
            record = bench_in_fresh_process(folder, bench_config, model_name=job.model, variant=job.variant_name,
                                            trust_remote_code=trust_remote_code, **fidelity, **fields)
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
        return record, saved
    fault_point("bench")
    fidelity = {} if reference is None else {"reference_out": reference}
    record = bench(model, tokenizer, bench_config, model_name=job.model, variant=job.variant_name, progress=False,
                   **fidelity, **fields)
    return record, saved


def describe_variant(variant: Variant, reports: list) -> dict[str, Any]:
    """Method, bits, group size and measured sparsity of a variant, for its results record."""
    methods = [p.pass_name for p in variant.passes]
    fields: dict[str, Any] = {"method": "+".join(methods), "passes": [p.to_recipe_dict() for p in variant.passes]}
    for config, report in zip(variant.passes, reports):
        if hasattr(config, "bits"):
            fields["bits"] = config.bits
            fields["group_size"] = getattr(config, "group_size", None)
        sparsity = report.details.get("sparsity") if report.details else None
        if sparsity is not None:
            fields["sparsity"] = sparsity
        trained = report.details.get("train_tokens") if report.details else None
        if trained:  # what training passes (distill) spent on this variant, beyond the source's own training
            fields["distill_tokens"] = fields.get("distill_tokens", 0) + trained
    return fields


def _report(records: list[dict[str, Any]], out_dir: Path, recipe: Recipe) -> dict[str, Any] | None:
    dense = [r for r in records if r.get("variant") == DENSE and r.get("family")]
    if len(dense) < 3:
        return None
    from compress.scaling.report import write_report

    budget = {
        key: value
        for key, value in (
            ("max_weight_bytes", recipe.report.max_weight_bytes),
            ("max_decode_ms", recipe.report.max_decode_ms),
            ("max_energy_j_per_token", recipe.report.max_energy_j_per_token),
        )
        if value is not None
    }
    return write_report(records, out_dir, params=recipe.report.params, metric=recipe.report.metric, budget=budget or None)
