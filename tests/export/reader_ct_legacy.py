"""Read a compressed-tensors *sparse* export with the compressed-tensors package itself — release
0.14.0.1, the last with the sparse compressors — in a fresh process that never imports `compress`.

    PYTHONPATH=<folder holding compressed_tensors 0.14.0.1> python tests/export/reader_ct_legacy.py FOLDER REFERENCE.pt [...]

The model is built from config.json with every parameter set to NaN, then the package's
`ModelCompressor.from_pretrained(FOLDER).decompress(FOLDER, model)` fills it: whatever the
package did not read stays NaN (tied
embeddings are re-tied afterwards, as `from_pretrained` does after loading). REFERENCE.pt holds `ids`, `logits` (ours, fp32) and `weights`
(our dense weights of the pruned layers). Prints one JSON line per pair.
"""

import json
import sys

import compressed_tensors
import torch
import transformers
from compressed_tensors.compressors import ModelCompressor


def read(folder: str, reference: dict) -> dict:
    compressor = ModelCompressor.from_pretrained(folder)
    config = transformers.AutoConfig.from_pretrained(folder)
    del config.quantization_config  # the package decompresses; transformers only builds the skeleton
    model = transformers.AutoModelForCausalLM.from_config(config).float().eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.fill_(float("nan"))
    compressor.decompress(model_path=folder, model=model)
    model.tie_weights()  # decompress swaps the embedding Parameter; from_pretrained re-ties after loading too
    state = model.state_dict()
    weights_equal = all(torch.equal(state[f"{name}.weight"].float(), weight) for name, weight in reference["weights"].items())
    with torch.no_grad():
        logits = model(reference["ids"]).logits.float()
    difference = float((logits - reference["logits"]).abs().max())
    scale = float(reference["logits"].abs().max())
    return {
        "artifact": folder,
        "package": compressed_tensors.__version__,
        "sparsity_format": compressor.sparsity_config.format if compressor.sparsity_config is not None else None,
        "weights_equal": weights_equal,
        "max_abs_difference": difference,
        "relative": difference / scale,
    }


def main() -> None:
    arguments = sys.argv[1:]
    for folder, reference in zip(arguments[::2], arguments[1::2]):
        result = read(folder, torch.load(reference, weights_only=True))
        result["compress_imported"] = "compress" in sys.modules
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
