"""Atomic writes: the one implementation of "write beside the target, fsync, rename over it".

Readers see the old file (or folder) or the new one, never half of either; an interrupted
write leaves only a hidden `.<name>.tmp-*` sibling that the next write of the same target
removes. JSON is written strictly: NaN and infinity are not JSON and are refused here, so a
caller turns them into null (or an error) on purpose.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.json"
    >>> write_json(path, {"x": 1})
    >>> path.read_text()
    '{\\n  "x": 1\\n}\\n'
"""

from __future__ import annotations

import json
import math
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TMP_MARK = ".tmp-"


def staging_path(target: str | os.PathLike) -> Path:
    """A hidden, unique sibling of `target` (same folder, so the rename is atomic)."""
    target = Path(target)
    return target.with_name(f".{target.name}{TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def remove_debris(target: str | os.PathLike) -> None:
    """Remove staging siblings that an interrupted earlier write of `target` left behind.

    A sibling whose writer (the pid in its name) still runs is another process's write in
    flight, and is left alone.
    """
    target = Path(target)
    for leftover in target.parent.glob(f".{target.name}{TMP_MARK}*"):
        pid = leftover.name[len(f".{target.name}{TMP_MARK}"):].split("-")[0]
        if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
            continue
        if leftover.is_symlink() or leftover.is_file():
            leftover.unlink(missing_ok=True)
        else:
            shutil.rmtree(leftover, ignore_errors=True)


def fsync_file(path: str | os.PathLike) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def fsync_dir(path: str | os.PathLike) -> None:
    """fsync a folder itself, so the names it holds (a rename, a new file) survive a power cut."""
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # pragma: no cover - platforms without directory descriptors (Windows)
        return
    try:
        os.fsync(descriptor)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on folders
        pass
    finally:
        os.close(descriptor)


@contextmanager
def staged_file(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path; when the block ends without error it replaces `target` atomically.

        >>> # with staged_file("plot.png") as tmp: figure.savefig(tmp, format="png")
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_debris(target)
    tmp = staging_path(target)
    try:
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, target)
        fsync_dir(target.parent)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(target: str | os.PathLike, data: bytes) -> None:
    with staged_file(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: str | os.PathLike, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def dumps_json(document: Any, *, indent: int | None = 2) -> str:
    """JSON text; NaN/inf are refused (ValueError) rather than written as invalid `NaN` literals."""
    return json.dumps(document, indent=indent, allow_nan=False, default=str)


def write_json(target: str | os.PathLike, document: Any) -> None:
    write_text(target, dumps_json(document) + "\n")


def finite_or_none(value: Any) -> Any:
    """JSON has no NaN or infinity: a non-finite float becomes None, recursively in lists/dicts."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(item) for item in value]
    return value


@contextmanager
def staged_dir(target: str | os.PathLike, *, replace: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Yield an empty hidden sibling folder; on success it is renamed to `target`.

    An existing `target` is replaced only when `replace(target)` says so (the caller checks it
    is a folder it wrote); otherwise the rename fails and the staging folder is removed.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_debris(target)
    staging = staging_path(target)
    staging.mkdir()
    try:
        yield staging
        for child in staging.rglob("*"):
            if child.is_file() and not child.is_symlink():
                fsync_file(child)
        fsync_dir(staging)
        swap_dir(staging, target, replace=replace)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def swap_dir(staging: Path, target: Path, *, replace: Callable[[Path], bool] | None = None) -> None:
    """Rename `staging` to `target`; an existing target goes away only if `replace(target)` is true.

    The old folder is first renamed to a hidden sibling, so at every instant `target` names a
    whole folder (old or new) or, for one rename's length, nothing.
    """
    if target.is_symlink() or target.exists():
        if target.is_symlink() or not target.is_dir() or replace is None or not replace(target):
            raise FileExistsError(f"{target} exists and is not ours to replace")
        retired = staging_path(target)
        os.rename(target, retired)
        os.rename(staging, target)
        fsync_dir(target.parent)
        shutil.rmtree(retired, ignore_errors=True)
        return
    try:
        os.rename(staging, target)
    except OSError:
        if not target.exists():
            raise
        raise FileExistsError(f"{target} appeared while writing; another process wrote it") from None
    fsync_dir(target.parent)
