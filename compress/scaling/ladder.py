"""A ladder = the dense checkpoints of one family, smallest first: from a hub or trained here.

Ladders are YAML data in `recipes/ladders/`. A *hub* ladder lists checkpoint ids (Pythia,
GPT-2, Qwen2.5, SmolLM2); a *trained* ladder (the pocket ladder) lists sizes and a recipe, and
its checkpoints are produced by `scalecompress ladder train` on the embedded plays or your own
text, then cached. One call returns either as a `Ladder`:

    >>> from compress.scaling.ladder import load_ladder
    >>> [m.path for m in load_ladder("smollm2").members]
    ['HuggingFaceTB/SmolLM2-135M', 'HuggingFaceTB/SmolLM2-360M', 'HuggingFaceTB/SmolLM2-1.7B']
    >>> pocket = load_ladder("pocket", progress=False)  # doctest: +SKIP
    >>> [round(m.val_bits_per_byte, 2) for m in pocket.members]  # doctest: +SKIP
    [3.07, 2.98, 2.78, 2.49, 2.18, 2.08]

The first `load_ladder("pocket")` trains (about 8-10 minutes on 2 CPU cores); later calls
read the cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from compress.errors import UserError

LADDERS_DIR = Path(__file__).resolve().parents[1] / "recipes" / "ladders"  # package data; ./recipes links here
MEMBER_KEYS = ("name", "path", "params", "non_embedding_params", "tokens", "train_loss", "val_loss", "val_bits_per_byte")


@dataclass(frozen=True)
class LadderMember:
    name: str
    path: str  # hub id or local checkpoint folder: what compress.checkpoint.load takes
    params: int | None = None  # all parameters (tied embedding once); None until measured
    non_embedding_params: int | None = None
    tokens: int | None = None  # training tokens seen
    train_loss: float | None = None
    val_loss: float | None = None  # mean NLL per token (nats) on the validation text
    val_bits_per_byte: float | None = None
    embedding_share: float | None = None
    details: dict = field(default_factory=dict, compare=False)  # steps, lr, architecture, timings

    @classmethod
    def from_dict(cls, record: dict) -> LadderMember:
        known = {k: record.get(k) for k in (*MEMBER_KEYS, "embedding_share")}
        return cls(**known, details={k: v for k, v in record.items() if k not in known})

    def to_json(self) -> dict:
        out = {k: getattr(self, k) for k in MEMBER_KEYS}
        out["embedding_share"] = self.embedding_share
        return {**out, **self.details}


@dataclass(frozen=True)
class Ladder:
    family: str
    members: list[LadderMember]
    kind: str = "hub"  # "hub" or "trained"
    info: dict = field(default_factory=dict)  # manifest fields: corpus, seed, rules, path, ...

    @property
    def path(self) -> str | None:
        return self.info.get("path")

    def to_json(self) -> dict:
        """The manifest as one JSON-ready dict: {"family", "kind", ..., "members": [...]}."""
        return {"family": self.family, "kind": self.kind, **self.info, "members": [m.to_json() for m in self.members]}


class HubMember(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, description="Short name used in results (e.g. pythia-70m).")
    id: str = Field(..., min_length=1, description="Hugging Face hub id or local folder.")
    params: int | None = Field(None, ge=1, description="Total parameters, if known; benchmarks measure it anyway.")
    non_embedding_params: int | None = Field(None, ge=1, description="Non-embedding parameters, if known.")
    tokens: int | None = Field(None, ge=1, description="Training tokens D, as published (for L(N, D) fits).")


class HubLadderSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    family: str = Field(..., min_length=1, description="Family name used in results and plots.")
    kind: Literal["hub"] = Field("hub", description="'hub': members are existing checkpoints.")
    description: str = Field("", description="One line for `scalecompress ladder show`.")
    members: list[HubMember] = Field(..., min_length=1, description="Checkpoints, smallest first.")


def available_ladders() -> list[str]:
    """Names of the ladders shipped in recipes/ladders (plus 'pocket', always available)."""
    names = {p.stem for p in LADDERS_DIR.glob("*.yaml")} if LADDERS_DIR.is_dir() else set()
    return sorted(names | {"pocket"})


def resolve_spec(spec: str) -> Path | None:
    """The YAML file a ladder spec names, or None for the built-in pocket defaults."""
    path = Path(spec).expanduser()
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise UserError(f"ladder file {spec!r} does not exist; give a YAML path or one of: {', '.join(available_ladders())}")
        return path
    shipped = LADDERS_DIR / f"{spec}.yaml"
    if shipped.is_file():
        return shipped
    if spec == "pocket":
        return None
    raise UserError(f"unknown ladder {spec!r}; allowed: {', '.join(available_ladders())}, or a path to a ladder YAML")


def read_spec(spec: str):
    """Parse a ladder spec into a HubLadderSpec or a PocketLadderSpec (validated)."""
    from compress.scaling.pocket import PocketLadderSpec, validation_message

    path = resolve_spec(spec)
    if path is None:
        return PocketLadderSpec()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise UserError(f"ladder file {path} is not valid YAML: {str(error).splitlines()[0]}") from error
    if not isinstance(data, dict):
        raise UserError(f"ladder file {path} must be a mapping with 'family' and 'members' (hub) or 'sizes' (trained)")
    kind = data.get("kind", "hub")
    if kind not in ("hub", "trained"):
        raise UserError(f"ladder file {path}: kind {kind!r} is unknown; allowed: hub, trained")
    model = HubLadderSpec if kind == "hub" else PocketLadderSpec
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise UserError(validation_message(error, f"ladder file {path}")) from error


def load_ladder(spec: str, *, progress: bool = True, cached_only: bool = False, **overrides) -> Ladder:
    """Load a ladder by name ("pythia", "pocket", ...) or YAML path; trained ladders train once.

    Overrides apply to trained ladders: corpus, sizes, seed, device, and any recipe field
    (tokens, steps, vocab_size, lr, seq_len, ...). `cached_only=True` never trains.

        >>> from compress.scaling.ladder import load_ladder
        >>> load_ladder("pythia").members[0].path
        'EleutherAI/pythia-70m'
    """
    parsed = read_spec(spec)
    if isinstance(parsed, HubLadderSpec):
        if overrides:
            raise UserError(f"ladder {spec!r} is a hub ladder; training options ({', '.join(sorted(overrides))}) apply only to trained ladders such as pocket")
        members = [LadderMember(name=m.name, path=m.id, params=m.params, non_embedding_params=m.non_embedding_params, tokens=m.tokens) for m in parsed.members]
        return Ladder(family=parsed.family, members=members, kind="hub", info={"description": parsed.description, "source": str(resolve_spec(spec))})
    top_level = {"corpus", "sizes", "seed", "device"}
    unknown = set(overrides) - top_level - set(type(parsed.recipe).model_fields)
    if unknown:
        allowed = sorted(top_level | set(type(parsed.recipe).model_fields))
        raise UserError(f"unknown ladder option(s) {', '.join(sorted(unknown))}; allowed: {', '.join(allowed)}")
    recipe = {**parsed.recipe.model_dump(), **{k: v for k, v in overrides.items() if k not in top_level and v is not None}}
    return train_pocket_ladder(
        corpus=overrides.get("corpus") or parsed.corpus,
        sizes=overrides.get("sizes") or parsed.sizes,
        seed=parsed.seed if overrides.get("seed") is None else overrides["seed"],
        progress=progress,
        device=overrides.get("device"),
        recipe=recipe,
        family=parsed.family,
        cached_only=cached_only,
    )


def train_pocket_ladder(corpus=None, sizes=None, *, seed: int = 0, progress: bool = True, device: str | None = None,
                        tokens: int | None = None, steps: int | None = None, vocab_size: int | None = None,
                        recipe=None, family: str = "pocket", cached_only: bool = False) -> Ladder:
    """Train the pocket ladder on `corpus` ("plays" by default, or a file/folder/glob/hf: source).

    Cached by corpus + tokenizer + recipe + seed: a second call reads the manifest and returns
    in about a second. `tokens` sets the budget of the reference size (the rule still scales
    it with size); `steps` fixes steps per member; `recipe` is a PocketRecipe or a dict of its
    fields. Raises UserError for bad sizes or options.

        >>> from compress.scaling.ladder import train_pocket_ladder
        >>> ladder = train_pocket_ladder("notes.txt", ["d16-l1", "d32-l2"], steps=20)   # doctest: +SKIP
        >>> ladder.members[-1].non_embedding_params                                    # doctest: +SKIP
        26784
    """
    from compress.data.corpus import load_corpus
    from compress.scaling.build import build_ladder
    from compress.scaling.pocket import DEFAULT_SIZES, PocketRecipe, plan_ladder, validation_message

    fields = recipe.model_dump() if isinstance(recipe, PocketRecipe) else dict(recipe or {})
    fields.update({k: v for k, v in {"tokens": tokens, "steps": steps, "vocab_size": vocab_size}.items() if v is not None})
    try:
        recipe = PocketRecipe.model_validate(fields)
    except ValidationError as error:
        raise UserError(validation_message(error, "pocket ladder recipe")) from error
    if not isinstance(seed, int):
        raise UserError(f"seed={seed!r} must be an integer, e.g. 0")
    plans = plan_ladder(sizes or DEFAULT_SIZES, recipe)
    return build_ladder(load_corpus(corpus), plans, recipe, seed=seed, family=family, device=device, progress=progress, cached_only=cached_only)
