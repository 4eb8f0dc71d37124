"""NumPy asks the kernel to back every large array with transparent huge pages
(madvise MADV_HUGEPAGE). Where the kernel's THP defrag setting is "always" or "madvise",
such a fault compacts memory synchronously first: on this project's machines each fresh
90 MB array (one 11 M-parameter update in int64) took 1.1-1.5 s to touch instead of
0.05 s, and a round's outcome 22.8 s instead of 3.7 s. The agent turns the advice off
there; arrays then use ordinary pages (the values are the same, only the paging differs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

DEFRAG = Path("/sys/kernel/mm/transparent_hugepage/defrag")
STALLING = ("always", "madvise")  # the defrag modes that compact at fault time for madvised memory


def defrag_mode(path: Path = DEFRAG) -> str:
    """The kernel's selected THP defrag mode ("[madvise]" in the list), or "" if unknown."""
    try:
        words = path.read_text().split()
    except OSError:
        return ""
    return next((w[1:-1] for w in words if w.startswith("[") and w.endswith("]")), "")


def avoid_compaction_stalls(path: Path = DEFRAG) -> bool:
    """Stop NumPy's huge-page advice where it would stall every large allocation; True
    when it was turned off."""
    toggle = getattr(getattr(getattr(np, "_core", None), "multiarray", None), "_set_madvise_hugepage", None)
    if toggle is None or defrag_mode(path) not in STALLING:
        return False
    toggle(False)
    return True
