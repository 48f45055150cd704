"""A test-only fault hook: stop the process at a named point, reached by code, not by timing.

Stages call `fault_point("load")`, `fault_point("pass:rtn")`, `fault_point("save")`, ... When
the environment variable `SCALECOMPRESS_FAULT` names that point, the process dies there (as a
SIGKILL would leave it: no cleanup, no `finally`), so tests can prove that every stage is safe
to interrupt. Unset (always, outside tests), a call is one dictionary lookup.

    SCALECOMPRESS_FAULT=save              die at the first `save` point
    SCALECOMPRESS_FAULT=results-append#2  die at the second time `results-append` is reached
    SCALECOMPRESS_FAULT_MODE=raise        raise FaultInjected instead of dying (in-process tests)

    >>> fault_point("save")  # no variable set: nothing happens
"""

from __future__ import annotations

import os
import signal

ENV = "SCALECOMPRESS_FAULT"
MODE_ENV = "SCALECOMPRESS_FAULT_MODE"
_hits: dict[str, int] = {}


class FaultInjected(BaseException):
    """Raised at a fault point in `raise` mode; a BaseException so no `except Exception` eats it."""


def fault_point(name: str) -> None:
    """Die (or raise) here when `SCALECOMPRESS_FAULT` names this point; otherwise do nothing."""
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    point, _, nth = wanted.partition("#")
    if point != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] != (int(nth) if nth.isdigit() else 1):
        return
    if os.environ.get(MODE_ENV) == "raise":
        raise FaultInjected(f"fault injected at {name!r}")
    os.kill(os.getpid(), signal.SIGKILL)  # like a power cut: no finally blocks, no flushing
