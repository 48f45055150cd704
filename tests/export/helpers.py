"""Round trips for the export tests: reference logits from our model dequantized in fp32, and
the consumer's reader run in a fresh process that never imports `compress`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

READER = Path(__file__).with_name("reader.py")


def reference(model, path: Path, seed: int = 0) -> Path:
    """Save ids and our fp32 dequantized logits for them; returns the file."""
    from compress.export.common import dense_copy

    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, model.config.vocab_size, (2, 24), generator=generator)
    with torch.no_grad():
        logits = dense_copy(model)(ids).logits.float()
    torch.save({"ids": ids, "logits": logits}, path)
    return path


def read_back(pairs: list[tuple[Path, Path]], cwd: Path) -> list[dict]:
    """Run the reader on (artifact, reference) pairs in one fresh process; one dict per pair."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    arguments = [str(p) for pair in pairs for p in pair]
    done = subprocess.run([sys.executable, str(READER), *arguments], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == len(pairs), f"reader failed (rc {done.returncode}): {done.stderr[-3000:]}"
    for line in lines:
        assert line["compress_imported"] is False
    return lines
