"""Width- and depth-pruned checkpoints reload in plain transformers, in a process that never
imports scalecompress, with the same logits."""

from __future__ import annotations

import json
import subprocess
import sys

import torch

import compress
from compress.passes import DepthConfig, StructuredConfig
from tests.algorithms.pruning.test_structured import DATA, llama

RELOAD = """
import json, sys, torch, transformers
assert "compress" not in sys.modules
out = {}
for folder in sys.argv[1:]:
    model = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
    assert not any(name.startswith("compress") for name in sys.modules)
    tokens = torch.tensor(json.loads(open(folder + "/tokens.json").read()))
    out[folder] = [sum(p.numel() for p in model.parameters()), model(tokens).logits.tolist()]
print(json.dumps(out))
"""


def test_pruned_gqa_llama_reloads_in_plain_transformers(tmp_path):
    expected = {}
    for name, configs in {"width": [StructuredConfig(heads=0.5, mlp=0.25)], "depth": [DepthConfig(fraction=0.25)]}.items():
        model = llama(heads=4, kv_heads=2, layers=4)
        compress.apply(model, configs, DATA, progress=False)
        folder = compress.save(model, tmp_path / name)
        (folder / "tokens.json").write_text(json.dumps(DATA[:2].tolist()))
        with torch.no_grad():
            expected[str(folder)] = (sum(p.numel() for p in model.parameters()), model(DATA[:2]).logits)
    result = subprocess.run([sys.executable, "-c", RELOAD, *expected], capture_output=True, text=True, timeout=300, check=True)
    reloaded = json.loads(result.stdout)
    for folder, (params, logits) in expected.items():
        assert reloaded[folder][0] == params
        assert torch.allclose(torch.tensor(reloaded[folder][1]), logits, atol=1e-5)
