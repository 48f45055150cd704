"""Load an exported artifact with the consumer's own reader and print its logits' distance from
a reference — run as a fresh process that never imports `compress` (the tests check that).

    python tests/export/reader.py ARTIFACT REFERENCE.pt

ARTIFACT is a folder (transformers from_pretrained; compressed-tensors folders go through the
compressed-tensors package) or a .gguf file (transformers' GGUF loader). REFERENCE.pt holds
`ids` and `logits` (our model, dequantized, fp32). Prints one JSON line.
"""

import json
import sys
from pathlib import Path

import torch
import transformers


def main() -> None:
    artifact, reference = Path(sys.argv[1]), torch.load(sys.argv[2], weights_only=True)
    if artifact.suffix == ".gguf":
        model = transformers.AutoModelForCausalLM.from_pretrained(str(artifact.parent), gguf_file=artifact.name, dtype=torch.float32)
    else:
        model = transformers.AutoModelForCausalLM.from_pretrained(str(artifact), dtype=torch.float32)
    with torch.no_grad():
        logits = model(reference["ids"]).logits.float()
    difference = float((logits - reference["logits"]).abs().max())
    scale = float(reference["logits"].abs().max())
    print(json.dumps({"max_abs_difference": difference, "logit_scale": scale, "relative": difference / scale, "compress_imported": "compress" in sys.modules}))


if __name__ == "__main__":
    main()
