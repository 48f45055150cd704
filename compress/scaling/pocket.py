"""The pocket ladder's recipe as data: member shapes, the token budget rule, the LR rule.

A member is named by its width and depth, `d<width>-l<layers>` (e.g. `d128-l4`); everything
else follows from one rule set, so the ladder differs only in size:

- LLaMA architecture (or GPT-2 with `architecture: gpt2`: learned positions, LayerNorm, GELU MLP
  of `gpt2_ffn_ratio * width`, no dropout), tied input/output embeddings,
  `heads = max(1, width // head_dim)`, MLP width rounded up to a multiple of `ffn_multiple`;
- tokens = `tokens * (N / tokens_ref_params) ** tokens_exponent`, N = non-embedding params,
  rounded to whole batches: bigger members see more data (a flat budget under-trains them);
- peak LR = `lr * (lr_ref_width / width) ** lr_width_exponent`: narrower models take larger steps.

    >>> from compress.scaling.pocket import PocketRecipe, plan_member
    >>> plan = plan_member("d128-l4", PocketRecipe())
    >>> plan.name, plan.heads, plan.intermediate_size, plan.non_embedding_params
    ('pocket-d128-l4', 4, 352, 803968)
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from compress.errors import UserError

DEFAULT_SIZES = ("d24-l2", "d32-l2", "d48-l2", "d64-l3", "d96-l4", "d128-l4")
_SIZE = re.compile(r"^(?:pocket-(?:gpt2-)?)?d(?P<width>\d+)-l(?P<layers>\d+)$")


class PocketRecipe(BaseModel):
    """One training recipe for every member (AdamW, warmup + cosine, a token budget rule)."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(1, description="Recipe format version; bump when a field's meaning changes.")
    architecture: Literal["llama", "gpt2"] = Field(
        "llama",
        description="Member architecture: 'llama' (RMSNorm, rotary, SwiGLU) or 'gpt2' (learned positions, LayerNorm, "
        "GELU, Conv1D layers): a second architecture, so no claim is tuned to one model family.",
    )
    vocab_size: int = Field(1024, ge=259, le=65536, description="Byte-level BPE vocabulary; small, so the tied embedding stays a moderate share of each member.")
    seq_len: int = Field(128, ge=8, le=8192, description="Training context in tokens (and the members' max_position_embeddings).")
    batch_size: int = Field(32, ge=1, le=4096, description="Sequences per optimizer step.")
    lr: float = Field(4e-3, gt=0, le=1, description="Peak learning rate of a member of width lr_ref_width.")
    lr_ref_width: int = Field(128, ge=1, description="Width at which the peak learning rate equals lr.")
    lr_width_exponent: float = Field(0.5, ge=0, le=2, description="Peak LR scales as (lr_ref_width / width) ** this.")
    beta1: float = Field(0.9, ge=0, lt=1, description="AdamW beta1.")
    beta2: float = Field(0.95, ge=0, lt=1, description="AdamW beta2 (0.95: steadier than 0.999 on short runs).")
    weight_decay: float = Field(0.1, ge=0, description="AdamW decoupled weight decay, on matrices and embeddings only.")
    warmup_fraction: float = Field(0.05, ge=0, lt=1, description="Share of steps spent in linear LR warmup.")
    min_warmup_steps: int = Field(10, ge=0, description="Warmup lasts at least this many steps (short runs need it most).")
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="Cosine decay ends at this fraction of the peak LR.")
    grad_clip: float = Field(1.0, gt=0, description="Clip the global gradient norm to this.")
    init_std: float = Field(0.02, gt=0, description="Std of the normal init of linear and embedding weights.")
    head_dim: int = Field(32, ge=4, description="Attention head width: heads = max(1, width // head_dim).")
    ffn_ratio: float = Field(8 / 3, gt=0, description="MLP width / model width, as in LLaMA (SwiGLU keeps params near a 4x MLP).")
    ffn_multiple: int = Field(16, ge=1, description="Round the MLP width up to a multiple of this.")
    gpt2_ffn_ratio: float = Field(4.0, gt=0, description="MLP width / model width of 'gpt2' members (GPT-2's 4x GELU MLP).")
    tokens: int = Field(1_200_000, ge=1, description="Token budget of a member with tokens_ref_params non-embedding params.")
    tokens_ref_params: int = Field(150_000, ge=1, description="Non-embedding size at which the budget equals `tokens`.")
    tokens_exponent: float = Field(0.5, ge=0, le=2, description="Budget grows as (N / tokens_ref_params) ** this.")
    steps: int | None = Field(None, ge=1, description="Fixed optimizer steps per member, replacing the token rule (quick trials, tests).")
    eval_batch_size: int = Field(32, ge=1, description="Validation windows per forward pass.")

    def token_budget_rule(self) -> str:
        batch = f"whole batches of {self.batch_size}x{self.seq_len} tokens"
        if self.steps is not None:
            return f"fixed: {self.steps} steps per member ({batch}); the token rule is switched off"
        return f"tokens = {self.tokens:,} * (N / {self.tokens_ref_params:,}) ** {self.tokens_exponent:g}, N = non-embedding params, rounded to {batch}"

    def lr_rule(self) -> str:
        return f"peak lr = {self.lr:g} * ({self.lr_ref_width} / width) ** {self.lr_width_exponent:g}; warmup {self.warmup_fraction:.0%} of steps (>= {self.min_warmup_steps}), cosine to {self.min_lr_ratio:.0%}"


class PocketLadderSpec(BaseModel):
    """A trained ladder as data (recipes/ladders/pocket.yaml): sizes, corpus, seed, recipe."""

    model_config = ConfigDict(extra="forbid")

    family: str = Field("pocket", min_length=1, description="Ladder (family) name used in results and plots.")
    kind: Literal["trained"] = Field("trained", description="'trained': members are produced by training.")
    description: str = Field(
        "LLaMA-style 14K-804K non-embedding params, trained here on the embedded plays (or --corpus)",
        description="One line for `scalecompress ladder show`.",
    )
    corpus: str = Field("plays", description="Text to train on: 'plays' or a file, folder, glob or hf: source.")
    seed: int = Field(0, description="Seeds initialisation and data order; same seed, same weights.")
    sizes: list[str] = Field(list(DEFAULT_SIZES), min_length=1, description="Members as d<width>-l<layers>, any order.")
    recipe: PocketRecipe = Field(default_factory=PocketRecipe, description="The one training recipe.")


@dataclass(frozen=True)
class MemberPlan:
    name: str
    width: int
    layers: int
    heads: int
    intermediate_size: int
    vocab_size: int
    params: int
    non_embedding_params: int
    embedding_share: float
    steps: int
    tokens: int
    lr: float

    def architecture(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k in ("width", "layers", "heads", "intermediate_size", "vocab_size")}


def validation_message(error: ValidationError, where: str) -> str:
    from compress.errors import describe_validation_error

    return f"{where}: {describe_validation_error(error)}; fix it or remove the field to use the default"


def parse_size(size: str) -> tuple[int, int]:
    match = _SIZE.match(size.strip())
    if not match:
        raise UserError(f"ladder size {size!r} is not d<width>-l<layers>; allowed e.g. {', '.join(DEFAULT_SIZES)}")
    width, layers = int(match["width"]), int(match["layers"])
    if not (4 <= width <= 8192 and 1 <= layers <= 128):
        raise UserError(f"ladder size {size!r}: width must be 4..8192 and layers 1..128")
    return width, layers


def parse_sizes(sizes) -> list[str]:
    """Sizes from a list or a comma-separated string ("d32-l2,d64-l3")."""
    items = sizes.split(",") if isinstance(sizes, str) else list(sizes)
    items = [s.strip() for s in items if s and s.strip()]
    if not items:
        raise UserError("ladder sizes are empty; give at least one, e.g. d32-l2,d64-l3,d128-l4")
    return items


def plan_member(size: str, recipe: PocketRecipe) -> MemberPlan:
    """Shape, parameter counts, token budget and LR of one member under the recipe."""
    width, layers = parse_size(size)
    heads = max(1, width // recipe.head_dim)
    if width % heads:
        raise UserError(f"ladder size {size!r}: width {width} does not split into {heads} heads of ~{recipe.head_dim}; pick a width that is a multiple of {heads}")
    if recipe.architecture == "gpt2":
        ffn = int(math.ceil(recipe.gpt2_ffn_ratio * width / recipe.ffn_multiple) * recipe.ffn_multiple)
        # Per layer: c_attn (3 w^2 + 3 w), c_proj (w^2 + w), c_fc (w ffn + ffn), mlp c_proj (ffn w + w),
        # two LayerNorms (weight + bias); + final LayerNorm. Learned positions count as embedding.
        non_embedding = layers * (4 * width * width + 2 * width * ffn + 9 * width + ffn) + 2 * width
        embedding = (recipe.vocab_size + recipe.seq_len) * width  # tied head counted once
    else:
        ffn = int(math.ceil(recipe.ffn_ratio * width / recipe.ffn_multiple) * recipe.ffn_multiple)
        # Per layer: q,k,v,o (4 w^2), SwiGLU gate/up/down (3 w ffn), two RMSNorm weights; + final norm.
        non_embedding = layers * (4 * width * width + 3 * width * ffn + 2 * width) + width
        embedding = recipe.vocab_size * width  # tied: counted once
    batch_tokens = recipe.batch_size * recipe.seq_len
    if recipe.steps is not None:
        steps = recipe.steps
    else:
        budget = recipe.tokens * (non_embedding / recipe.tokens_ref_params) ** recipe.tokens_exponent
        steps = max(1, round(budget / batch_tokens))
    return MemberPlan(
        name=f"pocket-{'gpt2-' if recipe.architecture == 'gpt2' else ''}d{width}-l{layers}",
        width=width,
        layers=layers,
        heads=heads,
        intermediate_size=ffn,
        vocab_size=recipe.vocab_size,
        params=non_embedding + embedding,
        non_embedding_params=non_embedding,
        embedding_share=round(embedding / (non_embedding + embedding), 4),
        steps=steps,
        tokens=steps * batch_tokens,
        lr=recipe.lr * (recipe.lr_ref_width / width) ** recipe.lr_width_exponent,
    )


def plan_ladder(sizes, recipe: PocketRecipe) -> list[MemberPlan]:
    """Plans for all sizes, smallest first; duplicates are an error."""
    plans = [plan_member(size, recipe) for size in parse_sizes(sizes)]
    names = [p.name for p in plans]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UserError(f"ladder sizes repeat {', '.join(duplicates)}; list each size once")
    return sorted(plans, key=lambda p: (p.non_embedding_params, p.name))
