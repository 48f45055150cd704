"""Which modules a pass touches: the one selection rule every pass shares.

An entry in `targets` or `ignore` matches a module when it is
- a class name (`"Linear"` also covers GPT-2's transposed `Conv1D`), or
- a module name or a dotted suffix of one (`"q_proj"`, `"mlp.down_proj"`, `"lm_head"`); a
  parent's name covers its children (`"mlp"`, `"layers.0"`), or
- `"re:<regex>"`, searched in the full module name (`"re:layers\\.[0-3]\\."`).

Embeddings and the output head are never touched through a class name: they must be named
(or matched by a regex) in `targets` to be selected.

    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    >>> [name for name, _ in select_modules(model, ["Linear"], ignore=["re:^2$"])]
    ['0']
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from torch import nn

from compress.errors import UserError

LINEAR_CLASSES = ("Linear", "Conv1D")


def is_linear(module: nn.Module) -> bool:
    """nn.Linear or GPT-2's Conv1D (same maths, weight stored transposed) holding dense weights.

    bitsandbytes layers subclass nn.Linear but hold packed codes: they are compressed layers,
    never selected again.
    """
    if is_packed(module):
        return False
    return type(module).__name__ in LINEAR_CLASSES or isinstance(module, nn.Linear)


def is_packed(module: nn.Module) -> bool:
    """A compressed layer: one of ours (it names its format) or a bitsandbytes layer."""
    return hasattr(module, "format_name") or type(module).__module__.startswith("bitsandbytes")


def check_pattern(entry: str) -> None:
    """Raise UserError for a `re:` entry that does not compile."""
    if entry.startswith("re:"):
        try:
            re.compile(entry[3:])
        except re.error as error:
            raise UserError(f"bad regex {entry!r}: {error}") from error


def matches_by_name(entry: str, name: str) -> bool:
    """Regexes search the full name; plain names match the module or any of its parents."""
    if entry.startswith("re:"):
        return re.search(entry[3:], name) is not None
    parts = name.split(".")
    prefixes = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
    return any(prefix == entry or prefix.endswith("." + entry) for prefix in prefixes)


def _matches_by_class(entry: str, module: nn.Module) -> bool:
    if entry == "Linear":
        return is_linear(module)
    return type(module).__name__ == entry


def _protected(model: nn.Module) -> set[int]:
    """Ids of embeddings and the output head, which only an explicit name selects."""
    ids = {id(m) for m in model.modules() if isinstance(m, nn.Embedding)}
    if hasattr(model, "get_output_embeddings"):
        head = model.get_output_embeddings()
        if head is not None:
            ids.add(id(head))
    return ids


def select_modules(model: nn.Module, targets: list[str], ignore: list[str] | None = None) -> Iterator[tuple[str, nn.Module]]:
    """Yield (name, module) for the modules selected by `targets` minus `ignore`, in model order."""
    ignore = ignore or []
    for entry in [*targets, *ignore]:
        check_pattern(entry)
    protected = _protected(model)
    for name, module in model.named_modules():
        if not name:
            continue
        by_name = any(matches_by_name(t, name) for t in targets)
        by_class = any(_matches_by_class(t, module) for t in targets)
        if not by_name and not (by_class and id(module) not in protected):
            continue
        if any(matches_by_name(i, name) or _matches_by_class(i, module) for i in ignore):
            continue
        yield name, module


def select_linears(model: nn.Module, targets: list[str], ignore: list[str] | None = None) -> list[tuple[str, nn.Module]]:
    """Like `select_modules`, keeping only linear layers (what weight passes act on)."""
    return [(name, module) for name, module in select_modules(model, targets, ignore) if is_linear(module)]


def describe_selection(model: nn.Module, targets: list[str], ignore: list[str] | None = None) -> str:
    """Why a selection is empty, in one clause: what `targets` matched and what `ignore` removed.

    >>> import torch
    >>> describe_selection(torch.nn.Sequential(torch.nn.ReLU()), ["Linear"])
    "targets ['Linear'] matched no module"
    """
    matched = list(select_modules(model, targets, []))
    kept = list(select_modules(model, targets, ignore))
    packed = sorted({type(m).__name__ for _, m in model.named_modules() if is_packed(m)})
    text = f"targets {targets} matched no module"
    if matched:
        examples = ", ".join(f"{n} ({type(m).__name__})" for n, m in matched[:3])
        text = f"targets {targets} matched {len(matched)} module(s), e.g. {examples}"
        if not kept:
            text += f", all removed by ignore {ignore}"
        else:
            text += ", none of them a linear layer"
    if packed:
        text += f"; the model already holds compressed layers ({', '.join(packed)}): compress its dense source instead"
    return text
