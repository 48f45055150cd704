"""Errors a user can act on. The CLI prints them as one line and maps them to exit codes."""


class ScaleCompressError(Exception):
    """A failure that is not the user's input (exit code 1)."""

    exit_code = 1


class UserError(ScaleCompressError):
    """Bad input: a recipe, a flag, a path, a model id (exit code 2)."""

    exit_code = 2


class RecipeError(UserError):
    """A recipe that fails validation; the message names file, pass, field and allowed values."""


class ModelLoadError(ScaleCompressError):
    """A checkpoint that cannot be loaded (unreachable hub, missing files, unsafe format)."""
