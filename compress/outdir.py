"""The output folder of a run: one writer at a time, and our own files kept apart from the user's.

`OutputLock(out)` takes an exclusive lock on `<out>/.scalecompress/lock` (released by the
kernel when the process ends, even by a kill); a second run into the same folder fails at once
with one line naming who holds it. The recipe as run is written under `.scalecompress/` too,
so it never lands on a user's file.

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> with OutputLock(out):
    ...     (out / STATE_DIR).is_dir()
    True
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import socket
import sys
from pathlib import Path

from compress.errors import UserError

STATE_DIR = ".scalecompress"


def state_dir(out: Path) -> Path:
    return Path(out) / STATE_DIR


def prepare_output(out: Path) -> Path:
    """Make the run's output folder, or explain in one line why `out` cannot be one."""
    out = Path(out)
    if out.is_file() or (out.is_symlink() and not out.exists()):
        raise UserError(f"--out {out} is a file (or a broken link), not a folder; choose a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        state_dir(out).mkdir(exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserError(f"--out {out}: a part of that path is a file; choose a folder") from None
    except PermissionError:
        raise UserError(f"--out {out}: permission denied; choose a folder you can write") from None
    return out


class OutputLock:
    """Exclusive lock on an output folder for the length of a run (POSIX flock)."""

    def __init__(self, out: Path):
        self.out = Path(out)
        self.path = state_dir(self.out) / "lock"
        self._handle = None

    def __enter__(self) -> OutputLock:
        import fcntl

        prepare_output(self.out)
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = _describe(handle.read())
            handle.close()
            raise UserError(f"{self.out} is in use by another run ({holder}); wait for it to finish, or choose another --out") from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": _dt.datetime.now().isoformat(timespec="seconds"), "argv": sys.argv[1:6]}))
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, *exc) -> None:
        if self._handle is not None:
            self._handle.close()  # closing releases the flock
            self._handle = None


def _describe(text: str) -> str:
    try:
        holder = json.loads(text)
        return f"pid {holder['pid']} on {holder['host']} since {holder['since']}"
    except (ValueError, KeyError, TypeError):
        return "another process"
