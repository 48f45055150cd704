"""The `scalecompress` command. Thin: each sub-module parses its flags and calls the library.

Exit codes: 0 success, 1 failure, 2 bad input (recipe, flag, path, model id), 3 an accuracy
gate was crossed. User mistakes print one line on stderr; `--debug` shows the traceback.
"""

from __future__ import annotations

import os
import sys

import typer

from compress.errors import ScaleCompressError

app = typer.Typer(
    name="scalecompress",
    help=(
        "Quantize, prune and distill Transformer checkpoints, benchmark them on CPU or GPU, "
        "and see each result against the scaling curve of its dense family.\n\n"
        "Start with `scalecompress demo`; write recipes with `scalecompress ls passes` at hand."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

_state = {"debug": False}


@app.callback()
def _options(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
) -> None:
    _state["debug"] = debug


def _register_commands() -> None:
    # Explicit imports: each module adds its commands to `app` (no package walking).
    from compress.cli import commands  # noqa: F401

    for name in ("ladder", "bench", "recommend", "demo", "export"):
        try:
            __import__(f"compress.cli.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"compress.cli.{name}":
                raise


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code instead of raising SystemExit."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _register_commands()
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        # Without standalone mode, click *returns* the code of a `typer.Exit` instead of raising it.
        code = app(args=args, prog_name="scalecompress", standalone_mode=False)
        if isinstance(code, int) and not isinstance(code, bool):
            return code
    except ScaleCompressError as error:
        if debug:
            raise
        print(f"scalecompress: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("scalecompress: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except _click_exceptions() as error:
        return _click_exit(error)
    except Exception as error:  # noqa: BLE001 - the last line of defence for a CLI
        if debug:
            raise
        print(f"scalecompress: failed: {type(error).__name__}: {error} (rerun with --debug for the traceback)", file=sys.stderr)
        return 1
    return 0


def _click_module():
    # Recent typer releases vendor click as typer._click; older ones use click itself.
    try:
        from typer._click import exceptions
    except ImportError:  # pragma: no cover - depends on the installed typer
        from click import exceptions
    return exceptions


def _click_exceptions():
    return (_click_module().ClickException, typer.Exit, typer.Abort)


def _click_exit(error) -> int:
    if isinstance(error, typer.Exit):
        return error.exit_code
    if isinstance(error, typer.Abort):
        return 130
    error.show()
    return 2 if isinstance(error, _click_module().UsageError) else error.exit_code
