"""What a checkpoint says about itself, for the record: name, path, variant, method, bits.

    >>> describe_manifest(None)
    {}
"""

from __future__ import annotations

from pathlib import Path


def default_model_name(source: str) -> str:
    """A local folder is named by its folder name (its full path goes in `path`); a hub id as is."""
    return Path(str(source)).expanduser().resolve().name if is_local(source) else str(source)


def is_local(source: str) -> bool:
    return Path(str(source)).expanduser().is_dir()


def describe_checkpoint(source: str, info, manifest: dict | None) -> dict:
    """Description fields from ModelInfo and, for compressed checkpoints, compression.json."""
    fields = {"params": info.params, "non_embedding_params": info.non_embedding_params, "path": str(source) if is_local(source) else None}
    fields.update(describe_manifest(manifest))
    return fields


def describe_manifest(manifest: dict | None) -> dict:
    """variant, method, passes, bits, group_size, sparsity and source_model from a compression.json.

    Empty for a plain checkpoint (a dense model).

        >>> describe_manifest({"modules": {}, "passes": [{"pass": "rtn", "config": {"bits": 4, "group_size": 128}}]})["variant"]
        'rtn-w4-g128'
    """
    reports = (manifest or {}).get("passes") or []
    if not (manifest and (manifest.get("modules") or reports)):
        return {}
    fields: dict = {}
    passes = []
    for report in reports:
        if isinstance(report, dict) and "pass" in report:
            config = report.get("config") if isinstance(report.get("config"), dict) else {}
            passes.append({"pass": report["pass"], **config})
            if "bits" in config:
                fields.update(bits=config.get("bits"), group_size=config.get("group_size"))
            sparsity = (report.get("details") or {}).get("sparsity")
            if sparsity is not None:
                fields["sparsity"] = sparsity
    method = "+".join(p["pass"] for p in passes) or "compressed"
    fields.update(passes=passes, method=method, variant=manifest.get("variant") or _full_name(passes) or method)
    if manifest.get("source_model"):
        fields["source_model"] = str(manifest["source_model"])
    if manifest.get("content_sha256"):
        fields["content_sha256"] = str(manifest["content_sha256"])
    return fields


def _full_name(passes: list[dict]) -> str | None:
    """'rtn-w4-g128', as the sweep names variants: the full config, not just the method."""
    from compress.errors import UserError
    from compress.recipe import parse_passes, variant_name

    try:
        return variant_name(parse_passes(passes, "compression.json", "passes")) if passes else None
    except UserError:  # a pass this installation does not know: fall back to the method
        return None
