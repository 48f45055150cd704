"""The CLI contract, walked over every command: help, --json errors, --version, -q/-v, renamed
flags, Ctrl-C, --debug (defects 11-14 and the contract section of issue 12)."""

from __future__ import annotations

import json
import os
import signal

import pytest

from compress.cli import app, main
from tests.reliability.conftest import cli


def _commands():
    import typer

    from compress.cli import _register_commands

    _register_commands()
    root = typer.main.get_command(app)
    paths = []

    def walk(command, path):
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                walk(sub, [*path, name])
        else:
            paths.append(path)

    walk(root, [])
    return paths


COMMANDS = _commands()


def test_every_command_is_walked():
    assert {"run", "validate", "info", "bench", "recommend", "report", "demo"} <= {p[0] for p in COMMANDS}
    assert ["ls", "passes"] in COMMANDS and ["ladder", "train"] in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_help_teaches_with_plain_metavars_and_uniform_flags(path, capsys):
    code, out, err = cli(capsys, *path, "--help")
    assert code == 0 and err == ""
    assert "{" not in out.split("\n")[0] and "<list" not in out and "<str>" not in out and "<path>" not in out
    assert "--json" in out
    if path[0] in ("run", "bench", "demo", "info", "validate", "recommend", "report") or path == ["ladder", "train"]:
        assert "--no-progress" in out
    if "--device" in out and path[0] != "recommend":
        assert "auto, cpu, cuda or cuda:N" in " ".join(out.split())


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_answers_a_bad_flag_with_one_line_and_a_json_error(path, capsys):
    code, out, err = cli(capsys, *path, "--no-such-flag", "--json")
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("scalecompress: error: No such option: --no-such-flag")
    assert json.loads(out) == {"error": err.strip().removeprefix("scalecompress: error: "), "kind": "usage", "exit_code": 2}


def test_version_quiet_and_verbose(capsys, tmp_path):
    from compress import __version__

    assert cli(capsys, "--version") == (0, f"scalecompress {__version__}\n", "")
    recipe = tmp_path / "r.yaml"
    recipe.write_text("version: 1\npasses: [{pass: rtn}]\n")
    assert cli(capsys, "-q", "validate", recipe)[0] == 0
    assert cli(capsys, "-v", "validate", recipe)[0] == 0
    assert "TQDM_DISABLE" not in os.environ  # -q is undone after the command (main() may run in-process)


def test_renamed_flags_work_as_deprecated_aliases_with_one_notice(tmp_path, capsys):
    results = tmp_path / "results.jsonl"
    results.write_text(json.dumps({"model": "m", "variant": "dense", "device": "cpu", "scenario": "s", "weight_bytes": 10, "bits_per_byte": 1.0,
                                   "decode_ms_per_token": 1.0, "energy_j_per_token": 0.1}) + "\n")
    for old, new, value in (("--max-memory", "--max-weight-bytes", "1MB"), ("--max-latency-ms", "--max-decode-ms", "5"), ("--max-energy-j", "--max-energy-j-per-token", "1")):
        code, out, err = cli(capsys, "recommend", results, old, value, "--json")
        assert code == 0 and json.loads(out)["pick"]["model"] == "m"
        assert err == f"scalecompress: warning: {old} is deprecated and will be removed in 0.3; use {new}\n"
        assert cli(capsys, "recommend", results, f"{new}={value}")[2] == ""


def test_ctrl_c_says_how_to_resume_and_exits_130(tmp_path, capsys, monkeypatch):
    import compress.sweep as sweep

    recipe = tmp_path / "r.yaml"
    recipe.write_text("version: 1\nmodel: some/model\npasses: [{pass: rtn}]\n")
    monkeypatch.setattr(sweep, "run_recipe", lambda *a, **k: os.kill(os.getpid(), signal.SIGINT))
    code, out, err = cli(capsys, "run", recipe, "--json")
    assert code == 130 and err == "scalecompress: error: interrupted; rerun the same command to resume (finished jobs are kept)\n"
    assert json.loads(out)["kind"] == "interrupted"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored after the command


def test_debug_adds_the_traceback_but_keeps_the_exit_code(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("version: 1\npasses: [{pass: rnt}]\n")
    code, _, err = cli(capsys, "--debug", "validate", recipe)
    assert code == 2 and "Traceback" in err and err.splitlines()[-1].startswith("scalecompress: error:")


def test_a_python_warning_prints_as_one_line(capsys, tmp_path, monkeypatch):
    import warnings

    from compress.recipe import Recipe

    recipe = tmp_path / "r.yaml"
    recipe.write_text("version: 1\npasses: [{pass: rtn}]\n")
    original = Recipe.from_yaml

    def warn_then_read(path):
        warnings.warn("something to know", UserWarning)
        return original(path)

    monkeypatch.setattr(Recipe, "from_yaml", staticmethod(warn_then_read))
    code, _, err = cli(capsys, "validate", recipe)
    assert code == 0 and err == "scalecompress: warning: something to know\n"


def test_main_as_a_script_exit_code(tmp_path):
    # `python -m compress` passes main()'s code to sys.exit: the contract holds for a real process too.
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "compress", "validate", str(tmp_path / "none.yaml"), "--json"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert done.returncode == 2 and json.loads(done.stdout)["kind"] == "bad_recipe" and len(done.stderr.splitlines()) == 1


def test_main_returns_int_codes():
    assert main(["--version"]) == 0
