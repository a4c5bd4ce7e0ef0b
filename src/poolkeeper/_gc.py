"""How often CPython's cyclic garbage collector runs in ``poolkeeper run``.

Why: at 10,000 workers each pass builds some 100,000 container objects that outlive the
young generations (the observation, the conditions that changed, the control hub's
rows and JSON). With CPython's default thresholds (700, 10, 10) that is ~400–520 young
collections and one or two full ones a pass, each full one walking every tracked object
of the process: ~25 % of a pass's CPU in ``benchmarks/loop_pass_10k.py`` (docs/benchmarks.md,
"The loop's pass at 10,000 workers"). A young generation of 50,000 objects makes
collections rare enough that a pass rarely triggers a full one. Cyclic garbage waits
longer to be freed (at most the young generation's worth, a few MB); everything freed by
reference counting, most of what a pass drops, is freed at once as before.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000
"""Allocations of container objects (minus deallocations) between young collections."""


def tune_collector(young: int = YOUNG_THRESHOLD) -> tuple[int, int, int]:
    """Raise the young generation's threshold (the older ones keep theirs); returns the
    thresholds before, to restore them."""
    before = gc.get_threshold()
    gc.set_threshold(young, before[1], before[2])
    return before
