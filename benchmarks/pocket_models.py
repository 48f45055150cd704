"""The default models of the quality benchmarks: each trained pocket ladder's largest member.

    from pocket_models import largest_members   # in a script under benchmarks/ (its own folder is on sys.path)
    paths = largest_members()                   # [pocket-d128-l4, pocket-gpt2-d128-l4] once both are trained
"""

from __future__ import annotations

import sys


def largest_members(ladders: tuple[str, ...] = ("pocket", "pocket-gpt2")) -> list[str]:
    """Paths of each cached ladder's largest trained member; a ladder not in the cache is named on
    stderr and skipped (`scalecompress ladder train NAME` builds it)."""
    from compress.errors import ScaleCompressError
    from compress.scaling.ladder import load_ladder

    paths = []
    for spec in ladders:
        try:
            members = [member for member in load_ladder(spec, cached_only=True, progress=False).members if member.path]
        except (ScaleCompressError, OSError) as error:
            print(f"ladder {spec}: not available ({error}); train it with `scalecompress ladder train {spec}`", file=sys.stderr)
            continue
        if members:
            paths.append(max(members, key=lambda member: member.non_embedding_params).path)
    return paths
