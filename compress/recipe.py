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

from compress.errors import RecipeError
from compress.export.recipe_section import ExportConfig
from compress.passes.base import PassConfig
from compress.registry import get_pass
from compress.targets import check_pattern

RECIPE_VERSION = 1


class DataConfig(BaseModel):
    """Calibration data for passes that need it (GPTQ, AWQ, Wanda, ...)."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field("plays:train", description="'plays:<split>', a text file, folder or glob, or 'hf:<dataset>[/<config>]:<split>'.")
    samples: int = Field(128, ge=1, le=100_000, description="Number of calibration sequences (GPTQ used 128).")
    seq_len: int = Field(512, ge=8, le=131_072, description="Tokens per calibration sequence.")
    seed: int = Field(0, description="Seed of the sampler: same seed, same sequences.")


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
    trust_remote_code: bool = False
    export: ExportConfig | None = None  # issue 11: compress/export/recipe_section.py
    source_file: str | None = Field(None, exclude=True)

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def from_yaml(cls, path: str | Path) -> Recipe:
        path = Path(path)
        if not path.is_file():
            raise RecipeError(f"{path}: no such recipe file")
        return cls.from_yaml_text(path.read_text(), source=str(path))

    @classmethod
    def from_yaml_text(cls, text: str, source: str = "<recipe>") -> Recipe:
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark else ""
            raise RecipeError(f"{source}:{where} is not valid YAML: {getattr(error, 'problem', error)}") from error
        if not isinstance(document, dict):
            raise RecipeError(f"{source}: a recipe is a YAML mapping with 'version' and 'passes' (or 'variants')")
        return cls.from_dict(document, source=source)

    @classmethod
    def from_dict(cls, document: dict[str, Any], source: str = "<recipe>") -> Recipe:
        document = dict(document)
        _check_keys(source, "", document, ALLOWED_TOP_LEVEL)
        version = document.pop("version", None)
        if version != RECIPE_VERSION:
            raise RecipeError(f"{source}: version={version!r} is not supported; allowed: {RECIPE_VERSION} (add 'version: 1' at the top)")
        if "passes" in document and "variants" in document:
            raise RecipeError(f"{source}: give either 'passes' (one variant) or 'variants' (a sweep), not both")
        variants: list[Variant] = []
        if "passes" in document:
            passes = parse_passes(document.pop("passes"), source, "passes")
            variants.append(Variant(name=variant_name(passes), passes=passes))
        for index, entry in enumerate(document.pop("variants", None) or []):
            where = f"variants[{index}]"
            if not isinstance(entry, dict) or "passes" not in entry:
                raise RecipeError(f"{source}: {where} must be a mapping with 'passes' (and optionally 'name')")
            _check_keys(source, where, entry, {"name", "passes"})
            passes = parse_passes(entry["passes"], source, f"{where}.passes")
            variants.append(Variant(name=str(entry.get("name") or variant_name(passes)), passes=passes))
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
        if not (compress_members == "all" or isinstance(compress_members, int) and compress_members >= 1 or isinstance(compress_members, list)):
            raise RecipeError(f"{source}: compress={compress_members!r}; allowed: 'all', a count of the largest ladder members (>= 1), or a list of member names")
        for key in ("model", "ladder", "out"):
            if key in document and document[key] is not None and not isinstance(document[key], str):
                raise RecipeError(f"{source}: {key}={document[key]!r} must be a string")
        trust = document.pop("trust_remote_code", False)
        if not isinstance(trust, bool):
            raise RecipeError(f"{source}: trust_remote_code={trust!r}; allowed: true, false")
        return cls(variants=variants, compress=compress_members, trust_remote_code=trust, source_file=source, **fields, **document)

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
        if self.trust_remote_code:
            document["trust_remote_code"] = True
        if self.export is not None:
            document["export"] = self.export.model_dump(mode="json", exclude_none=True)
        return document

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Recipe) and self.to_dict() == other.to_dict()

    def needs_calibration(self) -> bool:
        return any(get_pass(p.pass_name).needs_calibration for v in self.variants for p in v.passes)


ALLOWED_TOP_LEVEL = {"version", "model", "ladder", "compress", "passes", "variants", "data", "bench", "report", "out", "trust_remote_code", "export"}


def _check_keys(source: str, where: str, document: dict, allowed: set[str]) -> None:
    for key in document:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            place = f"{where}: " if where else ""
            raise RecipeError(f"{source}: {place}unknown key {key!r}{hint} (allowed: {', '.join(sorted(allowed))})")


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
        name = str(fields.pop("pass"))
        try:
            spec = get_pass(name)
        except RecipeError:
            raise
        except Exception as error:  # unknown pass: keep the registry's "did you mean" text
            raise RecipeError(f"{source}: {place}: {error}") from error
        config = _validate(spec.config, fields, source, f"{place} ({name})")
        for entry_list in (config.targets, config.ignore):
            for pattern in entry_list:
                try:
                    check_pattern(pattern)
                except Exception as error:
                    raise RecipeError(f"{source}: {place} ({name}): {error}") from error
        configs.append(config)
    return configs


def _validate(model_class: type[BaseModel], fields: Any, source: str, place: str) -> Any:
    if not isinstance(fields, dict):
        raise RecipeError(f"{source}: {place} must be a mapping, got {fields!r}")
    try:
        return model_class(**fields)
    except ValidationError as error:
        raise RecipeError(f"{source}: {place}: {describe_validation_error(error, model_class)}") from None


def describe_validation_error(error: ValidationError, model_class: type[BaseModel]) -> str:
    """One line for the first pydantic error: field, bad value, what is allowed."""
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "(config)"
    allowed_fields = sorted(model_class.model_fields)
    if first["type"] == "extra_forbidden":
        close = difflib.get_close_matches(field, allowed_fields, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown field {field!r}{hint} (allowed fields: {', '.join(allowed_fields)})"
    top = str(first["loc"][0]) if first["loc"] else ""
    description = model_class.model_fields[top].description if top in model_class.model_fields else None
    bad = first.get("input")
    text = f"field {field!r}={bad!r}: {first['msg']}"
    if description:
        text += f" ({description})"
    return text


def validate_bench(bench: Any, source: str) -> dict[str, Any]:
    """Check a recipe's `bench:` section against the benchmark's config schema."""
    if not isinstance(bench, dict):
        raise RecipeError(f"{source}: bench must be a mapping, got {bench!r}")
    from compress.bench.config import BenchConfig

    _validate(BenchConfig, bench, source, "bench")
    return bench


def variant_name(passes: list[PassConfig]) -> str:
    """A readable name for a list of passes, e.g. 'rtn-w4-g128' or 'magnitude-2:4+rtn-w8-pc'."""
    return "+".join(p.tag() if hasattr(p, "tag") else p.pass_name for p in passes)
