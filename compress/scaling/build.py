"""Build (or read back) a trained ladder: cache key, resume by member, manifest.

The ladder's cache folder is `<cache>/ladders/<family>-<corpus>-<key>`, the key a hash of the
corpus texts, the tokenizer, the recipe, the seed and the family; members sit inside it as
plain Hugging Face checkpoint folders named after their size. Each member is written to a
hidden folder and renamed into place when complete, so an interrupted run resumes at the
member it stopped in. `ladder.json` is written last; when it lists the requested members the
call returns at once, without importing torch.

The key leaves the device out on purpose: a ladder trained on CPU is reused on a GPU machine.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sys
from pathlib import Path

from compress.cache import cache_dir
from compress.data.corpus import Corpus
from compress.errors import ScaleCompressError, UserError
from compress.scaling.ladder import Ladder, LadderMember
from compress.scaling.pocket import MemberPlan, PocketRecipe

MANIFEST = "ladder.json"
MEMBER_FILE = "ladder_member.json"
FORMAT = "pocket-ladder-v1"  # bump when training code changes results, so old caches are not reused

# Counts members actually trained in this process: tests use it to prove a cache hit.
TRAINED = {"members": 0}


def cache_key(corpus: Corpus, recipe: PocketRecipe, seed: int, family: str) -> str:
    from compress.data.tokenizer import tokenizer_key

    material = {
        "format": FORMAT,
        "family": family,
        "corpus": corpus.fingerprint,
        "tokenizer": tokenizer_key(corpus.fingerprint, recipe.vocab_size),
        # LLaMA ladders trained before `architecture` and `gpt2_ffn_ratio` existed keep their key (and cache).
        "recipe": recipe.model_dump(mode="json", exclude={"architecture", "gpt2_ffn_ratio"} if recipe.architecture == "llama" else None),
        "seed": seed,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def ladder_folder(corpus: Corpus, key: str, family: str) -> Path:
    tag = "plays" if corpus.name == "plays" else "custom"
    return cache_dir("ladders") / f"{family}-{tag}-{key[:12]}"


def _member_record(plan: MemberPlan, path: Path, metrics: dict) -> dict:
    return {
        "name": plan.name,
        "path": str(path),
        "params": plan.params,
        "non_embedding_params": plan.non_embedding_params,
        "embedding_share": plan.embedding_share,
        "tokens": plan.tokens,
        "steps": plan.steps,
        "lr": plan.lr,
        "architecture": plan.architecture(),
        **metrics,
    }


def _read_member(path: Path) -> dict | None:
    try:
        record = json.loads((path / MEMBER_FILE).read_text())
    except (OSError, ValueError):
        return None
    return {**record, "path": str(path)}


def _write_json(path: Path, document: dict) -> None:
    from compress.atomic import write_json

    write_json(path, document)


def _ladder_from(manifest: dict, family: str) -> Ladder:
    members = [LadderMember.from_dict(m) for m in manifest["members"]]
    info = {k: v for k, v in manifest.items() if k not in ("members", "family", "kind")}
    return Ladder(family=family, members=members, kind="trained", info=info)


def cached_ladder(folder: Path, plans: list[MemberPlan], family: str) -> Ladder | None:
    """The ladder from `ladder.json` if it lists exactly these members and all are on disk."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    names = [m.get("name") for m in manifest.get("members", [])]
    if names != [p.name for p in plans] or not all((folder / p.name / MEMBER_FILE).is_file() for p in plans):
        return None
    for member in manifest["members"]:  # the cache folder may have moved with $SCALECOMPRESS_CACHE
        member["path"] = str(folder / member["name"])
    manifest["path"] = str(folder)
    return _ladder_from(manifest, family)


def build_ladder(corpus: Corpus, plans: list[MemberPlan], recipe: PocketRecipe, *, seed: int, family: str, device, progress: bool, cached_only: bool) -> Ladder:
    key = cache_key(corpus, recipe, seed, family)
    folder = ladder_folder(corpus, key, family)
    ladder = cached_ladder(folder, plans, family)
    if ladder is not None:
        return ladder
    if cached_only:
        raise UserError(f"ladder {family!r} is not trained yet for this corpus, recipe and seed; run `scalecompress ladder train` first")
    members = _train_missing(corpus, plans, recipe, folder, seed=seed, device=device, progress=progress)
    manifest = {
        "family": family,
        "kind": "trained",
        "path": str(folder),
        "cache_key": key,
        "seed": seed,
        "corpus": corpus.describe(),
        "token_budget_rule": recipe.token_budget_rule(),
        "lr_rule": recipe.lr_rule(),
        "embedding_share_note": "embedding share = tied token-embedding params / all params (input and output share one matrix)",
        "params_convention": "params: all parameters, tied embedding once; non_embedding_params: without the token embedding (Kaplan)",
        # LLaMA ladders trained before `architecture` and `gpt2_ffn_ratio` existed keep their key (and cache).
        "recipe": recipe.model_dump(mode="json", exclude={"architecture", "gpt2_ffn_ratio"} if recipe.architecture == "llama" else None),
        "tokenizer": {"kind": "byte-level BPE, trained on the train text only", "vocab_size": recipe.vocab_size},
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "members": members,
    }
    _write_json(folder / MANIFEST, manifest)
    return _ladder_from(manifest, family)


def _train_missing(corpus, plans, recipe, folder: Path, *, seed, device, progress) -> list[dict]:
    import torch
    from tqdm.auto import tqdm

    from compress.data.tokenizer import corpus_tokenizer, encode
    from compress.scaling.train import pick_device, train_member

    done = {p.name: _read_member(folder / p.name) for p in plans}
    if all(done.values()):
        return [done[p.name] for p in plans]
    device = pick_device(device)
    tokenizer, _ = corpus_tokenizer(corpus, recipe.vocab_size)
    tokenizer.model_max_length = recipe.seq_len
    special_ids = {"bos": tokenizer.bos_token_id, "eos": tokenizer.eos_token_id, "pad": tokenizer.pad_token_id}
    train_ids = torch.tensor(encode(tokenizer, corpus.train), dtype=torch.long)
    val_ids = torch.tensor(encode(tokenizer, corpus.validation), dtype=torch.long)
    val_bytes = len(corpus.validation.encode("utf-8"))
    if len(val_ids) < 2:
        raise UserError(f"corpus {corpus.name!r} has almost no validation text ({len(val_ids)} tokens); give it more text")
    records = []
    for index, plan in enumerate(plans):
        if done[plan.name]:
            records.append(done[plan.name])
            continue
        label = f"[{index + 1}/{len(plans)}] "
        model, metrics = train_member(plan, recipe, train_ids, val_ids, val_bytes, special_ids=special_ids, seed=seed, device=device, progress=progress, label=label)
        metrics["val_tokens_per_byte"] = round(len(val_ids) / val_bytes, 4)
        record = _member_record(plan, folder / plan.name, metrics)
        _save_member(model, tokenizer, record, folder / plan.name)
        TRAINED["members"] += 1
        records.append(record)
        if progress:
            tqdm.write(f"{plan.name}: val loss {metrics['val_loss']:.4f}, {metrics['val_bits_per_byte']:.4f} bits/byte, {metrics['train_seconds']:.0f}s", file=sys.stderr)
    return records


def _save_member(model, tokenizer, record: dict, path: Path) -> None:
    from compress.atomic import staged_dir
    from compress.quiet import quiet_transformers

    # Only a cache folder without its member file (debris of an old layout) is ever replaced.
    unfinished = lambda folder: not (folder / MEMBER_FILE).is_file()  # noqa: E731
    try:
        with staged_dir(path, replace=unfinished) as staging:
            with quiet_transformers(logs=False):  # save_pretrained draws its own bar; ours shows progress
                model.save_pretrained(str(staging))  # safetensors: transformers v5 writes nothing else
            tokenizer.save_pretrained(str(staging))
            (staging / MEMBER_FILE).write_text(json.dumps(record, indent=2) + "\n")
            if not (staging / "model.safetensors").is_file():
                raise ScaleCompressError(f"{record['name']}: save_pretrained wrote no model.safetensors in {staging}")
    except FileExistsError:
        if not (path / MEMBER_FILE).is_file():  # else another process finished it first
            raise
