"""The one place that quiets transformers: its log lines and its own progress bars.

Inside our commands one progress bar (ours) tracks the work; transformers' "Loading weights"
bars, load reports and warnings would bury it, and errors we raise ourselves say more.

    >>> with quiet_transformers():
    ...     pass
"""

from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def quiet_transformers(*, logs: bool = True, bars: bool = True):
    """Silence transformers' logging below errors (`logs`) and its progress bars (`bars`); restore after."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars_were_on = hf_logging.is_progress_bar_enabled()
    if logs:
        hf_logging.set_verbosity_error()
    if bars:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if logs:
            hf_logging.set_verbosity(verbosity)
        if bars and bars_were_on:
            hf_logging.enable_progress_bar()
