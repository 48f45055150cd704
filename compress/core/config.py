"""The base of every pass config: a pydantic model keyed to one algorithm by `pass_name`.

    >>> from compress.core.config import PassConfig
    >>> class Noop(PassConfig):
    ...     pass_name = "noop"
    >>> Noop().targets, Noop().tag()
    (['Linear'], 'noop')
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field


class PassConfig(BaseModel):
    """Base of every pass config: unknown keys are errors, every field typed and described."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)

    pass_name: ClassVar[str] = ""

    version: int = Field(1, ge=1, description="Config schema version, for recipes that outlive the code.")
    targets: list[str] = Field(
        default_factory=lambda: ["Linear"],
        description="Modules to transform: class names, module names/suffixes, or 're:<regex>'. "
        "Embeddings and lm_head are only selected when named explicitly.",
    )
    ignore: list[str] = Field(default_factory=list, description="Modules to leave alone, same syntax as targets.")

    def tag(self) -> str:
        """Short, readable name for variants: the pass name and the fields set off their default."""
        parts = [self.pass_name]
        for name, info in type(self).model_fields.items():
            if name in ("version", "targets", "ignore"):
                continue
            value = getattr(self, name)
            if value != info.get_default(call_default_factory=True):
                parts.append(f"{name}{value}")
        return "-".join(parts)

    def to_recipe_dict(self) -> dict[str, Any]:
        """The recipe form: `{"pass": name, **fields}`."""
        return {"pass": self.pass_name, **self.model_dump(mode="json")}
