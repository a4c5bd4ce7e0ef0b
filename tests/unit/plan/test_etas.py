"""The ETA arithmetic of waits: blocks, rates and the head moving on."""

from __future__ import annotations

from poolkeeper.plan._etas import blocks_to_seconds, score_eta, sync_eta


def test_blocks_to_seconds_rounds_up_and_needs_a_block_time() -> None:
    assert blocks_to_seconds(3, 12000) == 36
    assert blocks_to_seconds(1, 1500) == 2
    assert blocks_to_seconds(3, None) is None
    assert blocks_to_seconds(3, 0) is None


def test_sync_eta_counts_the_head_moving_on() -> None:
    assert sync_eta(500, 6.0, 1000) == 100  # gains 5 blocks/s
    assert sync_eta(500, 5.0, None) == 100  # head rate unknown: not subtracted
    assert sync_eta(500, 1.0, 1000) is None  # keeps pace, never catches up
    assert sync_eta(500, None, 1000) is None
    assert sync_eta(0, None, None) == 0


def test_score_eta_from_registration_or_from_now() -> None:
    common = {"now_seconds": 1000, "benchmark_duration": 10, "block_time_ms": 12000}
    assert score_eta(registered_at=None, registering_now=True, **common) == 13 * 12
    assert score_eta(registered_at=940, registering_now=False, **common) == 12 * 12 - 60
    assert score_eta(registered_at=0, registering_now=False, **common) == 0
    assert score_eta(registered_at=None, registering_now=False, **common) is None
    assert (
        score_eta(
            registered_at=940,
            registering_now=False,
            now_seconds=1000,
            benchmark_duration=None,
            block_time_ms=12000,
        )
        is None
    )
