"""Recipes: YAML files naming the model (or ladder), the passes, the data and the benchmark.

    version: 1
    model: EleutherAI/pythia-160m      # a hub id or a local folder; or `ladder: pocket`
    passes:
      - pass: rtn
        bits: 4
        group_size: 128
    bench: {max_ppl_increase: 0.05}    # fail the run (exit 3) if perplexity rises more than 5%
    out: out/pythia-160m-rtn4

A sweep lists `variants:` (each a name and its passes) instead of `passes:`, applied to the
`compress:` members of `ladder:`. Validation happens before any model is loaded, and every
error names the file, the pass (index and name), the field, the bad value and what is allowed.

    >>> recipe = Recipe.from_yaml_text("version: 1\\npasses:\\n  - pass: rtn\\n    bits: 8\\n")
    >>> recipe.variants[0].name, recipe.variants[0].passes[0].bits
    ('rtn-w8-g128', 8)
    >>> Recipe.from_yaml_text(recipe.to_yaml()) == recipe
    True
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from compress.core.config import PassConfig
from compress.core.context import DataConfig
from compress.core.registry import get_pass
from compress.core.targets import check_pattern
from compress.errors import RecipeError, describe_validation_error, preview
from compress.export.recipe_section import ExportConfig
from compress.safe_yaml import load_yaml_text, read_yaml_file

RECIPE_VERSION = 1


class ReportConfig(BaseModel):
    """How results are placed against the dense family's curve."""

    model_config = ConfigDict(extra="forbid")

    params: Literal["non_embedding", "total"] = Field("non_embedding", description="Parameter count on every x-axis and fit (Kaplan uses non-embedding).")
    metric: Literal["bits_per_byte", "loss", "perplexity", "acc", "acc_norm"] = Field("bits_per_byte", description="Quality metric fitted and compared (bits per byte compares across tokenizers).")
    max_weight_bytes: int | None = Field(None, ge=1, description="Memory budget for the recommendation, in bytes of stored weights.")
    max_decode_ms: float | None = Field(None, gt=0, description="Latency budget: decode milliseconds per token.")
    max_energy_j_per_token: float | None = Field(None, gt=0, description="Energy budget: joules per generated token.")


class Variant(BaseModel):
    """One compression configuration: an ordered list of passes under a name."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    name: str
    passes: list[PassConfig]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passes": [p.to_recipe_dict() for p in self.passes]}


class Recipe(BaseModel):
    """A validated recipe. Build it with `from_yaml`, `from_yaml_text` or `from_dict`."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    version: int = RECIPE_VERSION
    model: str | None = None
    ladder: str | None = None
    compress: str | int | list[str] = 2
    variants: list[Variant] = Field(default_factory=list)
    data: DataConfig = Field(default_factory=DataConfig)
    bench: dict[str, Any] = Field(default_factory=dict)
    report: ReportConfig = Field(default_factory=ReportConfig)
    out: str | None = None
    export: ExportConfig | None = None  # issue 11: compress/export/recipe_section.py
    source_file: str | None = Field(None, exclude=True)

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def from_yaml(cls, path: str | Path) -> Recipe:
        """Read and validate a recipe file (UTF-8, at most 1 MiB, no duplicate keys or alias bombs)."""
        return cls._from_document(read_yaml_file(path), str(path))

    @classmethod
    def from_yaml_text(cls, text: str, source: str = "<recipe>") -> Recipe:
        return cls._from_document(load_yaml_text(text, source), source)

    @classmethod
    def _from_document(cls, document: Any, source: str) -> Recipe:
        if not isinstance(document, dict):
            raise RecipeError(f"{source}: a recipe is a YAML mapping with 'version' and 'passes' (or 'variants')")
        return cls.from_dict(document, source=source)

    @classmethod
    def from_dict(cls, document: dict[str, Any], source: str = "<recipe>") -> Recipe:
        if not isinstance(document, dict):
            raise RecipeError(f"{source}: a recipe is a mapping with 'version' and 'passes' (or 'variants'), got {type(document).__name__}")
        document = dict(document)
        if "trust_remote_code" in document:
            raise RecipeError(
                f"{source}: 'trust_remote_code' cannot be set in a recipe (a recipe is data that anyone can share, "
                "and must not grant code execution); remove it and pass --trust-remote-code on the command line "
                "(or trust_remote_code=True in Python) for a model you trust"
            )
        _check_keys(source, "", document, ALLOWED_TOP_LEVEL)
        version = document.pop("version", None)
        if version != RECIPE_VERSION:
            raise RecipeError(f"{source}: version={preview(version)} is not supported; allowed: {RECIPE_VERSION} (add 'version: 1' at the top)")
        if "passes" in document and "variants" in document:
            raise RecipeError(f"{source}: give either 'passes' (one variant) or 'variants' (a sweep), not both")
        variants: list[Variant] = []
        if "passes" in document:
            passes = parse_passes(document.pop("passes"), source, "passes")
            variants.append(Variant(name=variant_name(passes), passes=passes))
        for index, entry in enumerate(document.pop("variants", None) or []):
            where = f"variants[{index}]"
            if not isinstance(entry, dict) or "passes" not in entry:
                raise RecipeError(f"{source}: {where} must be a mapping with 'passes' (and optionally 'name'), got {preview(entry)}")
            _check_keys(source, where, entry, {"name", "passes"})
            passes = parse_passes(entry["passes"], source, f"{where}.passes")
            name = entry.get("name")
            if name is not None and not (isinstance(name, str) and 0 < len(name) <= 120 and name.isprintable()):
                raise RecipeError(f"{source}: {where}.name={preview(name)} must be a short one-line string (1-120 characters)")
            variants.append(Variant(name=name or variant_name(passes), passes=passes))
        names = [v.name for v in variants]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise RecipeError(f"{source}: variant names must be unique; repeated: {', '.join(duplicates)} (set 'name:' on each)")
        fields = {}
        for key, model_class in (("data", DataConfig), ("report", ReportConfig), ("export", ExportConfig)):
            if key in document:
                fields[key] = _validate(model_class, document.pop(key), source, key)
        if "bench" in document:
            fields["bench"] = validate_bench(document.pop("bench"), source)
        compress_members = document.pop("compress", 2)
        if not (compress_members == "all" or isinstance(compress_members, int) and not isinstance(compress_members, bool) and compress_members >= 1
                or isinstance(compress_members, list) and compress_members and all(isinstance(m, str) for m in compress_members)):
            raise RecipeError(f"{source}: compress={preview(compress_members)}; allowed: 'all', a count of the largest ladder members (>= 1), or a list of member names")
        for key in ("model", "ladder", "out"):
            if key in document and document[key] is not None and not isinstance(document[key], str):
                raise RecipeError(f"{source}: {key}={preview(document[key])} must be a string")
        return cls(variants=variants, compress=compress_members, source_file=source, **fields, **document)

    # -- output ----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {"version": self.version}
        for key in ("model", "ladder"):
            if getattr(self, key) is not None:
                document[key] = getattr(self, key)
        if self.ladder is not None:
            document["compress"] = self.compress
        if len(self.variants) == 1 and self.variants[0].name == variant_name(self.variants[0].passes):
            document["passes"] = [p.to_recipe_dict() for p in self.variants[0].passes]
        elif self.variants:
            document["variants"] = [v.to_dict() for v in self.variants]
        document["data"] = self.data.model_dump(mode="json")
        if self.bench:
            document["bench"] = self.bench
        document["report"] = self.report.model_dump(mode="json")
        if self.out is not None:
            document["out"] = self.out
        if self.export is not None:
            document["export"] = self.export.model_dump(mode="json", exclude_none=True)
        return document

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Recipe) and self.to_dict() == other.to_dict()

    def needs_calibration(self) -> bool:
        return any(get_pass(p.pass_name).needs_calibration for v in self.variants for p in v.passes)


ALLOWED_TOP_LEVEL = {"version", "model", "ladder", "compress", "passes", "variants", "data", "bench", "report", "out", "export"}


def _check_keys(source: str, where: str, document: dict, allowed: set[str]) -> None:
    for key in document:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            place = f"{where}: " if where else ""
            raise RecipeError(f"{source}: {place}unknown key {preview(key, 40)}{hint} (allowed: {', '.join(sorted(allowed))})")


def parse_passes(entries: Any, source: str, where: str) -> list[PassConfig]:
    """Validate a list of `{pass: name, **fields}` mappings into pass configs."""
    if not isinstance(entries, list) or not entries:
        raise RecipeError(f"{source}: {where} must be a non-empty list of passes, e.g. '- pass: rtn'")
    configs = []
    for index, entry in enumerate(entries):
        place = f"{where}[{index}]"
        if not isinstance(entry, dict) or "pass" not in entry:
            raise RecipeError(f"{source}: {place} must be a mapping with a 'pass' key, e.g. '- pass: rtn'")
        fields = dict(entry)
        name = fields.pop("pass")
        if not isinstance(name, str):
            raise RecipeError(f"{source}: {place}: pass={preview(name)} must be a pass name, e.g. 'rtn' (see `scalecompress ls passes`)")
        try:
            spec = get_pass(name)
        except RecipeError:
            raise
        except Exception as error:  # unknown pass: keep the registry's "did you mean" text
            raise RecipeError(f"{source}: {place}: {error}") from None
        config = _validate(spec.config, fields, source, f"{place} ({name})")
        for entry_list in (getattr(config, "targets", []), getattr(config, "ignore", [])):
            for pattern in entry_list:
                try:
                    check_pattern(pattern)
                except Exception as error:  # noqa: BLE001 - a bad regex is bad input
                    raise RecipeError(f"{source}: {place} ({name}): {preview(str(error), 160)}") from None
        configs.append(config)
    return configs


def _validate(model_class: type[BaseModel], fields: Any, source: str, place: str) -> Any:
    if not isinstance(fields, dict):
        raise RecipeError(f"{source}: {place} must be a mapping, got {preview(fields)}")
    try:
        return model_class.model_validate(fields)
    except ValidationError as error:
        raise RecipeError(f"{source}: {place}: {describe_validation_error(error, model_class)}") from None
    except (ValueError, TypeError, ArithmeticError) as error:  # a config's own check that pydantic did not wrap
        raise RecipeError(f"{source}: {place}: {preview(str(error), 160)}") from None


def validate_bench(bench: Any, source: str) -> dict[str, Any]:
    """Check a recipe's `bench:` section against the benchmark's config schema."""
    if not isinstance(bench, dict):
        raise RecipeError(f"{source}: bench must be a mapping, got {preview(bench)}")
    from compress.bench.config import BenchConfig

    config = _validate(BenchConfig, bench, source, "bench")
    if config.max_ppl_increase is not None and "perplexity" not in config.tasks:
        raise RecipeError(f"{source}: bench.max_ppl_increase gates on perplexity, but bench.tasks ({', '.join(config.tasks)}) leaves it out; add 'perplexity'")
    return bench


def variant_name(passes: list[PassConfig]) -> str:
    """A readable name for a list of passes, e.g. 'rtn-w4-g128' or 'magnitude-2:4+rtn-w8-pc'."""
    return "+".join(p.tag() if hasattr(p, "tag") else p.pass_name for p in passes)
