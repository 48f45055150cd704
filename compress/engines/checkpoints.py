"""Training checkpoints: model, optimizer, data order, RNG and loop state, without pickles.

A checkpoint is a folder `step-<N>` inside the run's checkpoint folder:

    model.safetensors        the trained module (tied tensors stored once)
    optimizer.safetensors    every tensor of optimizer.state_dict()["state"]
    sampler.safetensors      the data order (generator state, rest of the epoch)
    rng-<rank>.safetensors   each process's torch (and CUDA) RNG state
    state.json               step, loss history, param groups, anything else JSON-ready

It is written to a hidden staging folder (one fixed name, since every process writes into it),
fsynced, and renamed into place, so a kill or a power cut at any moment leaves either the
previous checkpoint or the new one, never half of one (`compress.atomic`'s fsyncs). Only the newest is
kept. Every process calls `save` and `load`; the main process writes the shared files.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, load_model, save_file, save_model

from compress.atomic import fsync_dir, fsync_file

PREFIX = "step-"


def latest(folder: Path | None) -> Path | None:
    """The newest complete checkpoint in `folder`, or None."""
    if folder is None or not folder.is_dir():
        return None
    done = [p for p in folder.iterdir() if p.name.startswith(PREFIX) and (p / "state.json").is_file()]
    return max(done, key=lambda p: int(p.name[len(PREFIX):]), default=None)


def _optimizer_tensors(optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _optimizer_state(tensors: dict[str, torch.Tensor], saved: dict) -> dict:
    state: dict[int, dict] = {}
    for name, value in [*tensors.items(), *saved["scalars"].items()]:
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    groups = [{k: tuple(v) if k == "betas" else v for k, v in group.items()} for group in saved["param_groups"]]
    return {"state": state, "param_groups": groups}


def _rng_tensors() -> dict[str, torch.Tensor]:
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors["cuda"] = torch.cuda.get_rng_state()
    return tensors


def save(folder: Path, step: int, *, accelerator, model, optimizer, sampler_state: dict[str, torch.Tensor], state: dict) -> Path:
    """Write checkpoint `step` atomically; remove older ones. Call from every process."""
    final = folder / f"{PREFIX}{step}"
    staging = folder / f".{PREFIX}{step}.partial"
    if accelerator.is_main_process:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        save_model(accelerator.unwrap_model(model), str(staging / "model.safetensors"))
        tensors, groups = _optimizer_tensors(optimizer)
        save_file(tensors, str(staging / "optimizer.safetensors"))
        save_file({k: v.contiguous() for k, v in sampler_state.items()}, str(staging / "sampler.safetensors"))
    accelerator.wait_for_everyone()
    save_file(_rng_tensors(), str(staging / f"rng-{accelerator.process_index}.safetensors"))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        document = {"step": step, "processes": accelerator.num_processes, "optimizer": groups, **state}
        (staging / "state.json").write_text(json.dumps(document) + "\n")  # written last: marks it complete
        for written in staging.iterdir():  # every process's files on disk before the name is
            fsync_file(written)
        fsync_dir(staging)
        os.replace(staging, final)
        fsync_dir(folder)
        for old in folder.glob(f"{PREFIX}*"):
            if old != final:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load(path: Path, *, accelerator, model, optimizer) -> tuple[dict, dict[str, torch.Tensor]]:
    """Restore model, optimizer and this process's RNG from `path`; returns (state.json, sampler state)."""
    state = json.loads((path / "state.json").read_text())
    if state["processes"] != accelerator.num_processes:
        from compress.errors import UserError

        raise UserError(f"checkpoint {path} was written by {state['processes']} process(es), this run has {accelerator.num_processes}; resume with the same number of processes or delete {path.parent}")
    load_model(accelerator.unwrap_model(model), str(path / "model.safetensors"))
    optimizer.load_state_dict(_optimizer_state(load_file(str(path / "optimizer.safetensors")), state.pop("optimizer")))
    rng = load_file(str(path / f"rng-{accelerator.process_index}.safetensors"))
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state(rng["cuda"])
    return state, load_file(str(path / "sampler.safetensors"))
