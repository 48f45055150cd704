"""Where models, ladders and downloads are cached: never in git, always in one place.

`$SCALECOMPRESS_CACHE` wins; else `$XDG_CACHE_HOME/scalecompress`; else `~/.cache/scalecompress`.

    >>> from compress.cache import cache_dir
    >>> cache_dir("ladders").name
    'ladders'
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str, create: bool = True) -> Path:
    """The cache root, or a sub-folder of it, created on first use."""
    root = os.environ.get("SCALECOMPRESS_CACHE")
    if root:
        base = Path(root).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        base = Path(xdg).expanduser() / "scalecompress"
    path = base.joinpath(*parts)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path
