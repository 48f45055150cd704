"""The `scalecompress` command. Thin: each sub-module parses its flags and calls the library.

Exit codes: 0 success, 1 failure, 2 bad input (recipe, flag, path, model id), 3 an accuracy
gate was crossed, 130 interrupted. Errors print one line on stderr (and one JSON object on
stdout under --json); `--debug` adds the traceback. The contract lives in `cli/contract.py`.
"""

from __future__ import annotations

import os
import sys

import typer

from compress import __version__

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

_state = {"debug": False, "quiet": False, "verbose": False}


def _version(value: bool) -> None:
    if value:
        print(f"scalecompress {__version__}")
        raise typer.Exit(0)


@app.callback()
def _options(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors (the exit code stays the same)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors on stderr: no progress bars, logs or warnings."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="More detail on stderr, including transformers' own logs."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),  # noqa: ARG001
) -> None:
    _state.update(debug=debug, quiet=quiet, verbose=verbose)
    if quiet:
        import warnings

        os.environ["TQDM_DISABLE"] = "1"  # every tqdm bar, ours and transformers'
        warnings.simplefilter("ignore")
    if verbose:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_info()
    elif quiet:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()


def quiet() -> bool:
    return _state["quiet"]


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
    from compress.cli import contract

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _register_commands()
    with contract.handlers():
        return _main(list(sys.argv[1:] if argv is None else argv))


def _main(argv: list[str]) -> int:
    from compress.cli import contract

    args = contract.rename_deprecated(argv)
    debug, json_output = "--debug" in args, "--json" in args
    exceptions = _click_module()
    command = typer.main.get_command(app)
    contract.plain_metavars(command)
    try:
        # Without standalone mode, click *returns* the code of a `typer.Exit` instead of raising it.
        code = command.main(args=args, prog_name="scalecompress", standalone_mode=False)
        return code if isinstance(code, int) and not isinstance(code, bool) else 0
    except typer.Exit as done:
        return done.exit_code
    except typer.Abort:
        error: BaseException = contract.Interrupted()
    except (Exception, contract.Interrupted) as caught:  # noqa: BLE001 - the last line of defence for a CLI
        error = caught
    message, kind, code = contract.exit_for(error, usage_error=exceptions.UsageError, click_exception=exceptions.ClickException)
    return contract.report_error(message, kind=kind, exit_code=code, json_output=json_output, debug=debug, error=error)


def _click_module():
    # Recent typer releases vendor click as typer._click; older ones use click itself.
    try:
        from typer._click import exceptions
    except ImportError:  # pragma: no cover - depends on the installed typer
        from click import exceptions
    return exceptions
