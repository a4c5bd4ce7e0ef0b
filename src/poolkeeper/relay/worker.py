"""One worker's relay: brings its pRuntime from its counters to the chain tip, keeps it there.

It follows pherry's order (PROTOCOL.md §2.3): initialise when uninitialised; dispatch
blocks while ``blocknum`` trails the synced headers; sync headers (with the
justification on the last) while the finalized head is ahead; at the tip, register the
worker when asked to and carry its egress (benchmark reports, heartbeats) to the chain.
In parachain mode (the source is a ``ParachainSource``) blocks trail the synced
parachain headers; parachain headers that ``Paras.Heads`` at the last synced relay
block proves are sent with ``SyncParaHeader``; relay headers go with the parachain
headers proven at their last block in one ``SyncCombinedHeaders`` (as PRB does).

Each ``step()`` re-reads the counters first, so a pRuntime that restarted
(uninitialised, or counters went back) is simply re-initialised and re-synced; a
pRuntime that accepts calls but does not advance is reported as stalled.
All chain data comes from the shared ``RelaySource``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from poolkeeper.chain.egress import EgressMessage, split_egress
from poolkeeper.chain.ports import CallSpec
from poolkeeper.chain.relay_source import ParachainSource, RelaySource
from poolkeeper.errors import PoolkeeperError
from poolkeeper.pruntime import InitRuntimeRequest, PhactoryInfo, PRuntimeClient
from poolkeeper.pruntime.messages import CombinedHeadersToSync

STALL_ROUNDS = 5
"""Rounds without counter progress while behind before a pRuntime counts as stalled."""
REGISTER_RETRY_BLOCKS = 20
EGRESS_RETRY_BLOCKS = 6
DEFAULT_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


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
    backoff: Sequence[float] = field(default_factory=lambda: DEFAULT_BACKOFF)


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
        in_flight: Callable[[str], bool] | None = None,
    ) -> None:
        self.name = name
        self._in_flight = in_flight or (lambda _job_id: False)
        """Whether a job is carried by an extrinsic that may still be included (journal)."""
        self.client = client
        self.source = source
        self.options = options
        self.submit = submit
        self.status = RelayStatus()
        self._last_counters: tuple[int, ...] | None = None
        self._register_sent_at: int | None = None
        self._egress_sent: dict[tuple[bytes, int], int] = {}
        """(sender, sequence) → tip when last submitted."""
        self._egress_in_flight: set[tuple[bytes, int]] = set()
        """Submissions not answered yet: never sent twice at once."""
        self._egress_tasks: set[asyncio.Task[object]] = set()

    async def step(self) -> StepKind:
        """One round: read counters, perform the first operation that applies."""
        info = await self.client.get_info()
        self.status.steps += 1
        if not info.initialized:
            if self._last_counters is not None:
                self.status.restarts_seen += 1
            self._last_counters = None
            self.status.condition = RelayCondition.INITIALIZING
            await self._init()
            return StepKind.INIT
        counters = (info.headernum, info.para_headernum, info.blocknum)
        went_back = self._last_counters is not None and any(
            now < before for now, before in zip(counters, self._last_counters, strict=True)
        )
        if went_back:
            self.status.restarts_seen += 1
        progressed = self._last_counters is None or counters != self._last_counters
        self._last_counters = counters
        self.status.headernum, self.status.para_headernum, self.status.blocknum = counters
        kind = await self._sync(info)
        if kind is StepKind.TIP:
            self.status.rounds_without_progress = 0
            self.status.condition = RelayCondition.AT_TIP
            await self._at_tip(info)
            return kind
        self.status.rounds_without_progress = (
            0 if progressed else self.status.rounds_without_progress + 1
        )
        stalled = self.status.rounds_without_progress >= STALL_ROUNDS
        self.status.condition = RelayCondition.STALLED if stalled else RelayCondition.SYNCING
        return kind

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

    async def _sync(self, info: PhactoryInfo) -> StepKind:
        if isinstance(self.source, ParachainSource):
            return await self._sync_parachain(info, self.source)
        next_header = info.headernum
        if info.blocknum < next_header:
            to = min(next_header - 1, info.blocknum + self.options.sync_blocks - 1)
            body = await self.source.blocks_request(info.blocknum, to)
            await self.client.dispatch_blocks(body)
            return StepKind.BLOCKS
        request = await self.source.headers_request(next_header)
        if request is not None:
            await self.client.sync_header(request[0])
            return StepKind.HEADERS
        return StepKind.TIP

    async def _sync_parachain(self, info: PhactoryInfo, source: ParachainSource) -> StepKind:
        if info.blocknum < info.para_headernum:
            to = min(info.para_headernum - 1, info.blocknum + self.options.sync_blocks - 1)
            await self.client.dispatch_blocks(await source.blocks_request(info.blocknum, to))
            return StepKind.BLOCKS
        para = await source.para_headers_request(info.headernum - 1, info.para_headernum)
        if para is not None and para.last > 0:
            await self.client.sync_para_header(para.encoded_headers, para.proof)
            return StepKind.PARA_HEADERS
        combined = await source.combined_request(info.headernum, info.para_headernum)
        if combined is not None:
            await self.client.sync_combined_headers(
                CombinedHeadersToSync(
                    encoded_relaychain_headers=combined.encoded_relaychain_headers,
                    encoded_parachain_headers=combined.encoded_parachain_headers,
                    proof=combined.proof,
                )
            )
            return StepKind.HEADERS
        return StepKind.TIP

    async def _at_tip(self, info: PhactoryInfo) -> None:
        if self.submit is None:
            return
        tip = info.blocknum
        if self.options.register and not info.registered:
            due = (
                self._register_sent_at is None
                or tip - self._register_sent_at >= REGISTER_RETRY_BLOCKS
            )
            if due:
                await self._register(tip)
        if self.options.carry_egress:
            await self._egress(tip)

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
        self._spawn(self._submit_quietly(f"register_worker:worker/{self.name}", call))

    async def _egress(self, tip: int) -> None:
        messages = split_egress(await self.client.get_egress_messages())
        # The pRuntime keeps a message until it dispatches the block that accepted it, so
        # most rounds see only messages already on their way: those cost no node request.
        present = {(m.sender, m.sequence) for m in messages}
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
                if key in self._egress_in_flight or not self._egress_due(key, tip):
                    # An earlier message is queued but not signed yet, or waits for its
                    # retry: a later one could reach the chain first and fail BadSequence
                    # (the chain takes a sender's messages in order). Wait for it.
                    break
                self._egress_sent[key] = tip
                self._egress_in_flight.add(key)
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
        finally:
            self._egress_in_flight.discard(key)

    def _spawn(self, coro: Awaitable[object]) -> None:
        task = asyncio.ensure_future(coro)
        self._egress_tasks.add(task)
        task.add_done_callback(self._egress_tasks.discard)

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

    async def _wait_at_tip(self, stop: asyncio.Event, idle_seconds: float) -> None:
        """At the tip the next round is due when a new block is finalized; at the latest
        after ``idle_seconds`` (egress and registration retries)."""
        await _wait_for_block_or_stop(self.source, self.status.headernum, stop, idle_seconds)

    async def run(self, stop: asyncio.Event, *, idle_seconds: float = 1.0) -> None:
        """Loop until ``stop`` is set; failures back off along ``options.backoff``."""
        failures = 0
        while not stop.is_set():
            try:
                kind = await self.step()
                failures = 0
                self.status.last_error = None
            except (PoolkeeperError, LookupError) as exc:
                self.status.last_error = str(exc)
                self.status.condition = RelayCondition.BACKING_OFF
                delays = self.options.backoff
                delay = delays[min(failures, len(delays) - 1)] * random.uniform(0.8, 1.2)
                failures += 1
                await _sleep_or_stop(stop, delay)
                continue
            if kind is StepKind.TIP:
                await self._wait_at_tip(stop, idle_seconds)
        for task in list(self._egress_tasks):
            task.cancel()


async def _wait_for_block_or_stop(
    source: RelaySource, headernum: int, stop: asyncio.Event, seconds: float
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
            await _sleep_or_stop(stop, seconds)  # the node is unreachable: poll slowly


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
