"""When a wait ends: block counts, measured rates and chain constants turned into seconds.

Every wait of a plan says when it should end, or why that cannot be said. The facts
come from the observation (the chain's measured block time, the benchmark duration, a
pRuntime's measured sync rate); this module only does the arithmetic, so the planner
stays pure and the same observation always gives the same estimate.
"""

from __future__ import annotations

import math

SCORE_MESSAGE_BLOCKS = 2
"""Blocks between the end of the benchmark and the initial score on chain: the pRuntime
sends its score as an egress message, the next block carries it."""

INCLUSION_BLOCKS = 1
"""Blocks until an extrinsic of this pass is included."""


def blocks_to_seconds(blocks: int, block_time_ms: int | None) -> int | None:
    """``blocks`` at the measured block time, rounded up; None when not measured."""
    if block_time_ms is None or block_time_ms <= 0:
        return None
    return math.ceil(max(0, blocks) * block_time_ms / 1000)


def sync_eta(behind: int, rate: float | None, block_time_ms: int | None) -> int | None:
    """Seconds until a pRuntime ``behind`` blocks catches the finalized head.

    It gains ``rate - 1/block time`` blocks per second: the head moves on meanwhile (not
    counted when the block time is unknown). None when it does not gain at all."""
    if behind <= 0:
        return 0
    if rate is None:
        return None
    head_rate = 1000 / block_time_ms if block_time_ms else 0.0
    gain = rate - head_rate
    if gain <= 0:
        return None
    return math.ceil(behind / gain)


def score_eta(
    *,
    registered_at: int | None,
    now_seconds: int,
    benchmark_duration: int | None,
    block_time_ms: int | None,
    registering_now: bool,
) -> int | None:
    """Seconds until the initial score is set: registration (when planned now), the
    benchmark's ``benchmark_duration`` blocks and the score message. 0 when overdue."""
    if benchmark_duration is None:
        return None
    blocks = benchmark_duration + SCORE_MESSAGE_BLOCKS
    if registering_now:
        return blocks_to_seconds(blocks + INCLUSION_BLOCKS, block_time_ms)
    total = blocks_to_seconds(blocks, block_time_ms)
    if total is None or registered_at is None:
        return None
    return max(0, registered_at + total - now_seconds)
