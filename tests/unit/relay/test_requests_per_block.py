"""Requests per block at the tip: two (SyncHeader, DispatchBlocks), egress checks apart.

Counts every call a relay makes to its (fake) pRuntime, block by block, once it is at
the tip: the sync answers carry the counters, so no GetInfo; idle rounds without a new
block cost nothing; egress is fetched at least once per ``egress_check_blocks`` and at
once when an observe pass saw pending messages.
"""

from __future__ import annotations

import asyncio

from poolkeeper.relay.worker import EGRESS_CHECK_BLOCKS, StepKind, WorkerRelay
from tests.unit.relay.test_worker_relay import (
    FakePRuntime,
    FakeSource,
    make_relay,
    run_until_tip,
)

BLOCKS = 40


async def requests_for_next_block(
    relay: WorkerRelay, pruntime: FakePRuntime, source: FakeSource
) -> list[str]:
    """One new finalized block, the relay's rounds until it is back at the tip, and two
    idle rounds (the wake-ups without a new block)."""
    pruntime.requests.clear()
    source.tip += 1
    await run_until_tip(relay)
    assert await relay.step() is StepKind.TIP
    assert await relay.step() is StepKind.TIP
    await asyncio.sleep(0)
    return list(pruntime.requests)


async def test_two_requests_per_block_at_the_tip_without_egress() -> None:
    relay, pruntime, source, _ = make_relay(tip=10)
    relay.submit = None  # no signer: nothing to carry (the benchmark's relays)
    await run_until_tip(relay)
    for _ in range(BLOCKS):
        assert await requests_for_next_block(relay, pruntime, source) == [
            "SyncHeader",
            "DispatchBlocks",
        ]
    assert (pruntime.headernum, pruntime.blocknum) == (10 + BLOCKS + 1, 10 + BLOCKS + 1)


async def test_egress_checked_at_least_every_n_blocks_and_at_most_once_a_block() -> None:
    relay, pruntime, source, submissions = make_relay(tip=10)
    await run_until_tip(relay)
    per_block = [await requests_for_next_block(relay, pruntime, source) for _ in range(BLOCKS)]
    for requests in per_block:
        assert requests[:2] == ["SyncHeader", "DispatchBlocks"]
        assert requests[2:] in ([], ["GetEgressMessages"])
    checks = [i for i, r in enumerate(per_block) if "GetEgressMessages" in r]
    gaps = [b - a for a, b in zip([-1, *checks], checks, strict=False)]
    assert max(gaps) <= EGRESS_CHECK_BLOCKS, gaps
    average = sum(map(len, per_block)) / BLOCKS
    assert average <= 2 + 1 / EGRESS_CHECK_BLOCKS + 1 / BLOCKS, average
    assert submissions.jobs == []


async def test_a_heartbeat_is_carried_within_n_blocks_of_being_produced() -> None:
    relay, pruntime, source, submissions = make_relay(tip=10)
    await run_until_tip(relay)
    for produced_after in range(EGRESS_CHECK_BLOCKS):
        for _ in range(produced_after):
            await requests_for_next_block(relay, pruntime, source)
        sequence = len(pruntime.egress)
        pruntime.egress.append(sequence)  # dispatching the next block produces it
        source.next_sequence = sequence
        for _ in range(EGRESS_CHECK_BLOCKS):
            await requests_for_next_block(relay, pruntime, source)
            if any(job.endswith(f":{sequence}") for job, _ in submissions.jobs):
                break
        else:
            raise AssertionError(
                f"heartbeat {sequence} not carried in {EGRESS_CHECK_BLOCKS} blocks"
            )


async def test_pending_messages_seen_by_the_observe_pass_are_fetched_at_once() -> None:
    relay, pruntime, source, submissions = make_relay(tip=10)
    await run_until_tip(relay)
    await requests_for_next_block(relay, pruntime, source)
    pruntime.egress = [0]
    relay.note_info(1)
    pruntime.requests.clear()
    assert await relay.step() is StepKind.TIP  # no new block: only the egress fetch
    await asyncio.sleep(0)
    assert pruntime.requests == ["GetEgressMessages"]
    assert len(submissions.jobs) == 1
    assert await requests_for_next_block(relay, pruntime, source) == [
        "SyncHeader",
        "DispatchBlocks",
    ]


async def test_pending_messages_already_on_their_way_are_not_fetched_again() -> None:
    relay, pruntime, _, submissions = make_relay(tip=10)
    await run_until_tip(relay)
    pruntime.egress = [0]
    relay.note_info(1)
    await relay.step()  # fetched and submitted; the pRuntime keeps it until accepted
    await asyncio.sleep(0)
    pruntime.requests.clear()
    relay.note_info(1)  # the next observe pass still sees it: nothing new
    assert await relay.step() is StepKind.TIP
    assert pruntime.requests == []
    pruntime.egress = [0, 1]
    relay.note_info(2)  # one more than the last check found
    assert await relay.step() is StepKind.TIP
    await asyncio.sleep(0)
    assert pruntime.requests == ["GetEgressMessages"]
    assert [job.rsplit(":", 1)[1] for job, _ in submissions.jobs] == ["0", "1"]


async def test_observe_passes_seeing_no_message_stand_for_the_periodic_egress_check() -> None:
    relay, pruntime, source, _ = make_relay(tip=10)
    await run_until_tip(relay)
    await requests_for_next_block(relay, pruntime, source)  # the first (staggered) check
    per_block = []
    for _ in range(BLOCKS):
        # an observe pass between blocks: the pRuntime holds no message
        relay.note_observed(
            initialized=True, registered=False, blocknum=pruntime.blocknum, pending_messages=0
        )
        per_block.append(await requests_for_next_block(relay, pruntime, source))
    assert all(r == ["SyncHeader", "DispatchBlocks"] for r in per_block), per_block
    # observations stop: the periodic check is back within egress_check_blocks
    later = [await requests_for_next_block(relay, pruntime, source) for _ in range(BLOCKS)]
    checks = [i for i, r in enumerate(later) if "GetEgressMessages" in r]
    assert checks and checks[0] < EGRESS_CHECK_BLOCKS, checks


async def test_an_observed_message_is_fetched_and_a_held_one_keeps_the_periodic_check() -> None:
    relay, pruntime, source, submissions = make_relay(tip=10)
    await run_until_tip(relay)
    await requests_for_next_block(relay, pruntime, source)
    pruntime.egress = [0]
    relay.note_observed(initialized=True, registered=False, blocknum=12, pending_messages=1)
    pruntime.requests.clear()
    assert await relay.step() is StepKind.TIP
    await asyncio.sleep(0)
    assert pruntime.requests == ["GetEgressMessages"] and len(submissions.jobs) == 1
    # the pRuntime still holds one message: observations do not stand for a check
    checks = 0
    for _ in range(EGRESS_CHECK_BLOCKS):
        relay.note_observed(
            initialized=True, registered=False, blocknum=pruntime.blocknum, pending_messages=1
        )
        checks += "GetEgressMessages" in await requests_for_next_block(relay, pruntime, source)
    assert checks == 1


async def test_an_observed_pruntime_that_lost_its_state_is_read_again() -> None:
    relay, pruntime, _, _ = make_relay(tip=10)
    await run_until_tip(relay)
    relay.note_observed(initialized=False, registered=False, blocknum=0, pending_messages=0)
    assert relay.counters is None and relay.wants_step()
    pruntime.requests.clear()
    await relay.step()
    assert pruntime.requests[0] == "GetInfo"
