"""Backoff: steps along its delays, caps at the last, jitters within bounds, resets."""

from __future__ import annotations

import pytest

from poolkeeper.backoff import Backoff


def test_steps_cap_and_reset_without_jitter() -> None:
    backoff = Backoff((1.0, 2.0, 5.0), jitter=0)
    assert [backoff.next_delay() for _ in range(5)] == [1.0, 2.0, 5.0, 5.0, 5.0]
    assert backoff.failures == 5 and backoff.cap == 5.0
    backoff.reset()
    assert backoff.failures == 0 and backoff.next_delay() == 1.0


def test_jitter_uses_the_given_random_source_within_bounds() -> None:
    seen: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        seen.append((low, high))
        return high

    backoff = Backoff((10.0,), jitter=0.2, uniform=uniform)
    assert backoff.next_delay() == pytest.approx(12.0)
    assert len(seen) == 1 and seen[0] == pytest.approx((0.8, 1.2))
    real = Backoff((10.0,), jitter=0.2)
    delays = [real.next_delay() for _ in range(200)]
    assert all(8.0 <= d <= 12.0 for d in delays) and len(set(delays)) > 1


def test_new_delays_keep_the_failure_count_and_bad_input_is_refused() -> None:
    backoff = Backoff((1.0, 2.0, 3.0), jitter=0)
    backoff.next_delay()
    backoff.delays = (10.0, 20.0)
    assert backoff.peek() == 20.0
    with pytest.raises(ValueError):
        Backoff(())
    with pytest.raises(ValueError):
        Backoff((1.0,), jitter=1.5)
