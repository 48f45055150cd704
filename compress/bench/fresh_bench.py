"""Benchmark a saved checkpoint in a fresh Python process, as `scalecompress bench FOLDER` would.

The sweep compresses a variant in the process that loaded its dense source; benchmarking it
there would report the dense model's pages in every memory figure. Instead it saves the variant
and runs `bench_checkpoint` on the folder in a new interpreter: load peak RSS, inference peak
RSS and load time are those a user loading the saved checkpoint sees.

    >>> # record = bench_in_fresh_process("out/model", bench_config, model_name="m", variant="rtn-w4")
    >>> # python -m compress.bench.fresh_bench spec.json record.json
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from compress.errors import UserError

_USER_ERROR_EXIT = 3


def bench_in_fresh_process(folder: str | os.PathLike, config, *, model_name: str, variant: str,
                           trust_remote_code: bool = False, **record_fields: Any) -> dict:
    """The bench record of the checkpoint `folder`, measured in a new interpreter."""
    spec = {"folder": str(folder), "config": config.model_dump(mode="json"), "model_name": model_name, "variant": variant,
            "trust_remote_code": trust_remote_code,
            "fields": {k: (str(v) if isinstance(v, Path) else v) for k, v in record_fields.items()}}
    package_root = str(Path(__file__).resolve().parents[2])  # the same `compress` as this process
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryDirectory(prefix="scalecompress-bench-") as scratch:
        spec_file, out_file = Path(scratch) / "spec.json", Path(scratch) / "record.json"
        spec_file.write_text(json.dumps(spec), encoding="utf-8")
        done = subprocess.run([sys.executable, "-m", "compress.bench.fresh_bench", str(spec_file), str(out_file)],
                              capture_output=True, text=True, env=env, check=False)
        if done.returncode == _USER_ERROR_EXIT:
            raise UserError(done.stderr.strip().splitlines()[-1])
        if done.returncode != 0 or not out_file.is_file():
            tail = "\n".join(done.stderr.strip().splitlines()[-5:])
            raise RuntimeError(f"benchmarking {folder} in a fresh process failed (exit {done.returncode}):\n{tail}")
        return json.loads(out_file.read_text(encoding="utf-8"))


def _main(spec_path: str, out_path: str) -> int:
    from compress.bench.config import as_config
    from compress.bench.runner import bench_checkpoint

    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    fields = spec["fields"]
    for key in ("reference", "reference_out"):
        if fields.get(key):
            fields[key] = Path(fields[key])
    try:
        record = bench_checkpoint(spec["folder"], as_config(spec["config"]), model_name=spec["model_name"], variant=spec["variant"],
                                  trust_remote_code=spec["trust_remote_code"], progress=False, **fields)
    except UserError as error:
        print(str(error), file=sys.stderr)
        return _USER_ERROR_EXIT
    # NaN stays NaN (json writes it): the results store names non-finite figures itself.
    Path(out_path).write_text(json.dumps(record, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1], sys.argv[2]))
