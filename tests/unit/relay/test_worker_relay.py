"""WorkerRelay's decisions against an in-process fake pRuntime and a fake chain source.

The fake pRuntime keeps pherry's counters (``headernum``/``blocknum`` are the next
numbers expected) and checks that it is fed in order; the fake source serves a chain
of ``tip + 1`` finalized blocks. Only ``poolkeeper.relay.worker`` is under test.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any, cast

import pytest

from poolkeeper.chain import _scale as scale
from poolkeeper.chain.ports import CallSpec
from poolkeeper.chain.relay_source import GenesisPayload, RelaySource
from poolkeeper.errors import PRuntimeNotInitialized, PRuntimeSyncRejected, PRuntimeUnavailable
from poolkeeper.pruntime import InitRuntimeRequest, PhactoryInfo
from poolkeeper.pruntime.messages import Attestation, InitRuntimeResponse
from poolkeeper.relay.worker import (
    EGRESS_CHECK_BLOCKS,
    EGRESS_RETRY_BLOCKS,
    REGISTER_RETRY_BLOCKS,
    STALL_ROUNDS,
    RelayCondition,
    RelayOptions,
    StepKind,
    WorkerRelay,
)

WORKER_ORIGIN = b"\x02" + bytes(range(32))


class FakeSource:
    """Blocks ``0..=tip`` are finalized; headers come in runs of at most ``batch``."""

    def __init__(self, tip: int, batch: int = 10) -> None:
        self.tip = tip
        self.batch = batch
        self.next_sequence = 0
        self.calls: list[str] = []

    async def genesis(self) -> GenesisPayload:
        self.calls.append("genesis")
        return GenesisPayload("0x" + "00" * 32, b"info", b"state")

    async def headers_request(self, from_number: int) -> tuple[bytes, int] | None:
        if from_number > self.tip:
            return None
        last = min(self.tip, from_number + self.batch - 1)
        self.calls.append(f"headers {from_number}..{last}")
        return f"H{from_number}-{last}".encode(), last

    async def blocks_request(self, from_number: int, to_number: int) -> bytes:
        assert to_number <= self.tip
        self.calls.append(f"blocks {from_number}..{to_number}")
        return f"B{from_number}-{to_number}".encode()

    async def finalized_number(self) -> int:
        return self.tip

    async def wait_finalized_above(self, number: int, timeout: float) -> bool:
        if self.tip <= number:
            await asyncio.sleep(timeout)
        return self.tip > number

    async def mq_next_sequence(self, sender: bytes) -> int:
        assert sender == WORKER_ORIGIN
        self.calls.append("mq_next_sequence")
        return self.next_sequence


class FakePRuntime:
    """pherry's counters, checked order, and knobs for restart/stall/egress."""

    def __init__(self) -> None:
        self.initialized = False
        self.registered = False
        self.headernum = 0
        self.blocknum = 0
        self.stalled = False
        self.unreachable = False
        self.inits = 0
        self.egress: list[int] = []
        self.pending_messages: int | None = None
        """GetInfo's count of egress messages (None: ``len(egress)``)."""
        self.attested = True
        self.requests: list[str] = []
        """Every call, by method name, in order (requests per block at the tip)."""

    @property
    def url(self) -> str:
        return "fake://0"

    async def get_info(self) -> PhactoryInfo:
        self.requests.append("GetInfo")
        if self.unreachable:
            raise PRuntimeUnavailable("fake://0 is unreachable")
        return PhactoryInfo(
            initialized=self.initialized,
            registered=self.registered,
            headernum=self.headernum,
            blocknum=self.blocknum,
            pending_messages=(
                len(self.egress) if self.pending_messages is None else self.pending_messages
            ),
        )

    async def init_runtime(self, request: InitRuntimeRequest) -> InitRuntimeResponse:
        assert request.encoded_genesis_info == b"info"
        assert request.encoded_genesis_state == b"state"
        self.requests.append("InitRuntime")
        self.inits += 1
        self.initialized = True
        self.headernum = 1  # genesis header comes with init
        self.blocknum = 1
        return InitRuntimeResponse()

    async def sync_header(self, encoded: bytes, *args: Any) -> int:
        """Answers the last header synced (``SyncedTo``), as pRuntime does."""
        self.requests.append("SyncHeader")
        self._require_init("SyncHeader")
        first, last = (int(x) for x in encoded.decode()[1:].split("-"))
        if first != self.headernum:  # headers must continue where the pRuntime is
            raise PRuntimeSyncRejected("fake://0", "SyncHeader", 500, "BlockNumberMismatch")
        if not self.stalled:
            self.headernum = last + 1
        return self.headernum - 1

    async def dispatch_blocks(self, encoded: bytes) -> int:
        """Answers the last block dispatched (``SyncedTo``)."""
        self.requests.append("DispatchBlocks")
        self._require_init("DispatchBlocks")
        first, last = (int(x) for x in encoded.decode()[1:].split("-"))
        assert first == self.blocknum, "blocks must continue where the pRuntime is"
        assert last < self.headernum, "blocks only up to synced headers"
        if not self.stalled:
            self.blocknum = last + 1
        return self.blocknum - 1

    def _require_init(self, method: str) -> None:
        if not self.initialized:
            raise PRuntimeNotInitialized("fake://0", method, 500, "Runtime not initialized")

    async def get_runtime_info(self, encoded_operator: bytes | None = None) -> InitRuntimeResponse:
        self.requests.append("GetRuntimeInfo")
        attestation = Attestation(encoded_report=b"\x00") if self.attested else None
        return InitRuntimeResponse(encoded_runtime_info=b"RI", attestation=attestation)

    async def get_egress_messages(self) -> bytes:
        self.requests.append("GetEgressMessages")
        signed = [
            WORKER_ORIGIN
            + scale.bytes_(b"topic")
            + scale.bytes_(f"m{seq}".encode())
            + seq.to_bytes(8, "little")
            + scale.bytes_(b"sig")
            for seq in self.egress
        ]
        if not signed:
            return scale.vec([])
        return scale.vec([WORKER_ORIGIN + scale.vec(signed)])


class Submissions:
    def __init__(self) -> None:
        self.jobs: list[tuple[str, CallSpec]] = []

    async def __call__(self, job_id: str, call: CallSpec) -> bool:
        self.jobs.append((job_id, call))
        return True


def make_relay(
    tip: int = 30, *, sync_blocks: int = 8, register: bool = False
) -> tuple[WorkerRelay, FakePRuntime, FakeSource, Submissions]:
    pruntime, source, submissions = FakePRuntime(), FakeSource(tip), Submissions()
    relay = WorkerRelay(
        "w0",
        cast(Any, pruntime),
        cast(RelaySource, source),
        RelayOptions(sync_blocks=sync_blocks, register=register, backoff=(0.01,)),
        submissions,
    )
    return relay, pruntime, source, submissions


async def run_until_tip(relay: WorkerRelay, limit: int = 100) -> list[StepKind]:
    kinds = []
    for _ in range(limit):
        kind = await relay.step()
        kinds.append(kind)
        if kind is StepKind.TIP:
            return kinds
    raise AssertionError(f"no tip after {limit} steps: {kinds}")


async def test_pherry_order_init_then_headers_then_blocks_until_tip() -> None:
    relay, pruntime, source, _ = make_relay(tip=30, sync_blocks=8)
    kinds = await run_until_tip(relay)
    assert kinds[0] is StepKind.INIT
    assert kinds[1] is StepKind.HEADERS  # nothing to dispatch before headers exist
    # After each header run, blocks are dispatched up to it before more headers.
    assert source.calls[:5] == [
        "genesis",
        "headers 1..10",
        "blocks 1..8",
        "blocks 9..10",
        "headers 11..20",
    ]
    assert (pruntime.headernum, pruntime.blocknum) == (31, 31)
    assert relay.status.condition is RelayCondition.AT_TIP


async def test_restarted_pruntime_is_reinitialised_and_resynced() -> None:
    relay, pruntime, source, _ = make_relay(tip=20)
    await run_until_tip(relay)
    pruntime.__init__()  # type: ignore[misc]  # the process restarted: all state gone
    assert await relay.step() is StepKind.TIP  # no new block: nothing asked, nothing seen
    assert pruntime.requests == []
    source.tip += 1  # the next block's SyncHeader fails, and the next round reads GetInfo
    with pytest.raises(PRuntimeNotInitialized):
        await relay.step()
    kinds = await run_until_tip(relay)
    assert kinds[0] is StepKind.INIT
    assert pruntime.inits == 1 and relay.status.restarts_seen == 1
    assert (pruntime.headernum, pruntime.blocknum) == (22, 22)
    assert source.calls.count("genesis") == 2


async def test_counters_going_back_count_as_restart_and_sync_from_there() -> None:
    relay, pruntime, source, _ = make_relay(tip=20)
    await run_until_tip(relay)
    pruntime.headernum = pruntime.blocknum = 5  # e.g. state restored from an old checkpoint
    source.tip += 1
    with pytest.raises(PRuntimeSyncRejected):  # the relay's headers no longer fit
        await relay.step()
    await run_until_tip(relay)
    assert relay.status.restarts_seen == 1
    assert (pruntime.headernum, pruntime.blocknum) == (22, 22)


async def test_slow_timer_reads_counters_without_a_new_block() -> None:
    now = [0.0]
    relay, pruntime, _, _ = make_relay(tip=20)
    relay._clock = lambda: now[0]
    await run_until_tip(relay)
    pruntime.__init__()  # type: ignore[misc]
    now[0] += relay.options.info_seconds - 1
    assert await relay.step() is StepKind.TIP and pruntime.requests == []
    now[0] += 1
    assert await relay.step() is StepKind.INIT  # GetInfo on the slow timer saw the restart
    assert pruntime.requests == ["GetInfo", "InitRuntime"]


async def test_stalled_pruntime_becomes_stalled_condition_and_recovers() -> None:
    relay, pruntime, _, _ = make_relay(tip=50)
    await relay.step()  # init
    await relay.step()  # headers
    pruntime.stalled = True
    await relay.step()  # reads the counters the last header run produced: progress
    for _ in range(STALL_ROUNDS):
        assert relay.status.condition is not RelayCondition.STALLED
        await relay.step()
    assert relay.status.condition is RelayCondition.STALLED
    pruntime.stalled = False
    await relay.step()  # the call that finally advances
    await relay.step()  # sees progress
    assert relay.status.condition is RelayCondition.SYNCING
    await run_until_tip(relay)
    assert relay.status.condition is RelayCondition.AT_TIP


async def test_registers_at_tip_only_when_asked_and_not_twice() -> None:
    relay, pruntime, _, submissions = make_relay(tip=10, register=True)
    kinds = await run_until_tip(relay)
    assert not any("register" in job for job, _ in submissions.jobs[: len(kinds) - 1])
    await asyncio.sleep(0)
    registrations = [c for job, c in submissions.jobs if job.startswith("register_worker")]
    assert len(registrations) == 1
    call = registrations[0]
    assert (call.pallet, call.function, call.raw_args) == (
        "PhalaRegistry",
        "register_worker_v2",
        b"RI\x00",
    )
    await relay.step()  # still unregistered, but the retry is not due yet
    await asyncio.sleep(0)
    assert len([j for j, _ in submissions.jobs if j.startswith("register_worker")]) == 1
    pruntime.registered = True
    relay.options.register = False
    await relay.step()
    await asyncio.sleep(0)
    assert len([j for j, _ in submissions.jobs if j.startswith("register_worker")]) == 1


async def test_a_registration_waiting_in_the_signers_queue_is_not_submitted_again() -> None:
    relay, _, source, submissions = make_relay(tip=10, register=True)
    answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    async def slow_submit(job_id: str, call: CallSpec) -> bool:
        submissions.jobs.append((job_id, call))
        return await answer  # queued behind thousands of others

    relay.submit = slow_submit
    await run_until_tip(relay)
    for tip in range(11, 11 + 3 * REGISTER_RETRY_BLOCKS):  # far past the retry delay
        source.tip = tip
        await run_until_tip(relay)
        await asyncio.sleep(0)
    registrations = [j for j, _ in submissions.jobs if j.startswith("register_worker")]
    assert len(registrations) == 1
    answer.set_result(False)  # failed on chain: due again REGISTER_RETRY_BLOCKS later
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    answered_at = relay.status.blocknum
    for tip in range(source.tip + 1, answered_at + REGISTER_RETRY_BLOCKS + 1):
        source.tip = tip
        await run_until_tip(relay)
        await asyncio.sleep(0)
        expected = 1 if relay.status.blocknum - answered_at < REGISTER_RETRY_BLOCKS else 2
        assert len([j for j, _ in submissions.jobs if j.startswith("register_worker")]) == (
            expected
        )
    assert len([j for j, _ in submissions.jobs if j.startswith("register_worker")]) == 2


async def test_a_registration_journaled_as_in_flight_is_not_submitted_again() -> None:
    relay, _, _, submissions = make_relay(tip=10, register=True)
    relay._in_flight = lambda job_id: job_id == "register_worker:worker/w0"
    await run_until_tip(relay)
    await asyncio.sleep(0)
    assert not [j for j, _ in submissions.jobs if j.startswith("register_worker")]


async def test_no_registration_without_attestation_yet() -> None:
    relay, pruntime, _, submissions = make_relay(tip=5, register=True)
    pruntime.attested = False
    await run_until_tip(relay)
    await asyncio.sleep(0)
    assert not [j for j, _ in submissions.jobs if j.startswith("register_worker")]


async def test_egress_sends_from_next_sequence_and_retries_after_blocks() -> None:
    relay, pruntime, source, submissions = make_relay(tip=10)
    pruntime.egress = [0, 1, 2]
    source.next_sequence = 1  # message 0 is already on chain
    await run_until_tip(relay)
    await asyncio.sleep(0)
    sent = [job for job, _ in submissions.jobs]
    assert sent == [
        f"egress:worker/w0:{WORKER_ORIGIN.hex()}:1",
        f"egress:worker/w0:{WORKER_ORIGIN.hex()}:2",
    ]
    assert all(c.function == "sync_offchain_message" for _, c in submissions.jobs)
    await relay.step()  # same tip: nothing resent
    await asyncio.sleep(0)
    assert len(submissions.jobs) == 2
    assert EGRESS_CHECK_BLOCKS >= EGRESS_RETRY_BLOCKS  # the periodic check is the retry
    source.tip += EGRESS_CHECK_BLOCKS  # chain moved on, messages still not included
    await run_until_tip(relay)
    await asyncio.sleep(0)
    assert len(submissions.jobs) == 4
    source.next_sequence = 3  # included now
    source.tip += EGRESS_CHECK_BLOCKS
    await run_until_tip(relay)
    await asyncio.sleep(0)
    assert len(submissions.jobs) == 4


async def test_egress_in_flight_is_not_resent_and_costs_no_node_request() -> None:
    relay, pruntime, source, _ = make_relay(tip=10)
    answered = asyncio.Event()
    jobs: list[str] = []

    async def slow_submit(job_id: str, call: CallSpec) -> bool:
        jobs.append(job_id)
        await answered.wait()  # inclusion takes a while
        return True

    relay.submit = slow_submit
    pruntime.egress = [0, 1]
    await run_until_tip(relay)
    await asyncio.sleep(0)
    assert len(jobs) == 2
    queries = source.calls.count("mq_next_sequence")
    for _ in range(3):  # rounds at the tip while both are in flight, past the retry delay
        source.tip += EGRESS_CHECK_BLOCKS
        await run_until_tip(relay)
        await asyncio.sleep(0)
    assert len(jobs) == 2, "a message still in flight was sent again"
    assert source.calls.count("mq_next_sequence") == queries, "node asked with nothing due"
    answered.set()
    await asyncio.sleep(0)
    pruntime.egress = [0, 1, 2]  # a new heartbeat: only it is sent
    source.next_sequence = 2
    relay.note_info(3)  # the observe pass saw pending messages: checked at once
    await relay.step()
    await asyncio.sleep(0)
    assert jobs[2:] == [f"egress:worker/w0:{WORKER_ORIGIN.hex()}:2"]


async def test_run_backs_off_on_unreachable_and_resumes() -> None:
    relay, pruntime, _, _ = make_relay(tip=10)
    pruntime.unreachable = True
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop, idle_seconds=0.01))
    await asyncio.sleep(0.05)
    assert relay.status.condition is RelayCondition.BACKING_OFF
    assert relay.status.last_error and "unreachable" in relay.status.last_error
    pruntime.unreachable = False
    for _ in range(200):
        if relay.status.condition is RelayCondition.AT_TIP:
            break
        await asyncio.sleep(0.01)
    assert relay.status.condition is RelayCondition.AT_TIP
    assert relay.status.last_error is None
    stop.set()
    await asyncio.wait_for(task, 1)


@pytest.mark.parametrize("sync_blocks", [1, 3, 64])
async def test_dispatch_window_never_passes_synced_headers(sync_blocks: int) -> None:
    relay, pruntime, _, _ = make_relay(tip=25, sync_blocks=sync_blocks)
    await run_until_tip(relay, limit=200)
    assert (pruntime.headernum, pruntime.blocknum) == (26, 26)


async def test_egress_carried_by_a_pending_extrinsic_is_not_sent_again() -> None:
    relay, pruntime, source, submissions = make_relay(tip=10)
    carried = f"egress:worker/w0:{WORKER_ORIGIN.hex()}:0"
    relay._in_flight = lambda job_id: job_id == carried  # journaled, may still be included
    pruntime.egress = [0, 1]
    source.next_sequence = 0  # batched messages in the pool are not counted by the node
    await run_until_tip(relay)
    await asyncio.sleep(0)
    # The later one goes: anything signed now executes after the journaled one.
    assert [job for job, _ in submissions.jobs] == [f"egress:worker/w0:{WORKER_ORIGIN.hex()}:1"]


async def test_a_later_egress_message_waits_for_an_earlier_one_not_yet_signed() -> None:
    relay, pruntime, source, _ = make_relay(tip=10)
    answered = asyncio.Event()
    jobs: list[str] = []

    async def failing_submit(job_id: str, call: CallSpec) -> bool:
        jobs.append(job_id)
        await answered.wait()
        return False  # the node could not be reached: nothing was signed

    relay.submit = failing_submit
    pruntime.egress = [0]
    await run_until_tip(relay)
    await asyncio.sleep(0)
    assert len(jobs) == 1
    pruntime.egress = [0, 1]  # a new message while message 0 is queued, not signed
    source.tip += 1
    await run_until_tip(relay)
    await asyncio.sleep(0)
    assert len(jobs) == 1, "message 1 would reach the chain before message 0"
    answered.set()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    relay.submit = lambda job_id, call: _ok(jobs, job_id)
    await relay.step()  # failed before signing: due again at once, then the next in order
    await asyncio.sleep(0)
    sequences = [int(j.rsplit(":", 1)[1]) for j in jobs[1:]]
    assert sequences == [0, 1]


async def _ok(jobs: list[str], job_id: str) -> bool:
    jobs.append(job_id)
    return True


class RequestBody:
    """Stands for a large request body a failing call had in its frame."""


async def test_a_relay_backing_off_holds_nothing_of_the_request_that_failed() -> None:
    """A failure's traceback keeps the frames of the call it broke (an InitRuntime body is
    the whole genesis state): 10,000 relays sleeping in their backoff must not hold them."""
    relay, pruntime, _, _ = make_relay(tip=10)
    bodies: list[weakref.ref[RequestBody]] = []

    async def failing_get_info() -> PhactoryInfo:
        body = RequestBody()  # a local of the failing frame, as an encoded request is
        bodies.append(weakref.ref(body))
        raise PRuntimeUnavailable("fake://0 is unreachable")

    pruntime.get_info = failing_get_info  # type: ignore[method-assign]
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop, idle_seconds=0.01))
    for _ in range(100):
        if relay.status.condition is RelayCondition.BACKING_OFF:
            break
        await asyncio.sleep(0.01)
    assert relay.status.condition is RelayCondition.BACKING_OFF  # sleeping its backoff now
    gc.collect()
    assert bodies and all(ref() is None for ref in bodies), "the failed request is still held"
    stop.set()
    await asyncio.wait_for(task, 5)
