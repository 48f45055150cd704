import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from compress.data.windows import WindowSampler
from compress.engines.train import TrainSettings, lr_at, make_accelerator, param_groups, train
from compress.scaling.pocket import PocketRecipe, plan_member
from compress.scaling.train import build_model, next_token_loss, train_member

SPECIAL = {"bos": 0, "eos": 1, "pad": 2}
RECIPE = PocketRecipe(seq_len=32, batch_size=4, vocab_size=300, steps=7, min_warmup_steps=3)


def stream(n=6000, seed=0):
    return torch.randint(3, 300, (n,), generator=torch.Generator().manual_seed(seed))


def reference_member(plan, recipe, train_ids, seed):
    """The ladder's own loop before it moved onto the engine (commit 2777222), the reference."""
    model = build_model(plan, recipe, SPECIAL, seed)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=plan.lr, betas=(recipe.beta1, recipe.beta2))
    warmup = min(plan.steps, max(recipe.min_warmup_steps, round(recipe.warmup_fraction * plan.steps)))
    generator = torch.Generator().manual_seed(seed)
    order = torch.empty(0, dtype=torch.long)
    seq = recipe.seq_len
    for step in range(plan.steps):
        while len(order) < recipe.batch_size:
            offset = int(torch.randint(0, seq, (1,), generator=generator))
            order = torch.cat([order, offset + seq * torch.randperm((len(train_ids) - offset) // seq, generator=generator)])
        starts, order = order[: recipe.batch_size], order[recipe.batch_size :]
        targets = train_ids[starts[:, None] + torch.arange(seq)]
        inputs = torch.cat([torch.full((len(starts), 1), SPECIAL["bos"]), targets[:, :-1]], dim=1)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, plan.steps, plan.lr, warmup, recipe.min_lr_ratio)
        loss = F.cross_entropy(model(input_ids=inputs).logits.float().flatten(0, 1), targets.flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return model


@pytest.mark.parametrize("architecture", ["llama", "gpt2"])
def test_ladder_member_on_the_engine_is_bit_identical_to_the_old_loop(architecture):
    recipe = RECIPE.model_copy(update={"architecture": architecture})
    plan = plan_member("d32-l2", recipe)
    ids = stream()
    new, metrics = train_member(plan, recipe, ids, ids[:500], 2000, special_ids=SPECIAL, seed=0, device=torch.device("cpu"), progress=False)
    old = reference_member(plan, recipe, ids, seed=0)
    new_state, old_state = new.state_dict(), old.state_dict()
    assert new_state.keys() == old_state.keys()
    assert all(torch.equal(new_state[k], old_state[k]) for k in new_state)
    assert math.isfinite(metrics["train_loss"]) and metrics["tokens_per_s"] > 0


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    values = [lr_at(s, 50, 1.0, 5, 0.1) for s in range(50)]
    assert values[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert values[5:] == sorted(values[5:], reverse=True) and values[-1] == pytest.approx(0.1)


def test_weight_decay_only_on_matrices():
    model = build_model(plan_member("d32-l1", RECIPE), RECIPE, SPECIAL, 0)
    decay, no_decay = param_groups(list(model.parameters()), 0.1)
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() == 1 for p in no_decay["params"])
    assert no_decay["weight_decay"] == 0.0 and len(no_decay["params"]) == 2 * 1 + 1  # two norms per layer + final


def tiny_run(checkpoint_dir=None, on_step=None, steps=6, accumulation=1, batch_size=4):
    plan = plan_member("d32-l1", RECIPE)
    model = build_model(plan, RECIPE, SPECIAL, seed=0)
    sampler = WindowSampler(stream(), batch_size=batch_size, seq_len=32, seed=0, bos_id=0)
    settings = TrainSettings(steps=steps, lr=3e-3, warmup_steps=2, accumulation=accumulation, checkpoint_every=2)
    result = train(model, next_token_loss, sampler, settings, accelerator=make_accelerator("cpu"), checkpoint_dir=checkpoint_dir, on_step=on_step, progress=False)
    return model, result


class Killed(Exception):
    pass


def test_killed_run_resumes_from_its_checkpoint_and_ends_bit_identical(tmp_path, capsys):
    uninterrupted, full = tiny_run()

    def kill_at_5(step):
        if step == 5:
            raise Killed

    folder = tmp_path / "ckpt"
    with pytest.raises(Killed):
        tiny_run(folder, kill_at_5)
    assert sorted(p.name for p in folder.iterdir()) == ["step-4"]  # only the newest, no staging debris
    resumed, result = tiny_run(folder)
    assert result.resumed_from == 4 and "resuming from step 4" in capsys.readouterr().err
    assert result.losses == full.losses
    assert all(torch.equal(a, b) for a, b in zip(resumed.state_dict().values(), uninterrupted.state_dict().values()))
    assert not folder.exists()  # a completed run leaves no checkpoint behind


def test_accumulation_keeps_the_global_batch():
    _, whole = tiny_run(steps=3)
    _, split = tiny_run(steps=3, accumulation=2)
    assert split.losses == pytest.approx(whole.losses, rel=1e-4)
    assert split.tokens == whole.tokens == 3 * 4 * 32


def test_batch_that_does_not_split_is_a_clear_error():
    from compress.errors import UserError

    with pytest.raises(UserError, match="multiple of 4"):
        tiny_run(steps=1, accumulation=4, batch_size=6)


TWO_PROCESS = """
import json, sys
sys.path.insert(0, {root!r})
import torch
from transformers import AutoTokenizer
from tests.engines.test_train import distill_once
tokenizer = AutoTokenizer.from_pretrained({tokenizer!r})
details = distill_once(tokenizer, {text!r})
if not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0:
    print("RESULT " + json.dumps(details))
"""


def distill_once(tokenizer, text_source):
    """The distill pass on a tiny LLaMA pair; its report's details."""
    import compress
    from compress.algorithms.distillation.kd import DistillConfig
    from compress.core.context import DataConfig
    from tests.bench.conftest import make_llama

    teacher, student = make_llama(hidden=32), make_llama(hidden=32, seed=1)
    config = DistillConfig(steps=4, batch_size=4, seq_len=32, lr=3e-3, beta=0.5)
    _, (report,) = compress.apply(student, [config], tokenizer=tokenizer, teacher=teacher, data_config=DataConfig(source=text_source), progress=False)
    return report.details


@pytest.mark.slow
def test_distill_pass_in_two_cpu_processes_with_gloo_matches_one_process(tmp_path):
    from compress.data.plays import split_text
    from tests.bench.conftest import train_tokenizer

    root = str(Path(__file__).resolve().parents[2])
    tokenizer = train_tokenizer()
    tokenizer.save_pretrained(str(tmp_path / "tokenizer"))
    text = tmp_path / "train.txt"
    text.write_text(split_text("validation")[:20_000])
    script = tmp_path / "two.py"
    script.write_text(TWO_PROCESS.format(root=root, tokenizer=str(tmp_path / "tokenizer"), text=str(text)))
    env = {**os.environ, "PYTHONPATH": root, "OMP_NUM_THREADS": "1"}
    with socket.socket() as probe:  # a free port: a fixed one collides with any other run on the machine
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port", str(port)]
    out = subprocess.run([*launcher, str(script)], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    two = json.loads(next(line for line in out.stdout.splitlines() if line.startswith("RESULT "))[7:])
    one = distill_once(tokenizer, str(text))
    assert (two["processes"], two["backend"]) == (2, "gloo") and (one["processes"], one["backend"]) == (1, None)
    assert two["train_tokens"] == one["train_tokens"] == 4 * 4 * 32  # same global batch
    assert two["final_loss"] == pytest.approx(one["final_loss"], rel=0.01)
