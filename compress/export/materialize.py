"""`recommend --materialize`: turn the recommended record into the deployable artifact.

A sweep records, for every model it measured, the dense source (`path`) and the exact passes
(`passes`, recipe form); the sweep's folder keeps its `recipe.yaml` (calibration data settings).
That is enough to rebuild any measured model exactly — RTN is deterministic and calibrated
passes draw their samples with the recorded seed — so sweeps keep no compressed copies: the
pick is rebuilt here, its weight bytes checked against the record, and exported.

Formats: `auto` (compressed-tensors when it can hold the model exactly; else scalecompress's own
packed checkpoint, said so, since a dense copy would break the budget the pick was chosen for; a
dense pick as `hf`), `scalecompress`, or any of `compress.export.FORMATS`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from compress.errors import UserError


def _record_of(records: list[dict], pick: dict) -> dict:
    from compress.scaling.frontier import latest

    for record in latest(records):
        if all(record.get(k) == pick.get(k) for k in ("model", "variant", "device")):
            return record
    raise UserError(f"--materialize: the pick {pick.get('model')} {pick.get('variant')} has no record to rebuild it from")


def _data_config(results: Path):
    folder = results if results.is_dir() else results.parent
    recipe_file = folder / "recipe.yaml"
    if recipe_file.is_file():
        from compress.recipe import Recipe

        return Recipe.from_yaml(recipe_file).data
    return None


def rebuild(record: dict, results: Path):
    """The model a record measured: its dense source with its recorded passes applied."""
    import compress
    from compress.recipe import parse_passes

    source = record.get("path")
    if not source:
        raise UserError(f"--materialize: record {record.get('model')} {record.get('variant')} names no source path; rerun the sweep with this version")
    model, tokenizer, _ = compress.load(source)
    passes = record.get("passes") or []
    if passes:
        configs = parse_passes(passes, str(results), "record.passes")
        model, _ = compress.apply(model, configs, tokenizer=tokenizer, data_config=_data_config(results), progress=False)
    return model, tokenizer


def best_dense(records: list[dict], budget: dict, metric: str) -> dict | None:
    from compress.errors import ScaleCompressError
    from compress.scaling.frontier import recommend

    dense = [r for r in records if r.get("variant") == "dense"]
    limits = {"max_weight_bytes": budget.get("max_weight_bytes"), "max_decode_ms": budget.get("max_decode_ms"), "max_energy_j_per_token": budget.get("max_energy_j_per_token")}
    try:
        return recommend(dense, **limits, metric=metric).pick if dense else None
    except ScaleCompressError:  # NothingFits: no dense model within this budget
        return None


def materialize(records: list[dict], recommendation, results: Path, out: Path, fmt: str = "auto") -> dict[str, Any]:
    """Rebuild the pick, export it to `out` as `fmt`; returns the JSON the CLI prints."""
    from compress.export import FORMATS, export
    from compress.model_info import weight_bytes

    if fmt not in ("auto", "scalecompress", *FORMATS):
        raise UserError(f"--format {fmt!r} is not supported; allowed: auto, scalecompress, {', '.join(FORMATS)}")
    record = _record_of(records, recommendation.pick)
    model, tokenizer = rebuild(record, results)
    rebuilt_bytes = weight_bytes(model)
    note = None
    if fmt == "auto":
        from compress.export.compressed_tensors import refusal

        reason = None if record.get("variant") == "dense" else refusal(model)
        fmt = "hf" if record.get("variant") == "dense" else "scalecompress" if reason else "compressed-tensors"
        if reason:  # a dense copy would break the byte budget the pick was chosen for
            note = (f"compressed-tensors cannot hold it exactly ({reason}); wrote scalecompress's packed checkpoint "
                    f"(load it with compress.load); --format hf writes a dense copy that plain transformers loads")
    if fmt == "scalecompress":
        import compress
        from compress.export.common import folder_bytes

        path = compress.save(model, out, tokenizer=tokenizer, manifest={"source_model": record.get("path"), "variant": record.get("variant")})
        artifact = {"format": fmt, "path": str(path), "bytes": folder_bytes(path)}
    else:
        target = out / "model.gguf" if fmt == "gguf" and out.suffix != ".gguf" else out
        artifact = export(model, fmt, target, tokenizer=tokenizer)
    return {
        "pick": {"model": record.get("model"), "variant": record.get("variant"), "device": record.get("device"), "source": record.get("path"), "passes": record.get("passes") or []},
        "rebuilt": {"weight_bytes": rebuilt_bytes, "recorded_weight_bytes": record.get("weight_bytes"), "matches_record": rebuilt_bytes == record.get("weight_bytes")},
        "artifact": {"format": artifact["format"], "path": artifact["path"], "bytes": artifact["bytes"], **({"note": note} if note else {})},
        "best_dense_within_budget": best_dense(records, recommendation.budget, recommendation.metric),
        "reason": recommendation.reason,
    }
