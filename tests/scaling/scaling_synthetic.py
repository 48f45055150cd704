"""Synthetic results records whose answers are known, shared by the tests of compress/scaling.

Dense ladder "toy" on cpu: bits_per_byte = E + A·N^-α over non-embedding N (E 2.0, A 40, α 0.45).
Each compressed variant of the two largest members gets the bits per byte of a dense model of
`ratio`·N non-embedding params, so its effective parameter count is known exactly.
"""

E, A, ALPHA = 2.0, 40.0, 0.45
SIZES = [2e4, 5e4, 1.5e5, 4e5, 1e6, 2.5e6]
# variant -> (method, bits, group_size, sparsity, effective ratio, bytes per parameter)
VARIANTS = {
    "rtn-w8": ("rtn", 8, None, None, 0.98, 1.0),
    "rtn-w4-g64": ("rtn", 4, 64, None, 0.70, 0.53),
    "rtn-w3-g64": ("rtn", 3, 64, None, 0.30, 0.41),
    "magnitude-50%": ("magnitude", None, None, 0.5, 0.10, 2.6),
    "magnitude-2:4": ("magnitude", None, None, 0.5, 0.05, 2.6),
}


def bpb(n: float) -> float:
    return E + A * n ** -ALPHA


def total_params(n: float) -> int:
    return int(1.2 * n + 5e4)


def record(model, variant, n, bpb_value, weight_bytes, *, source=None, method="dense", bits=None,
           group_size=None, sparsity=None, device="cpu", scenario="s1", family="toy"):
    decode_ms = 0.3 + weight_bytes / 4e6
    return {
        "model": model, "variant": variant, "device": device, "scenario": scenario, "family": family,
        "source_model": source or model, "method": method, "bits": bits, "group_size": group_size,
        "sparsity": sparsity, "params": total_params(n), "non_embedding_params": int(n), "path": None,
        "passes": [], "loss": bpb_value * 0.9, "perplexity": 2.718 ** (bpb_value * 0.9),
        "bits_per_byte": bpb_value, "acc": 1.0 - 0.2 * bpb_value, "acc_norm": None, "eval_tokens": 1000,
        "decode_ms_per_token": decode_ms, "weight_bytes": int(weight_bytes),
        "energy_j_per_token": decode_ms * 0.012, "energy_source": "estimate", "energy_method": "tdp x time",
        "schema": 1,
    }


def dense_name(n: float) -> str:
    return f"toy-{int(n / 1000)}k"


def synthetic_records(*, family="toy", device="cpu", scenario="s1") -> list[dict]:
    out = []
    for n in SIZES:
        out.append(record(dense_name(n), "dense", n, bpb(n), 4 * total_params(n), family=family,
                          device=device, scenario=scenario))
    for n in SIZES[-2:]:
        for variant, (method, bits, group, sparsity, ratio, bytes_per_param) in VARIANTS.items():
            out.append(record(dense_name(n), variant, n, bpb(ratio * n), bytes_per_param * total_params(n),
                              source=dense_name(n), method=method, bits=bits, group_size=group,
                              sparsity=sparsity, family=family, device=device, scenario=scenario))
    return out
