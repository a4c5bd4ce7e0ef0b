"""``run`` makes young collections rarer; the older generations keep their thresholds."""

from __future__ import annotations

import gc

from poolkeeper._gc import YOUNG_THRESHOLD, tune_collector


def test_the_young_threshold_is_raised_and_the_older_ones_kept() -> None:
    original = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        assert tune_collector() == (700, 10, 10)
        assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)
        assert YOUNG_THRESHOLD > 700
    finally:
        gc.set_threshold(*original)
