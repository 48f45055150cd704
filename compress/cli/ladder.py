"""`scalecompress ladder train | show`: the dense family that compressed models are measured against."""

from __future__ import annotations

import json
import sys
from typing import Optional

import typer

from compress.cli import app
from compress.cli.table import print_table

ladder_app = typer.Typer(
    help=(
        "Dense model families (ladders) that compressed models are measured against.\n\n"
        "A hub ladder (pythia, gpt2, qwen2.5, smollm2) lists checkpoints to download; the pocket "
        "ladder is trained here, on the CPU in minutes, on the embedded Shakespeare plays or on "
        "your own text ('which model size does my data need?'). `scalecompress ladder show` "
        "lists them all."
    ),
    no_args_is_help=True,
)
app.add_typer(ladder_app, name="ladder")


def _fmt(value, spec: str) -> str | None:
    return None if value is None else format(value, spec)


def _print_ladder(ladder) -> None:
    rows = [
        [m.name, _fmt(m.params, ","), _fmt(m.non_embedding_params, ","), _fmt(m.embedding_share, ".2f"), _fmt(m.tokens, ","),
         _fmt(m.train_loss, ".4f"), _fmt(m.val_loss, ".4f"), _fmt(m.val_bits_per_byte, ".4f")]
        for m in ladder.members
    ]
    print(f"ladder {ladder.family} ({ladder.kind}, {len(ladder.members)} members)")
    print_table(rows, ["member", "params", "non-emb params", "emb share", "tokens", "train loss", "val loss", "val bits/byte"])
    if ladder.kind == "hub":
        for member in ladder.members:
            print(f"  {member.name}: {member.path}")
        return
    print(f"folder: {ladder.info.get('path')}")
    corpus = ladder.info.get("corpus", {})
    print(f"corpus: {corpus.get('name')} ({corpus.get('split_rule')})")
    print(f"token budget: {ladder.info.get('token_budget_rule')}")
    print(f"learning rate: {ladder.info.get('lr_rule')}")


def _emit(ladder, json_output: bool) -> None:
    if json_output:
        sys.stdout.write(json.dumps(ladder.to_json(), indent=2) + "\n")
    else:
        _print_ladder(ladder)


@ladder_app.command("train")
def train_command(
    ladder: str = typer.Argument("pocket", help="Trained ladder to build: 'pocket' (LLaMA, recipes/ladders/pocket.yaml), 'pocket-gpt2' (GPT-2 architecture, Conv1D layers) or your own YAML with kind: trained."),
    corpus: Optional[str] = typer.Option(
        None, "--corpus",
        help=("Text to train on: 'plays' (default: the embedded Shakespeare, split by play; test plays never read), "
              "a file, a folder of .txt/.md files, a quoted glob, or hf:<dataset>[/<config>]:<split>[:<column>]. "
              "Own text is split into train/validation: every 10th file with 10+ files, else the last 10% of the text."),
    ),
    sizes: Optional[str] = typer.Option(None, "--sizes", help="Members as d<width>-l<layers>, comma-separated, e.g. d32-l2,d64-l3,d128-l4. Default: the YAML's sizes (6 members, 14K-804K non-embedding params)."),
    tokens: Optional[int] = typer.Option(None, "--tokens", help="Token budget at the reference size (150K non-embedding params); every member scales it by sqrt(N / 150K). Default 1,200,000."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Fixed optimizer steps per member instead of the token rule: quick trials only (larger members end under-trained)."),
    vocab_size: Optional[int] = typer.Option(None, "--vocab-size", help="Byte-level BPE vocabulary trained on the train text (default 1024; larger raises the embedding share)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed for initialisation and data order (default 0); same seed, same weights on one machine."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda or cuda:N (default auto: cuda with bf16 autocast if present, else cpu)."),
    json_output: bool = typer.Option(False, "--json", help="Print the ladder manifest as one JSON object: {\"members\": [{name, path, params, non_embedding_params, tokens, train_loss, val_loss, val_bits_per_byte}, ...], ...}."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bars (logs in CI)."),
) -> None:
    """Train a dense ladder (or read it from the cache) and print its members.

    The pocket ladder: LLaMA-style models with tied embeddings, one recipe (AdamW 0.9/0.95,
    wd 0.1, warmup + cosine to 10%), more tokens for bigger members. A cold run on the plays
    takes about 8-10 minutes on 2 CPU cores; the second call with the same corpus, sizes and
    settings returns from the cache in a second or two. Interrupted? Rerun: finished members are kept.

    \b
    Examples:
      scalecompress ladder train
      scalecompress ladder train --corpus notes/ --sizes d32-l2,d64-l3,d128-l4 --json
      scalecompress ladder train --corpus 'books/*.txt' --tokens 3000000
    """
    from compress.errors import UserError
    from compress.scaling.ladder import load_ladder, read_spec

    if read_spec(ladder).kind == "hub":
        raise UserError(f"ladder {ladder!r} lists hub checkpoints, there is nothing to train; see them with `scalecompress ladder show {ladder}`")
    overrides = {"corpus": corpus, "sizes": sizes, "tokens": tokens, "steps": steps, "vocab_size": vocab_size, "seed": seed, "device": device}
    result = load_ladder(ladder, progress=not no_progress, **{k: v for k, v in overrides.items() if v is not None})
    _emit(result, json_output)


@ladder_app.command("show")
def show_command(
    ladder: Optional[str] = typer.Argument(None, help="Ladder name (pythia, gpt2, qwen2.5, smollm2, pocket) or a ladder YAML. Omit it to list all."),
    corpus: Optional[str] = typer.Option(None, "--corpus", help="Trained ladders: the --corpus it was trained with."),
    sizes: Optional[str] = typer.Option(None, "--sizes", help="Trained ladders: the --sizes it was trained with."),
    tokens: Optional[int] = typer.Option(None, "--tokens", help="Trained ladders: the --tokens it was trained with."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Trained ladders: the --steps it was trained with."),
    vocab_size: Optional[int] = typer.Option(None, "--vocab-size", help="Trained ladders: the --vocab-size it was trained with."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Trained ladders: the --seed it was trained with."),
    json_output: bool = typer.Option(False, "--json", help="Print the ladder (or the list of ladders) as one JSON object."),
) -> None:
    """List a ladder's members; never downloads or trains.

    A trained ladder is found in the cache by the same options `ladder train` took; exit 2 when
    it is not built yet.
    """
    from compress.scaling.ladder import available_ladders, load_ladder, read_spec

    if ladder is None:
        entries = []
        for name in available_ladders():
            spec = read_spec(name)
            count = len(getattr(spec, "members", None) or getattr(spec, "sizes", []))
            entries.append({"name": name, "kind": spec.kind, "members": count, "description": spec.description})
        if json_output:
            sys.stdout.write(json.dumps({"ladders": entries}, indent=2) + "\n")
        else:
            print_table([[e["name"], e["kind"], e["members"], e["description"]] for e in entries], ["ladder", "kind", "members", "description"])
        return
    options = {"corpus": corpus, "sizes": sizes, "tokens": tokens, "steps": steps, "vocab_size": vocab_size, "seed": seed}
    overrides = {k: v for k, v in options.items() if v is not None}
    _emit(load_ladder(ladder, progress=False, cached_only=True, **overrides), json_output)
