"""Errors a user can act on. The CLI prints them as one line and maps them to exit codes.

    >>> preview("x" * 500, 20)
    "'xxxxxxxxxxxxxxxxx…' (500 chars)"
"""

from __future__ import annotations

import reprlib

PREVIEW_CHARS = 80


class ScaleCompressError(Exception):
    """A failure that is not the user's input (exit code 1)."""

    exit_code = 1
    kind = "failure"


class UserError(ScaleCompressError):
    """Bad input: a recipe, a flag, a path, a model id (exit code 2)."""

    exit_code = 2
    kind = "bad_input"


class RecipeError(UserError):
    """A recipe that fails validation; the message names file, pass, field and allowed values."""

    kind = "bad_recipe"


class ModelLoadError(ScaleCompressError):
    """A checkpoint that cannot be loaded (unreachable hub, missing files, unsafe format).

    Exit code 2: the checkpoint named on the command line is the input that is wrong.
    """

    exit_code = 2
    kind = "bad_checkpoint"


class HubError(ScaleCompressError):
    """The Hugging Face Hub could not give a model (offline, unreachable, no such id): exit code 1."""

    kind = "hub_unavailable"


class GateError(ScaleCompressError):
    """An accuracy gate was crossed or could not be evaluated (exit code 3)."""

    exit_code = 3
    kind = "gate"


_repr = reprlib.Repr()
_repr.maxstring = PREVIEW_CHARS
_repr.maxother = PREVIEW_CHARS
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 4
_repr.maxlevel = 2


def preview(value, limit: int = PREVIEW_CHARS) -> str:
    """A short, one-line repr of a value a user gave (never the whole of a huge or deep value)."""
    if isinstance(value, str):
        text = repr(value) if len(value) <= limit else repr(value[: max(limit - 3, 1)])[:-1] + "…'" + f" ({len(value)} chars)"
    else:
        try:
            text = _repr.repr(value)
        except Exception:  # noqa: BLE001 - a preview must never fail
            text = f"<{type(value).__name__}>"
        if len(text) > limit:
            text = text[: limit - 1] + "…"
    return " ".join(text.split()) if "\n" in text else text


def shorten(text: str, limit: int = PREVIEW_CHARS) -> str:
    """Text cut to `limit` characters with an ellipsis (no quotes added)."""
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def one_line(text: str, limit: int = 600) -> str:
    """Collapse a message onto one line and cap its length (a CLI error is one line)."""
    text = " ".join(part.strip() for part in str(text).splitlines() if part.strip())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_validation_error(error, model_class=None, prefix: str = "") -> str:
    """The one implementation of "pydantic ValidationError -> one line": field, value preview,
    what went wrong, what is allowed (unknown keys get a did-you-mean and the allowed fields)."""
    import difflib

    first = error.errors()[0]
    field = prefix + (".".join(str(part) for part in first["loc"]) or "(config)")
    fields = sorted(getattr(model_class, "model_fields", {}) or {})
    if first["type"] == "extra_forbidden":
        name = str(first["loc"][-1]) if first["loc"] else field
        close = difflib.get_close_matches(name, fields, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown field {preview(field)}{hint} (allowed fields: {', '.join(fields)})"
    top = str(first["loc"][0]) if first["loc"] else ""
    info = getattr(model_class, "model_fields", {}).get(top) if model_class is not None else None
    description = getattr(info, "description", None)
    message = one_line(first["msg"], 200)
    text = f"field {field!r}={preview(first.get('input'))}: {message}"
    if description:
        text += f" ({description})"
    return text
