"""Load an exported artifact with the consumer's own reader and print its logits' distance from
a reference — run as a fresh process that never imports `compress` (the tests check that).

    python tests/export/reader.py ARTIFACT REFERENCE.pt [ARTIFACT REFERENCE.pt ...]

ARTIFACT is a folder (transformers from_pretrained; compressed-tensors folders go through the
compressed-tensors package) or a .gguf file (transformers' GGUF loader). REFERENCE.pt holds
`ids` and `logits` (our model, dequantized, fp32). Prints one JSON line per pair; a reader
that refuses prints {"error": ...} instead (the native-save tests expect that for some folders).
"""

import json
import sys
from pathlib import Path

import torch
import transformers


def read(artifact: Path, reference: dict) -> dict:
    try:
        if artifact.suffix == ".gguf":
            model = transformers.AutoModelForCausalLM.from_pretrained(str(artifact.parent), gguf_file=artifact.name, dtype=torch.float32)
        else:
            model = transformers.AutoModelForCausalLM.from_pretrained(str(artifact), dtype=torch.float32)
    except Exception as error:  # noqa: BLE001 - a refusal is a result here
        return {"artifact": str(artifact), "error": f"{type(error).__name__}: {error}"[:2000]}
    with torch.no_grad():
        logits = model(reference["ids"]).logits.float()
    difference = float((logits - reference["logits"]).abs().max())
    scale = float(reference["logits"].abs().max())
    return {"artifact": str(artifact), "max_abs_difference": difference, "logit_scale": scale, "relative": difference / scale}


def main() -> None:
    arguments = sys.argv[1:]
    for artifact, reference in zip(arguments[::2], arguments[1::2]):
        result = read(Path(artifact), torch.load(reference, weights_only=True))
        result["compress_imported"] = "compress" in sys.modules
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
