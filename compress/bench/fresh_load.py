"""Load peak memory of a checkpoint as a user sees it: in a fresh Python process.

The child imports torch, transformers, this package and transformers' modeling code for the
folder's architecture (the runtime, whatever the weights: `import_rss_bytes` is the RSS before
that last import), reads its RSS (the baseline), resets
Linux's high-water mark, loads the folder with `compress.load` and reports the peak RSS of the
load above the baseline, with the weights file's size for the ratio. Nothing the calling process
holds (a dense model, earlier jobs) can leak into the figure.

    >>> # load_rss("out/model")["load_peak_above_baseline_bytes"] / load_rss("out/model")["stored_bytes"]
    >>> # python -m compress.bench.fresh_load out/model --dtype bfloat16   (prints one JSON line)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def load_rss(folder: str | os.PathLike, *, dtype: str | None = None, timeout_s: float = 900) -> dict:
    """{import_rss_bytes, baseline_rss_bytes, load_peak_rss_bytes, load_peak_above_baseline_bytes,
    load_seconds, stored_bytes} of `compress.load(folder)` in a fresh interpreter."""
    command = [sys.executable, "-m", "compress.bench.fresh_load", str(folder)] + (["--dtype", dtype] if dtype else [])
    package_root = str(Path(__file__).resolve().parents[2])  # the same `compress` as this process
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"loading {folder} in a fresh process failed: {done.stderr.strip().splitlines()[-1:] or done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def _import_model_code(folder: str) -> None:
    import transformers

    from compress.checkpoint import _model_class

    config = transformers.AutoConfig.from_pretrained(folder)
    auto_class = _model_class(config, "auto")
    auto_class._model_mapping[type(config)]  # imports the architecture's module


def _main(argv: list[str]) -> None:
    import argparse
    import gc
    import time

    import torch  # noqa: F401 - the baseline includes the runtime
    import transformers  # noqa: F401

    import compress
    from compress.bench.trackers.memory import _reset_high_water_mark
    from compress.saving import WEIGHTS_NAME

    parser = argparse.ArgumentParser(prog="python -m compress.bench.fresh_load")
    parser.add_argument("folder")
    parser.add_argument("--dtype", default=None)
    args = parser.parse_args(argv)
    gc.collect()
    imported = _status_bytes("VmRSS")
    _import_model_code(args.folder)  # transformers' modeling code for this architecture: runtime, not weights
    gc.collect()
    baseline = _status_bytes("VmRSS")
    if not _reset_high_water_mark():
        raise SystemExit("this kernel cannot reset the RSS high-water mark (/proc/self/clear_refs); no exact peak")
    started = time.perf_counter()
    compress.load(args.folder, dtype=args.dtype)
    seconds = time.perf_counter() - started
    peak = _status_bytes("VmHWM")
    print(json.dumps({
        "import_rss_bytes": imported,
        "baseline_rss_bytes": baseline,
        "load_peak_rss_bytes": peak,
        "load_peak_above_baseline_bytes": peak - baseline,
        "load_seconds": seconds,
        "stored_bytes": (Path(args.folder) / WEIGHTS_NAME).stat().st_size,
    }))


if __name__ == "__main__":
    _main(sys.argv[1:])
