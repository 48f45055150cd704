"""Time a cold and a warm `scalecompress ladder train`, and check the ladder's acceptance criteria.

Cold: a fresh, empty cache folder (tokenizer training, tokenization, every member trained).
Warm: the same command again, answered from the cache. Both run as separate processes, as a
user would run them, so import time counts. The acceptance limits of the pocket ladder are
cold <= 12 minutes and warm <= 5 seconds on a 2-core CPU, with validation loss and bits per
byte strictly decreasing with size.

    python benchmarks/ladder_timing.py                 # the real thing (~8-10 min; run on a quiet machine)
    python benchmarks/ladder_timing.py --micro         # a seconds-long check that the script works
    python benchmarks/ladder_timing.py -- --sizes d32-l2,d64-l3   # extra `ladder train` flags after --

Prints one JSON object (stdout) and a Markdown table row for benchmarks/RESULTS.md (stderr).
Exit code 1 when a limit or the ordering check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COLD_LIMIT_S = 12 * 60
WARM_LIMIT_S = 5.0
REPO = Path(__file__).resolve().parents[1]


def run_train(args: list[str], cache: Path) -> tuple[float, dict]:
    env = {**os.environ, "SCALECOMPRESS_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [sys.executable, "-m", "compress", "ladder", "train", "--json", "--no-progress", *args]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"ladder train failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    return seconds, json.loads(done.stdout)


def strictly_decreasing(values: list[float]) -> bool:
    return all(later < earlier for earlier, later in zip(values, values[1:]))


def micro_args(folder: Path) -> list[str]:
    sys.path.insert(0, str(REPO))
    from compress.data.plays import split_text

    corpus = folder / "micro-corpus.txt"
    corpus.write_text(split_text("validation")[:30_000], encoding="utf-8")
    return ["--corpus", str(corpus), "--sizes", "d8-l1,d16-l1,d16-l2", "--steps", "2", "--vocab-size", "300"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--micro", action="store_true", help="tiny corpus, 3 tiny members, 2 steps: checks the script, not the limits")
    parser.add_argument("--cache", type=Path, default=None, help="cache folder to use (must be empty for a cold run; default: a new temp folder)")
    parser.add_argument("train_args", nargs="*", help="extra flags for `scalecompress ladder train` (after --)")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ladder-timing-") as scratch:
        cache = options.cache or Path(scratch) / "cache"
        if cache.exists() and any(cache.iterdir()):
            sys.exit(f"cache folder {cache} is not empty; a cold run needs an empty one")
        args = (micro_args(Path(scratch)) if options.micro else []) + options.train_args
        load_before = os.getloadavg()[0]
        cold_s, manifest = run_train(args, cache)
        warm_s, warm_manifest = run_train(args, cache)

    members = manifest["members"]
    losses = [m["val_loss"] for m in members]
    bits = [m["val_bits_per_byte"] for m in members]
    checks = {
        "cold_within_limit": cold_s <= COLD_LIMIT_S,
        "warm_within_limit": warm_s <= WARM_LIMIT_S,
        "warm_is_same_ladder": warm_manifest["members"] == members,
        "val_loss_strictly_decreasing": strictly_decreasing(losses),
        "val_bits_per_byte_strictly_decreasing": strictly_decreasing(bits),
        "non_embedding_span_at_least_30x": members[-1]["non_embedding_params"] / members[0]["non_embedding_params"] >= 30,
    }
    if options.micro:  # micro members are untrained: only the mechanics are checked
        checks = {k: v for k, v in checks.items() if k in ("warm_within_limit", "warm_is_same_ladder")}
    report = {
        "benchmark": "ladder_timing",
        "micro": options.micro,
        "args": args,
        "cold_s": round(cold_s, 1),
        "warm_s": round(warm_s, 2),
        "limits": {"cold_s": COLD_LIMIT_S, "warm_s": WARM_LIMIT_S},
        "checks": checks,
        "passed": all(checks.values()),
        "members": [
            {k: m.get(k) for k in ("name", "params", "non_embedding_params", "embedding_share", "tokens", "train_loss", "val_loss",
                                   "val_bits_per_byte", "train_seconds", "tokens_per_s")}
            for m in members
        ],
        "env": {"cpus": os.cpu_count(), "load_average_before": round(load_before, 2), "python": platform.python_version(),
                "machine": platform.machine(), "token_budget_rule": manifest.get("token_budget_rule")},
    }
    print(json.dumps(report, indent=2))
    spans = f"{members[0]['non_embedding_params']:,}-{members[-1]['non_embedding_params']:,}"
    print(f"| ladder train ({len(members)} members, {spans} non-emb params) | cold {cold_s / 60:.1f} min | warm {warm_s:.1f} s | "
          f"val bits/byte {bits[0]:.3f} -> {bits[-1]:.3f} | {'pass' if report['passed'] else 'FAIL'} |", file=sys.stderr)
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
