"""One worker's relay: brings its pRuntime from its counters to the chain tip, keeps it there.

It follows pherry's order (PROTOCOL.md §2.3): initialise when uninitialised; dispatch
blocks while ``blocknum`` trails the synced headers; sync headers (with the
justification on the last) while the finalized head is ahead; at the tip, register the
worker when asked to and carry its egress (benchmark reports, heartbeats) to the chain.
In parachain mode (the source is a ``ParachainSource``) blocks trail the synced
parachain headers; parachain headers that ``Paras.Heads`` at the last synced relay
block proves are sent with ``SyncParaHeader``; relay headers go with the parachain
headers proven at their last block in one ``SyncCombinedHeaders`` (as PRB does).

At the tip a block costs each pRuntime two requests, ``SyncHeader`` and
``DispatchBlocks``: their answers (``synced_to``) carry the counters the relay needs,
so it keeps them locally. ``GetInfo`` is asked only when they do not suffice: at the
start, after any failure or an answer that does not advance as expected (a restarted
pRuntime, a stall), while a wanted registration is not seen yet, and on a slow timer
(``info_seconds``). ``GetEgressMessages`` is asked when ``GetInfo`` (the relay's own or
the observe pass's, ``note_info``) reports pending messages, and at least once every
``egress_check_blocks`` dispatched blocks: a pRuntime produces egress (benchmark
reports, heartbeats) only while dispatching blocks, and a heartbeat must reach the chain
well within the chain's unresponsiveness bound (docs/decisions.md, "Relay requests per
block"). A pRuntime that restarted (uninitialised, or counters went back) is simply
re-initialised and re-synced; one that accepts calls but does not advance is reported
as stalled. All chain data comes from the shared ``RelaySource``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Literal, Protocol

from poolkeeper.backoff import DEFAULT_DELAYS, Backoff
from poolkeeper.chain.egress import EgressMessage, split_egress
from poolkeeper.chain.ports import CallSpec
from poolkeeper.chain.relay_source import ParachainSource, RelaySource
from poolkeeper.errors import PoolkeeperError
from poolkeeper.pruntime import InitRuntimeRequest, ProtoMessage, PRuntimeClient
from poolkeeper.pruntime.messages import (
    Blocks,
    CombinedHeadersToSync,
    HeadersSyncedTo,
    HeadersToSync,
    ParaHeadersToSync,
    SyncedTo,
)

if TYPE_CHECKING:
    from poolkeeper.relay.tip import TipFeeder

AT_TIP_WAKE_SECONDS = 30.0
"""At the tip a relay waits for the next finalized block, or at most this long."""
UNREACHABLE_NODE_RETRY_SECONDS = 1.0
"""How soon a relay at the tip asks again when the node did not answer."""
STALL_ROUNDS = 5
"""Rounds without counter progress while behind before a pRuntime counts as stalled."""
REGISTER_RETRY_BLOCKS = 20
EGRESS_RETRY_BLOCKS = 6
EGRESS_CHECK_BLOCKS = 8
"""At the tip, egress is fetched at least once per this many dispatched blocks."""
INFO_SECONDS = 120.0
"""At the tip, ``GetInfo`` at least this often (a check; the sync answers suffice)."""
DEFAULT_BACKOFF = DEFAULT_DELAYS
_log = logging.getLogger(__name__)


class StopEvent(Protocol):
    """What a relay's ``run`` needs of its stop signal (``asyncio.Event`` has it)."""

    def is_set(self) -> bool: ...

    def set(self) -> None: ...

    async def wait(self) -> Literal[True]: ...


class RelayStop:
    """A relay's stop signal: ``asyncio.Event``'s surface, its event made only when someone
    waits. A relay parked at the tip (``TipFeeder``) never waits on it, and an
    ``asyncio.Event`` holds a waiters' deque of ~600 bytes from birth: 6 MB at 10,000
    relays (docs/benchmarks.md)."""

    __slots__ = ("_event", "_set")

    def __init__(self) -> None:
        self._event: asyncio.Event | None = None
        self._set = False

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        if self._event is not None:
            self._event.set()

    async def wait(self) -> Literal[True]:
        if self._set:
            return True
        if self._event is None:
            self._event = asyncio.Event()
        return await self._event.wait()


def _never_in_flight(_job_id: str) -> bool:
    return False


class RelayCondition(StrEnum):
    """What a relay is doing, for status and the TUI."""

    STARTING = "Starting"
    INITIALIZING = "Initializing"
    SYNCING = "Syncing"
    AT_TIP = "AtTip"
    STALLED = "Stalled"
    BACKING_OFF = "BackingOff"


class StepKind(StrEnum):
    INIT = "init"
    BLOCKS = "blocks"
    PARA_HEADERS = "para_headers"
    HEADERS = "headers"
    TIP = "tip"


@dataclass
class RelayStatus:
    """Observable state of one relay (never the source of truth for the planner)."""

    condition: RelayCondition = RelayCondition.STARTING
    headernum: int = 0
    para_headernum: int = 0
    blocknum: int = 0
    last_error: str | None = None
    restarts_seen: int = 0
    steps: int = 0
    rounds_without_progress: int = 0


def egress_job_id(worker: str, sender: bytes, sequence: int) -> str:
    """The job id of one egress message: the same on every try, so a journaled extrinsic
    carrying it is recognised (``egress_of`` reads it back)."""
    return f"egress:worker/{worker}:{sender.hex()}:{sequence}"


def egress_of(job_id: str) -> tuple[bytes, int] | None:
    """(sender, sequence) of an egress job id; None for other jobs."""
    if not job_id.startswith("egress:"):
        return None
    _, sender, sequence = job_id.rsplit(":", 2)
    return bytes.fromhex(sender), int(sequence)


Submit = Callable[[str, CallSpec], Awaitable[bool]]
"""Submits one call for a worker (``(job id, call) -> ok``), batched by the caller."""


@dataclass
class RelayOptions:
    """Per-worker relay settings."""

    sync_blocks: int = 64
    operator: bytes | None = None
    """32-byte AccountId embedded in the worker (the pool owner)."""
    attestation_provider: bytes | None = None
    """SCALE ``Option<AttestationProvider>`` bytes; None = no RA (dev chain)."""
    debug_set_key: bytes | None = None
    register: bool = False
    carry_egress: bool = True
    egress_check_blocks: int = EGRESS_CHECK_BLOCKS
    info_seconds: float = INFO_SECONDS
    backoff: Sequence[float] = field(default_factory=lambda: DEFAULT_BACKOFF)


@dataclass(frozen=True, slots=True)
class SyncOp:
    """One sync request: what to send, how to read its answer into the counters.

    ``payload`` identifies the request for sharing its encoding (the source hands every
    relay at the same counters the same object)."""

    kind: StepKind
    method: str
    request: ProtoMessage
    payload: object
    answer_type: type[SyncedTo] | type[HeadersSyncedTo]
    advances: tuple[tuple[int, int], ...]
    """(counter index, the last number sent) per number the answer carries."""
    send: Callable[[PRuntimeClient], Awaitable[int | HeadersSyncedTo]]
    """The call through the port (``PRuntimeClient``), for a relay stepping by itself."""

    @classmethod
    def blocks(cls, body: bytes, to: int) -> SyncOp:
        return cls(
            StepKind.BLOCKS,
            "DispatchBlocks",
            Blocks(body),
            body,
            SyncedTo,
            ((2, to),),
            lambda client: client.dispatch_blocks(body),
        )

    def apply(self, relay: WorkerRelay, answer: int | HeadersSyncedTo) -> None:
        if isinstance(answer, int):
            index, expected = self.advances[0]
            relay._advance(index, answer, expected=expected)
            return
        synced = (answer.relaychain_synced_to, answer.parachain_synced_to)
        for (index, expected), number in zip(self.advances, synced, strict=False):
            relay._advance(index, number, expected=expected)


class WorkerRelay:
    """Drives one pRuntime. ``run()`` loops ``step()`` with backoff on failures."""

    def __init__(
        self,
        name: str,
        client: PRuntimeClient,
        source: RelaySource,
        options: RelayOptions,
        submit: Submit | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        in_flight: Callable[[str], bool] | None = None,
        feeder: TipFeeder | None = None,
    ) -> None:
        self.name = name
        self.feeder = feeder
        """Where the relay waits at the tip with nothing else to do (fed each block)."""
        self._in_flight = in_flight or _never_in_flight
        """Whether a job is carried by an extrinsic that may still be included (journal)."""
        self.client = client
        self.source = source
        self.options = options
        self.submit = submit
        self.status = RelayStatus()
        self._clock = clock
        self._last_counters: tuple[int, ...] | None = None
        """Counters at the start of the previous round (progress and restarts)."""
        self._counters: tuple[int, int, int] | None = None
        """(headernum, para_headernum, blocknum) as the last answers left them; None:
        unknown, ask ``GetInfo``."""
        self._info_at: float | None = None
        self._info_blocknum = 0
        self._registered = False
        self._pending_messages = 0
        """Pending egress reported by a ``GetInfo`` that the last check had not seen."""
        self._known_pending = 0
        """Messages the pRuntime held at the last egress check (on their way to the chain)."""
        self._egress_checked_at: int | None = None
        self._register_sent_at: int | None = None
        self._register_in_flight = False
        """A registration submitted and not answered yet (queued, or in an extrinsic not
        included yet): never submitted again meanwhile, however long the queue."""
        self._egress_sent: dict[tuple[bytes, int], int] = {}
        """(sender, sequence) → tip when last submitted."""
        self._egress_in_flight: dict[tuple[bytes, int], None] = {}
        """Submissions not answered yet: never sent twice at once."""
        self._egress_tasks: dict[asyncio.Future[object], None] = {}

    async def step(self) -> StepKind:
        """One round: the counters (kept from the last answers, or ``GetInfo`` when they
        do not suffice), then the first operation that applies."""
        self.status.steps += 1
        counters = self._counters
        if counters is None or self._info_due(counters):
            info = await self.client.get_info()
            self._info_at = self._clock()
            self._registered = info.registered
            self.note_info(info.pending_messages)
            if not info.initialized:
                if self._last_counters is not None:
                    self.status.restarts_seen += 1
                self._last_counters = None
                self._counters = None
                self.status.condition = RelayCondition.INITIALIZING
                await self._init()
                return StepKind.INIT
            counters = (info.headernum, info.para_headernum, info.blocknum)
            self._info_blocknum = info.blocknum
        went_back = self._last_counters is not None and any(
            now < before for now, before in zip(counters, self._last_counters, strict=True)
        )
        if went_back:
            self.status.restarts_seen += 1
        progressed = self._last_counters is None or counters != self._last_counters
        self._last_counters = counters
        self._counters = counters
        self.status.headernum, self.status.para_headernum, self.status.blocknum = counters
        try:
            kind = await self._sync(*counters)
        except BaseException:
            self._counters = None  # whatever happened, ask the pRuntime next round
            raise
        if kind is StepKind.TIP:
            self.status.rounds_without_progress = 0
            self.status.condition = RelayCondition.AT_TIP
            await self._at_tip(counters[2])
            return kind
        self.status.rounds_without_progress = (
            0 if progressed else self.status.rounds_without_progress + 1
        )
        stalled = self.status.rounds_without_progress >= STALL_ROUNDS
        self.status.condition = RelayCondition.STALLED if stalled else RelayCondition.SYNCING
        return kind

    @property
    def counters(self) -> tuple[int, int, int] | None:
        """(headernum, para_headernum, blocknum) as the last answers left them; None when
        the next round must ask ``GetInfo``."""
        return self._counters

    def forget_counters(self) -> None:
        self._counters = None

    def wants_step(self) -> bool:
        """At the tip: whether the next round has more than syncing to do (what ``step``
        would do besides the sync requests the tip feeder sends)."""
        counters = self._counters
        if counters is None or self._info_due(counters):
            return True
        if self.submit is None:
            return False
        if self.options.register and not self._registered:
            return True
        return self.options.carry_egress and self._egress_check_due(counters[2])

    def _info_due(self, counters: tuple[int, int, int]) -> bool:
        """``GetInfo`` although the counters are known: the slow timer, or a wanted
        registration not seen yet (re-read once per newly dispatched block)."""
        if self._info_at is None or self._clock() - self._info_at >= self.options.info_seconds:
            return True
        awaiting_registration = (
            self.options.register and not self._registered and self.submit is not None
        )
        return awaiting_registration and counters[2] > self._info_blocknum

    def note_info(self, pending_messages: int) -> None:
        """What a ``GetInfo`` (the relay's, or the observe pass's) saw of this pRuntime:
        more pending egress than the last check found is fetched in the next round at the
        tip. Fewer or as many are messages already on their way (or, rarely, a new one in
        place of an accepted one: the periodic check carries it)."""
        if pending_messages > self._known_pending:
            self._pending_messages = max(self._pending_messages, pending_messages)

    def note_observed(
        self, *, initialized: bool, registered: bool, blocknum: int, pending_messages: int
    ) -> None:
        """What the observe pass's ``GetInfo`` of this pRuntime saw, used as the relay's
        own would be: pending egress (``note_info``); the slow ``GetInfo`` timer restarts;
        a registration seen; a pRuntime no longer initialised is re-read next round. A
        pRuntime holding no message at all at ``blocknum`` counts as an egress check there:
        with observe passes more often than ``egress_check_blocks``, the relay's own
        periodic checks are not needed (a pRuntime still holding messages keeps them: a
        new message can take the place of one accepted, with the same count)."""
        self.note_info(pending_messages)
        if not initialized:
            self._counters = None
            return
        self._info_at = self._clock()
        if registered:
            self._registered = True
        if pending_messages == 0:
            self._pending_messages = 0
            self._known_pending = 0
            if self._egress_checked_at is not None:
                self._egress_checked_at = max(self._egress_checked_at, blocknum)

    def _advance(self, index: int, synced_to: int, *, expected: int) -> None:
        """Counter ``index`` from a sync answer; an answer short of ``expected`` (the
        last number sent) leaves the counters unknown, so the next round reads them."""
        if self._counters is None:
            return
        if synced_to < expected:
            self._counters = None
            return
        counters = list(self._counters)
        counters[index] = synced_to + 1
        self._counters = (counters[0], counters[1], counters[2])

    async def _init(self) -> None:
        genesis = await self.source.genesis()
        await self.client.init_runtime(
            InitRuntimeRequest(
                skip_ra=False,
                encoded_genesis_info=genesis.genesis_info,
                debug_set_key=self.options.debug_set_key,
                encoded_genesis_state=genesis.genesis_state,
                encoded_operator=self.options.operator,
                is_parachain=isinstance(self.source, ParachainSource),
                attestation_provider=self.options.attestation_provider,
            )
        )

    async def _sync(self, headernum: int, para_headernum: int, blocknum: int) -> StepKind:
        op = await self.next_op((headernum, para_headernum, blocknum))
        if op is None:
            return StepKind.TIP
        op.apply(self, await op.send(self.client))
        return op.kind

    async def next_op(self, counters: tuple[int, int, int]) -> SyncOp | None:
        """The sync request a pRuntime at ``counters`` needs next (None: at the tip). The
        same object for every relay at the same counters and ``sync_blocks``, since the
        source shares its requests: ``TipFeeder`` sends one op to thousands of relays."""
        headernum, _para_headernum, blocknum = counters
        if isinstance(self.source, ParachainSource):
            return await self._next_parachain_op(counters, self.source)
        if blocknum < headernum:
            to = min(headernum - 1, blocknum + self.options.sync_blocks - 1)
            return SyncOp.blocks(await self.source.blocks_request(blocknum, to), to)
        request = await self.source.headers_request(headernum)
        if request is not None:
            body, last = request
            return SyncOp(
                StepKind.HEADERS,
                "SyncHeader",
                HeadersToSync(body),
                body,
                SyncedTo,
                ((0, last),),
                lambda client: client.sync_header(body),
            )
        return None

    async def _next_parachain_op(
        self, counters: tuple[int, int, int], source: ParachainSource
    ) -> SyncOp | None:
        headernum, para_headernum, blocknum = counters
        if blocknum < para_headernum:
            to = min(para_headernum - 1, blocknum + self.options.sync_blocks - 1)
            return SyncOp.blocks(await source.blocks_request(blocknum, to), to)
        para = await source.para_headers_request(headernum - 1, para_headernum)
        if para is not None and para.last > 0:
            return SyncOp(
                StepKind.PARA_HEADERS,
                "SyncParaHeader",
                ParaHeadersToSync(para.encoded_headers, para.proof),
                para,
                SyncedTo,
                ((1, para.last),),
                lambda client: client.sync_para_header(para.encoded_headers, para.proof),
            )
        combined = await source.combined_request(headernum, para_headernum)
        if combined is None:
            return None
        request = CombinedHeadersToSync(
            encoded_relaychain_headers=combined.encoded_relaychain_headers,
            encoded_parachain_headers=combined.encoded_parachain_headers,
            proof=combined.proof,
        )
        advances: tuple[tuple[int, int], ...] = ((0, combined.relaychain_last),)
        if combined.parachain_last is not None:
            advances += ((1, combined.parachain_last),)
        return SyncOp(
            StepKind.HEADERS,
            "SyncCombinedHeaders",
            request,
            combined,
            HeadersSyncedTo,
            advances,
            lambda client: client.sync_combined_headers(request),
        )

    def apply_answer(self, op: SyncOp, answer: int | HeadersSyncedTo) -> None:
        """A sync answer the tip feeder received: counters and status as ``step`` leaves
        them (the next ``step`` compares against these, so it sees no restart)."""
        op.apply(self, answer)
        counters = self._counters
        if counters is not None:
            self._last_counters = counters
            self.status.headernum, self.status.para_headernum, self.status.blocknum = counters

    async def _at_tip(self, tip: int) -> None:
        if self.submit is None:
            return
        if self.options.register and not self._registered:
            due = not self._register_in_flight and (
                self._register_sent_at is None
                or tip - self._register_sent_at >= REGISTER_RETRY_BLOCKS
            )
            if due and self._in_flight(self._register_job_id):
                due = False  # journaled in an extrinsic that may still be included
            if due:
                await self._register(tip)
        if self.options.carry_egress and self._egress_check_due(tip):
            await self._egress(tip)

    def _egress_check_due(self, tip: int) -> bool:
        """Pending messages reported, never checked, or ``egress_check_blocks`` blocks
        dispatched since the last check."""
        if self._pending_messages > 0 or self._egress_checked_at is None:
            return True
        return tip - self._egress_checked_at >= self.options.egress_check_blocks

    async def _register(self, tip: int) -> None:
        assert self.submit is not None
        runtime = await self.client.get_runtime_info(encoded_operator=self.options.operator)
        if runtime.attestation is None:
            return  # available only after the first dispatched block
        self._register_sent_at = tip
        call = CallSpec(
            "PhalaRegistry",
            "register_worker_v2",
            raw_args=runtime.encoded_runtime_info + runtime.attestation.encoded_report,
        )
        self._register_in_flight = True
        self._spawn(self._register_once(call))

    @property
    def _register_job_id(self) -> str:
        return f"register_worker:worker/{self.name}"

    async def _register_once(self, call: CallSpec) -> None:
        # The retry is counted from the answer: at 10,000 workers a registration can wait
        # in the signer's queue longer than REGISTER_RETRY_BLOCKS (1.46 calls a worker were
        # sent in the 10,000-worker scenario before this).
        try:
            await self._submit_quietly(self._register_job_id, call)
        finally:
            self._register_in_flight = False
            self._register_sent_at = self.status.blocknum

    async def _egress(self, tip: int) -> None:
        messages = split_egress(await self.client.get_egress_messages())
        every = max(1, self.options.egress_check_blocks)
        if self._egress_checked_at is None:
            # Spread the periodic checks of many relays over the blocks of a period.
            self._egress_checked_at = tip - zlib.crc32(self.name.encode()) % every
        else:
            self._egress_checked_at = tip
        self._pending_messages = 0
        # The pRuntime keeps a message until it dispatches the block that accepted it, so
        # most rounds see only messages already on their way: those cost no node request.
        present = {(m.sender, m.sequence) for m in messages}
        self._known_pending = len(present)
        self._egress_sent = {k: v for k, v in self._egress_sent.items() if k in present}
        by_sender: dict[bytes, list[EgressMessage]] = {}
        for message in messages:
            by_sender.setdefault(message.sender, []).append(message)
        for sender, pending in by_sender.items():
            if not any(self._egress_due((sender, m.sequence), tip) for m in pending):
                continue
            # Never sent again while an extrinsic carrying it may still be included (asked
            # first: one settled after this is on chain for the next question), nor when
            # the chain has its sequence or the pool holds it (pha_getMqNextSequence: on
            # chain plus top-level messages in the pool). Either would fail BadSequence.
            carried = {
                m.sequence
                for m in pending
                if self._in_flight(egress_job_id(self.name, sender, m.sequence))
            }
            next_seq = await self.source.mq_next_sequence(sender)
            for message in sorted(pending, key=lambda m: m.sequence):
                key = (sender, message.sequence)
                if message.sequence < next_seq:
                    self._egress_sent[key] = tip
                    continue  # on chain already; the pRuntime drops it soon
                if message.sequence in carried:
                    continue  # journaled: anything signed later executes after it
                if key in self._egress_in_flight:
                    # An earlier message is queued but not signed yet: a later one could
                    # reach the chain first and fail BadSequence (the chain takes a
                    # sender's messages in order). Wait for it.
                    break
                if not self._egress_due(key, tip):
                    continue  # sent (signed, on its way): a later one is signed after it
                self._egress_sent[key] = tip
                self._egress_in_flight[key] = None
                job_id = egress_job_id(self.name, sender, message.sequence)
                self._spawn(self._submit_egress(key, job_id, message.call()))

    def _egress_due(self, key: tuple[bytes, int], tip: int) -> bool:
        """Never sent, or sent ``EGRESS_RETRY_BLOCKS`` ago and no longer in flight."""
        if key in self._egress_in_flight:
            return False
        sent_at = self._egress_sent.get(key)
        return sent_at is None or tip - sent_at >= EGRESS_RETRY_BLOCKS

    async def _submit_egress(self, key: tuple[bytes, int], job_id: str, call: CallSpec) -> None:
        try:
            if not await self._submit_quietly(job_id, call):
                # Not sent (node unreachable) or failed: due again at once. One whose
                # outcome is unknown stays journaled as pending, and is skipped as carried.
                self._egress_sent.pop(key, None)
                self._pending_messages = max(self._pending_messages, 1)  # check next round
        finally:
            self._egress_in_flight.pop(key, None)

    def _spawn(self, coro: Awaitable[object]) -> None:
        task = asyncio.ensure_future(coro)
        self._egress_tasks[task] = None
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Future[object]) -> None:
        self._egress_tasks.pop(task, None)

    async def _submit_quietly(self, job_id: str, call: CallSpec) -> bool:
        assert self.submit is not None
        try:
            ok = await self.submit(job_id, call)
        except PoolkeeperError as exc:
            self.status.last_error = f"{job_id}: {exc}"
            return False
        if not ok:
            self.status.last_error = f"{job_id}: failed on chain"
        return ok

    async def _wait_at_tip(self, stop: StopEvent, idle_seconds: float) -> None:
        """At the tip the next round is due when a new block is finalized; at the latest
        after ``idle_seconds``, a safety net only: egress checks, registration retries and
        the slow ``GetInfo`` timer are all decided per block, so waking without a new
        block finds nothing to do and costs CPU at every relay."""
        await wait_for_block_or_stop(self.source, self.status.headernum, stop, idle_seconds)

    async def run(self, stop: StopEvent, *, idle_seconds: float = AT_TIP_WAKE_SECONDS) -> None:
        """Loop until ``stop`` is set; failures back off along ``options.backoff``."""
        backoff = Backoff(self.options.backoff)
        while not stop.is_set():
            kind: StepKind | None = None
            delay = 0.0
            try:
                kind = await self.step()
                if backoff.failures:
                    _log.info(
                        "relay %s recovered after %d failure(s)",
                        self.name,
                        backoff.failures,
                        extra={"event": "relay.recovered", "worker": self.name},
                    )
                backoff.reset()
                self.status.last_error = None
            except Exception as exc:
                delay = self._failed(exc, backoff)
            if kind is StepKind.TIP:
                feeder = self.feeder
                if feeder is None or not feeder.can_feed(self) or stop.is_set():
                    await self._wait_at_tip(stop, idle_seconds)
                    continue
                failure = await self._park(feeder)
                if failure is None:
                    continue
                if not isinstance(failure, Exception):
                    raise failure
                delay = self._failed(failure, backoff)
            elif kind is not None:
                continue
            # Backed off outside the handler: a failure's traceback holds the frames of
            # the request it broke (an InitRuntime body is the whole genesis state, a
            # megabyte or more), and 10,000 relays failing together while they sleep
            # would hold them all (seen: `run` at 2.9 GB when a simulator died).
            await _sleep_or_stop(stop, delay)
        for task in list(self._egress_tasks):
            task.cancel()

    async def _park(self, feeder: TipFeeder) -> BaseException | None:
        """Wait at the tip in ``feeder``, which sends the sync requests of each new
        block; back here when there is more to do (None) or a failure to back off on."""
        try:
            return await feeder.park(self)
        finally:
            feeder.forget(self)

    def _failed(self, exc: Exception, backoff: Backoff) -> float:
        """Record and log a failed round; the delay to back off."""
        # Foreseeable faults (node, pRuntime) are one line; anything else is a bug
        # worth its traceback, but never the end of this relay.
        foreseen = isinstance(exc, PoolkeeperError | LookupError)
        self.status.last_error = str(exc) if foreseen else f"{type(exc).__name__}: {exc}"
        self.status.condition = RelayCondition.BACKING_OFF
        backoff.delays = self.options.backoff
        delay = backoff.next_delay()
        # The first failure of a streak is a warning, the repeats are detail (the
        # relay's condition and the plan's alerts say it goes on).
        level = logging.WARNING if backoff.failures == 1 else logging.DEBUG
        _log.log(
            level if foreseen else logging.ERROR,
            "relay %s: %s; retrying in %.1fs",
            self.name,
            self.status.last_error,
            delay,
            exc_info=(type(exc), exc, exc.__traceback__) if not foreseen else None,
            extra={"event": "relay.error", "worker": self.name},
        )
        return delay


async def wait_for_block_or_stop(
    source: RelaySource, headernum: int, stop: StopEvent, seconds: float
) -> None:
    """Until a block past the synced headers is finalized, ``stop``, or ``seconds``."""
    new_block = asyncio.ensure_future(source.wait_finalized_above(headernum - 1, seconds))
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((new_block, stopping), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (new_block, stopping):
            task.cancel()
        if new_block.done() and not new_block.cancelled() and new_block.exception():
            # the node is unreachable: poll slowly, but not as slowly as the safety net
            await _sleep_or_stop(stop, min(seconds, UNREACHABLE_NODE_RETRY_SECONDS))


async def _sleep_or_stop(stop: StopEvent, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
