"""`scalecompress demo`: the whole mission on the embedded default, in one command."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Optional

import typer

from compress.cli import app

DEMO_RECIPE = "demo.yaml"


def demo_recipe_path() -> Path:
    """The packaged demo recipe (also at recipes/demo.yaml in a checkout)."""
    return Path(str(files("compress") / "recipes" / DEMO_RECIPE))


@app.command("demo")
def demo_command(
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default: scalecompress-out/demo)."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda or cuda:N (default: cpu)."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bars."),
) -> None:
    """Train (or reuse) the pocket ladder on the embedded plays, compress its two largest members
    six ways, benchmark all, fit the dense scaling curve, and write plots + report + recommendation.

    Cold: about 12 minutes on 2 CPU cores (ladder training included); warm rerun: about a minute.
    Equivalent to `scalecompress run recipes/demo.yaml`.
    """
    from compress.cli.commands import run_command

    run_command(
        recipe=demo_recipe_path(),
        model=None,
        out=out,
        device=device,
        trust_remote_code=False,
        overwrite=False,
        dry_run=False,
        shard=None,
        json_output=json_output,
        no_progress=no_progress,
    )
