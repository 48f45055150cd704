"""Sparse layouts in the compressed-tensors export, on the pocket ladder's largest LLaMA member:
magnitude 50% (sparse-bitmask) and 2:4 (sparse-24-bitmask), saved, exported, with the references
the readers compare against. Prints one JSON line per variant (export bytes vs our checkpoint).

    SCALECOMPRESS_CACHE=/work/cache python benchmarks/export_sparse.py OUT
    cd OUT && PYTHONPATH=benchmarks/.peers/compressed-tensors-0.14 python tests/export/reader_ct_legacy.py \
        magnitude-50-ct magnitude-50.pt magnitude-2of4-ct magnitude-2of4.pt      # the package decompresses them
    python tests/export/reader.py magnitude-50-ct magnitude-50.pt                  # transformers 5.x refuses
"""

import json
import sys
from pathlib import Path

import torch

import compress
from compress.export import export
from compress.export.common import dense_copy, folder_bytes
from compress.formats.sparse_linear import SparseLinear
from compress.passes import MagnitudeConfig
from compress.scaling.ladder import load_ladder


def main(out: Path) -> None:
    member = {m.name: m for m in load_ladder("pocket", cached_only=True, progress=False).members}["pocket-d128-l4"]
    for tag, config in [("magnitude-50", MagnitudeConfig(sparsity=0.5)), ("magnitude-2of4", MagnitudeConfig(pattern="2:4"))]:
        model, _ = compress.apply(compress.load(member.path).model, [config], progress=False)
        saved = compress.save(model, out / f"{tag}-native")
        summary = export(saved, "compressed-tensors", out / f"{tag}-ct")
        ids = torch.randint(0, model.config.vocab_size, (2, 64), generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            logits = dense_copy(model)(ids).logits.float()
        weights = {name: m.dequantize().float() for name, m in model.named_modules() if isinstance(m, SparseLinear)}
        torch.save({"ids": ids, "logits": logits, "weights": weights}, out / f"{tag}.pt")
        print(json.dumps({"variant": tag, "format": summary["details"]["sparse_format"], "export_bytes": summary["bytes"],
                          "checkpoint_bytes": folder_bytes(saved), "ratio": summary["bytes"] / folder_bytes(saved)}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
