"""Reading user YAML safely: no tags that run code, no duplicate keys, no alias bombs.

`yaml.safe_load` never runs code, but it accepts `{a: 1, a: 2}` (the last silently wins) and
builds a 473-byte "billion laughs" document whose expansion no later step (validation, error
messages, JSON) survives. Here the file size is capped, the document's size *as expanded* is
counted on the parsed node graph before anything is built, self-referencing aliases are
refused, and a repeated key is an error naming both lines.

    >>> load_yaml_text("a: 1\\nb: [1, 2]\\n", "<t>")
    {'a': 1, 'b': [1, 2]}
    >>> load_yaml_text("a: 1\\na: 2\\n", "r.yaml")
    Traceback (most recent call last):
    ...
    compress.errors.RecipeError: r.yaml: line 2: key 'a' appears twice (lines 1 and 2); keep one
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from compress.errors import RecipeError, one_line, preview

MAX_BYTES = 1 << 20  # 1 MiB: a recipe is a page of text
MAX_NODES = 50_000  # scalars + collections after alias expansion
MAX_DEPTH = 64


def read_yaml_file(path: str | Path, *, error: type[Exception] = RecipeError, what: str = "recipe") -> Any:
    """Read and parse a YAML file with the caps above; every failure is one line of `error`."""
    path = Path(path)
    if not path.exists():
        raise error(f"{path}: no such {what} file")
    if not path.is_file():
        raise error(f"{path}: is a folder, not a {what} file")
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise error(f"{path}: {size:,} bytes is too large for a {what} (limit {MAX_BYTES:,})")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        line = raw[: bad.start].count(b"\n") + 1
        raise error(f"{path}: line {line}: not UTF-8 text (byte {raw[bad.start]:#04x}); save the {what} as UTF-8") from None
    return load_yaml_text(text, str(path), error=error)


class _Loader(yaml.SafeLoader):
    source = "<yaml>"
    error: type[Exception] = RecipeError

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *base` then overriding a key is the point of a merge
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node.start_mark.line + 1)
                except TypeError:
                    continue  # unhashable: the constructor reports it
                if first != key_node.start_mark.line + 1:
                    line = key_node.start_mark.line + 1
                    raise self.error(f"{self.source}: line {line}: key {preview(key)} appears twice (lines {first} and {line}); keep one")
        return super().construct_mapping(node, deep=deep)


def _expanded_size(root, source: str, error: type[Exception]) -> int:
    """Nodes of the document as expanded (aliases counted at each use), without expanding it."""
    sizes: dict[int, int] = {}
    # Iterative post-order walk; a node met again while still open is a self-reference.
    stack: list[tuple[Any, bool, int]] = [(root, False, 1)]
    open_nodes: set[int] = set()
    while stack:
        node, done, depth = stack.pop()
        key = id(node)
        if done:
            children = _children(node)
            total = 1 + sum(sizes[id(child)] for child in children)
            sizes[key] = total
            open_nodes.discard(key)
            if total > MAX_NODES:
                raise error(f"{source}: the document expands to more than {MAX_NODES:,} values (YAML aliases nested too deep?); write it out plainly")
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise error(f"{source}: line {node.start_mark.line + 1}: an alias refers to the collection that contains it; remove the loop")
        if depth > MAX_DEPTH:
            raise error(f"{source}: line {node.start_mark.line + 1}: nested more than {MAX_DEPTH} levels deep")
        open_nodes.add(key)
        stack.append((node, True, depth))
        for child in _children(node):
            if id(child) in open_nodes:
                raise error(f"{source}: line {child.start_mark.line + 1}: an alias refers to the collection that contains it; remove the loop")
            if id(child) not in sizes:
                stack.append((child, False, depth + 1))
    return sizes[id(root)]


def _children(node) -> list:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_flow_depth(text: str, source: str, error: type[Exception]) -> None:
    # PyYAML's scanner slows to minutes on thousands of nested '[': refuse them before parsing.
    # Brackets inside quoted strings count too; 64 unclosed ones there are not a recipe either.
    depth = 0
    line_number = 1
    for char in text:
        if char == "\n":
            line_number += 1
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise error(f"{source}: line {line_number}: brackets nested more than {MAX_DEPTH} levels deep")
        elif char in "]}":
            depth = max(depth - 1, 0)
    for line_number, line in enumerate(text.splitlines(), start=1):
        indent = len(line) - len(line.lstrip(" "))
        if indent > 4 * MAX_DEPTH:
            raise error(f"{source}: line {line_number}: indented {indent} spaces, nested too deep")


def load_yaml_text(text: str, source: str = "<yaml>", *, error: type[Exception] = RecipeError) -> Any:
    """Parse YAML text (safe tags only) with the caps above; None for an empty document."""
    if len(text) > MAX_BYTES:
        raise error(f"{source}: {len(text):,} characters is too large (limit {MAX_BYTES:,})")
    _check_flow_depth(text, source, error)
    loader = None
    try:
        loader = type("Loader", (_Loader,), {"source": source, "error": error})(text)  # reads: may raise
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, source, error)
        return loader.construct_document(node)
    except yaml.YAMLError as bad:
        mark = getattr(bad, "problem_mark", None) or getattr(bad, "context_mark", None)
        where = f" line {mark.line + 1}:" if mark else ""
        problem = getattr(bad, "problem", None) or str(bad)
        raise error(f"{source}:{where} not valid YAML: {one_line(str(problem), 160)}") from None
    except RecursionError:
        raise error(f"{source}: nested too deeply to read") from None
    except ValueError as bad:  # e.g. an integer of thousands of digits (Python refuses to convert it)
        raise error(f"{source}: a value cannot be read: {one_line(str(bad), 120)}") from None
    finally:
        if loader is not None:
            loader.dispose()
