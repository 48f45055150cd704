"""Run `scalecompress` many times from one warm process: import once, fork once per run.

Used by the kill test: each case runs the command with SCALECOMPRESS_FAULT set (the child dies
by SIGKILL at that point), snapshots the output folder as the kill left it, then reruns the
command without a fault. Cases run side by side, one per CPU. A fork costs milliseconds where a fresh interpreter costs seconds of
imports. Only this process forks (never pytest's), and it runs single-threaded before forking.

    python zygote.py spec.json result.json
"""

from __future__ import annotations

import json
import os
import shutil
import sys


def _child(case: dict, fault: str | None, log: str) -> None:
    handle = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(handle, 1)
    os.dup2(handle, 2)
    os.chdir(case["cwd"])
    os.environ.pop("SCALECOMPRESS_FAULT", None)
    if fault:
        os.environ["SCALECOMPRESS_FAULT"] = fault
    code = 99
    try:
        from compress.cli import main

        code = main(case["args"])
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _run(case: dict, fault: str | None, log: str) -> dict:
    pid = os.fork()
    if pid == 0:
        _child(case, fault, log)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return {"signal": os.WTERMSIG(status), "code": None}
    return {"signal": None, "code": os.WEXITSTATUS(status)}


def main() -> None:
    spec = json.loads(open(sys.argv[1]).read())
    import torch

    torch.set_num_threads(1)
    # Warm every module the runs need, so that children do not import them again.
    import compress.bench.runner  # noqa: F401
    import compress.passes  # noqa: F401
    import compress.scaling.report  # noqa: F401
    import compress.sweep  # noqa: F401
    from compress.cli import _register_commands
    from compress.scaling.ladder import load_ladder

    _register_commands()
    load_ladder(spec["ladder"], progress=False)  # trained once, here; children read the cache
    # Cases are independent (own output folders; the ladder is only read): run one per CPU at a
    # time, each in a forked case runner that forks its killed run and its rerun in turn.
    cases, parallel = spec["cases"], max(1, min(len(os.sched_getaffinity(0)), 4))
    pending, running = list(range(len(cases))), set()
    while pending or running:
        while pending and len(running) < parallel:
            number = pending.pop(0)
            pid = os.fork()
            if pid == 0:
                _case(cases[number], f"{sys.argv[2]}.{number}")
            running.add(pid)
        pid, _ = os.wait()
        running.discard(pid)
    results = []
    for number in range(len(cases)):
        with open(f"{sys.argv[2]}.{number}") as handle:
            results.append(json.load(handle))
    with open(sys.argv[2], "w") as handle:
        json.dump(results, handle)


def _case(case: dict, result: str) -> None:
    """In a forked case runner: the killed run, the snapshot of what it left, the rerun."""
    try:
        log = case["log"]
        entry = {"fault": case["fault"], "killed": _run(case, case["fault"], log)}
        if os.path.exists(case["out"]):
            shutil.copytree(case["out"], case["snapshot"], symlinks=True)
        entry["rerun"] = _run(case, None, log)
        with open(result, "w") as handle:
            json.dump(entry, handle)
    finally:
        os._exit(0)


if __name__ == "__main__":
    main()
