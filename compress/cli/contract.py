"""The CLI contract, in one place: exit codes, one-line errors, JSON error objects, warnings,
deprecated flag names, Ctrl-C, and help that names its metavars plainly.

Exit codes: 0 success, 1 failure, 2 bad input (recipe, flag, path, model, checkpoint),
3 an accuracy gate was crossed or could not be evaluated, 130 interrupted.

Every error is one line on stderr, `scalecompress: error: <what>; <what to do>`; under `--json`
stdout also carries one object `{"error": ..., "kind": ..., "exit_code": ...}` so that pipelines
parse failures too. `--debug` adds the traceback; it never changes the exit code.
"""

from __future__ import annotations

import json
import signal
import sys
import traceback
import warnings
from contextlib import contextmanager

from compress.errors import ScaleCompressError, one_line

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT, EXIT_GATE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

# Renamed flags keep working for one release (until 0.3), with a one-line notice.
DEPRECATED_FLAGS = {
    "--max-memory": "--max-weight-bytes",
    "--max-latency-ms": "--max-decode-ms",
    "--max-energy-j": "--max-energy-j-per-token",
}


class Interrupted(BaseException):
    """Ctrl-C, raised by our SIGINT handler so that click cannot turn it into a silent Abort."""


def _on_sigint(signum, frame):  # noqa: ARG001 - signal handler signature
    raise Interrupted()


@contextmanager
def handlers():
    """For one command: Ctrl-C becomes `Interrupted`, Python warnings print as one
    `scalecompress: warning:` line; -q/-v settings are undone after (main() may be called in-process)."""
    import os

    previous_sigint = None
    try:
        previous_sigint = signal.signal(signal.SIGINT, _on_sigint)
    except ValueError:  # not the main thread
        pass
    saved_env = os.environ.get("TQDM_DISABLE")
    verbosity = _hf_verbosity()
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            yield
        finally:
            if previous_sigint is not None:
                signal.signal(signal.SIGINT, previous_sigint)
            if "transformers" in sys.modules and _hf_verbosity() != verbosity:
                from transformers.utils import logging as hf_logging

                hf_logging.set_verbosity(verbosity)
            if saved_env is None:
                os.environ.pop("TQDM_DISABLE", None)
            else:
                os.environ["TQDM_DISABLE"] = saved_env


def _hf_verbosity() -> int:
    if "transformers" not in sys.modules:
        return 30  # logging.WARNING, transformers' default
    from transformers.utils import logging as hf_logging

    return hf_logging.get_verbosity()


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ARG001
    print(f"scalecompress: warning: {one_line(str(message), 400)}", file=sys.stderr if file is None else file)


def rename_deprecated(args: list[str]) -> list[str]:
    """Replace deprecated flag names by the current ones, with one notice per old name."""
    renamed = []
    for arg in args:
        name, equals, value = arg.partition("=")
        if name in DEPRECATED_FLAGS:
            new = DEPRECATED_FLAGS[name]
            print(f"scalecompress: warning: {name} is deprecated and will be removed in 0.3; use {new}", file=sys.stderr)
            arg = new + equals + value
        renamed.append(arg)
    return renamed


def report_error(message: str, *, kind: str, exit_code: int, json_output: bool, debug: bool, error: BaseException | None = None) -> int:
    """Print one error line (and the JSON error object under --json); return the exit code."""
    if debug and error is not None:
        traceback.print_exception(type(error), error, error.__traceback__, file=sys.stderr)
    text = one_line(message)
    print(f"scalecompress: error: {text}", file=sys.stderr)
    if json_output:
        sys.stdout.write(json.dumps({"error": text, "kind": kind, "exit_code": exit_code}) + "\n")
    return exit_code


def exit_for(error: BaseException, *, usage_error: type, click_exception: type) -> tuple[str, str, int]:
    """(message, kind, exit code) for any exception that reaches the top of the CLI."""
    if isinstance(error, ScaleCompressError):
        return str(error), getattr(error, "kind", "failure"), error.exit_code
    if isinstance(error, Interrupted):
        return "interrupted; rerun the same command to resume (finished jobs are kept)", "interrupted", EXIT_INTERRUPTED
    if isinstance(error, usage_error):
        context = getattr(error, "ctx", None)
        where = f" (see `{context.command_path} --help`)" if context is not None else ""
        return f"{error.format_message()}{where}", "usage", EXIT_BAD_INPUT
    if isinstance(error, click_exception):
        return error.format_message(), "usage", error.exit_code or EXIT_FAILURE
    if isinstance(error, (UnicodeDecodeError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)):
        return f"{type(error).__name__}: {error}", "bad_input", EXIT_BAD_INPUT
    return f"failed: {type(error).__name__}: {error} (rerun with --debug for the traceback)", "failure", EXIT_FAILURE


def plain_metavars(command) -> None:
    """Help shows RECIPE, PATH, TEXT, N instead of typer's `{recipe}` and `<list[str]>`."""
    for param in getattr(command, "params", []):
        if getattr(param, "metavar", None) or getattr(param, "is_flag", False) or getattr(param, "count", False):
            continue
        if getattr(param, "param_type_name", "") == "argument":
            shown = param.name.upper() if param.required else f"[{param.name.upper()}]"
            param.metavar = param.name.upper()
            param._usage_display_name = lambda shown=shown: shown  # typer draws {NAME}
            param.display_type_rich = lambda ctx=None: ""  # and NAME <path>
            continue
        annotation = str(getattr(getattr(param, "type_descriptor", None), "annotation", "")).lower()
        if "path" in annotation:
            param.metavar = "PATH"
        elif "int" in annotation:
            param.metavar = "N"
        elif "float" in annotation:
            param.metavar = "X"
        else:
            param.metavar = "TEXT"
    for sub in getattr(command, "commands", {}).values():
        plain_metavars(sub)
