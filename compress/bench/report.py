"""A bench record as a readable table (the CLI prints it when not --json).

    >>> print(format_record({"model": "m", "variant": "dense", "device": "cpu", "perplexity": 12.3456,
    ...     "energy_j": 1.5, "energy_source": "estimate", "energy_method": "estimate: x"}).splitlines()[0])
    m / dense on cpu
"""

from __future__ import annotations


def _bytes(value) -> str:
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} GiB"


def _num(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}g}"


def _ms(value) -> str:
    return "-" if value is None else f"{value:.3f} ms"


def _roofline(record: dict) -> str:
    limit, fraction = record.get("bandwidth_limit_ms_per_token"), record.get("bandwidth_fraction")
    if limit is None:
        return "-"
    reached = f", {fraction:.0%} of it reached" if fraction is not None else ""
    return (f"{limit:.3f} ms/token = {_bytes(record.get('bytes_read_per_token'))} read per token ÷ "
            f"{record['read_bandwidth_bytes_per_s'] / 1e9:.1f} GB/s{reached}  (all weights as stored, the head too; "
            "embedding tables one row per token; KV cache not counted)")


def _kernels(kernels) -> str:
    if not kernels:
        return "-"
    return "; ".join(f"{phase}: " + ", ".join(f"{name} {count}" for name, count in counts.items()) for phase, counts in kernels.items())


def _cpu(env: dict) -> str:
    if not env.get("cpu"):
        return "-"
    flags = env.get("cpu_flags")
    return f"{env['cpu']} ({', '.join(flags) if flags else 'no AVX2/AVX-512/AMX flags found'})"


def format_record(record: dict) -> str:
    """Sections accuracy / latency / memory / energy, one metric a line, with the energy method."""
    get = record.get
    rows: list[tuple[str, str]] = []

    def section(name: str, items: list[tuple[str, str]]) -> None:
        rows.append((f"[{name}]", ""))
        rows.extend(items)

    section("accuracy", [
        ("perplexity", f"{_num(get('perplexity'))}  (window {_num(get('eval_window'))}, {_num(get('eval_tokens'))} predicted tokens)"),
        ("bits per byte", _num(get("bits_per_byte"))),
        ("loss (nats/token)", _num(get("loss"))),
        ("choice acc / acc_norm", f"{_num(get('acc'), 3)} / {_num(get('acc_norm'), 3)}  ({_num(get('choice_items'))} next-{get('choice_unit') or 'word'} items, chance 0.25)"),
    ])
    for task, metrics in (get("lm_eval") or {}).items():
        rows.append((f"lm-eval {task}", ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())))
    section("latency", [
        ("prefill (median / p90)", f"{_ms(get('prefill_ms'))} / {_ms(get('prefill_ms_p90'))}  ({_num(get('prompt_tokens'))} tokens × batch {_num(get('batch_size'))})"),
        ("time to first token", _ms(get("ttft_ms"))),
        ("decode per token (median / p90)", f"{_ms(get('decode_ms_per_token'))} / {_ms(get('decode_ms_per_token_p90'))}  ({_num(get('new_tokens'))} new tokens)"),
        ("decode tokens/s", _num(get("tokens_per_s"))),
        ("bandwidth limit (decode)", _roofline(record)),
        ("kernels (layers per kernel)", _kernels(get("kernels"))),
        ("threads", _num(get("threads"))),
        ("cpu", _cpu(get("env") or {})),
    ])
    section("memory", [
        ("weights as stored", _bytes(get("weight_bytes"))),
        ("peak RSS (inference)", _bytes(get("peak_rss_bytes"))),
        ("peak RSS (load)", _bytes(get("load_peak_rss_bytes"))),
        ("load time", "-" if get("load_seconds") is None else f"{get('load_seconds'):.2f} s"),
        ("CUDA max allocated", _bytes(get("cuda_max_allocated_bytes"))),
    ])
    energy = get("energy_j")
    per_token = get("energy_j_per_token")
    section("energy", [
        ("energy (accuracy + latency)", "-" if energy is None else f"{energy:.4g} J  [{get('energy_source')}]"),
        ("energy per generated token", "-" if per_token is None else f"{per_token:.4g} J  [{get('energy_source')}]"),
        ("method", str(get("energy_method") or "-")),
    ])
    width = max(len(label) for label, _ in rows)
    lines = [f"{get('model')} / {get('variant')} on {get('device')}  (scenario {get('scenario')})".replace("  (scenario None)", "")]
    for label, value in rows:
        lines.append(label if label.startswith("[") else f"  {label.ljust(width)}  {value}")
    for note in get("notes") or []:
        lines.append(f"note: {note}")
    return "\n".join(lines)
