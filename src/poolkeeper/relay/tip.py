"""Feeds every relay waiting at the tip the next finalized block, from one place.

At the tip each new block costs every pRuntime the same two requests (PROTOCOL.md §2.3),
and with 10,000 workers the relay machinery around them, not the requests themselves, was
most of the CPU: each relay's task woke, created two waiter tasks, stepped three times
through the source and the client, and each request went through a timeout, a
semaphore, a byte budget and a future (docs/benchmarks.md, "10,000 relays at the tip").
A relay with nothing else to do parks here instead (``park``). On each new finalized
block the feeder looks up the next request once per distinct set of counters (the
relay's own ``next_op``, so the sync logic is the relay's), sends it to each parked
relay's pRuntime with ``call_soon`` (a callback on the connection: no task, no future),
and chains the next request from the answer, at most ``window`` in flight. Relays do not
wait for each other: one slow pRuntime delays only itself.

A relay leaves the feeder (its ``park`` future resolves) when it has something the
feeder does not do: an error (the relay backs off as after a failed step), an answer
short of what was sent or a pRuntime without an ``http://`` connection (it steps by
itself), or a duty due after a block (a ``GetInfo``, a registration, an egress check).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol, TypeVar, cast

from poolkeeper.chain.relay_source import RelaySource
from poolkeeper.pruntime import ProtoMessage
from poolkeeper.pruntime.messages import HeadersSyncedTo, SyncedTo
from poolkeeper.relay.worker import StopEvent, SyncOp, WorkerRelay, wait_for_block_or_stop

_log = logging.getLogger(__name__)

DEFAULT_WINDOW = 500
"""Requests the feeder keeps in flight at once (``PRuntimeTransport``'s default bound)."""
_SWEEP_SECONDS = 1.0
"""How often requests past their timeout are looked for."""

R = TypeVar("R", bound=ProtoMessage)


class FeedableClient(Protocol):
    """What the feeder needs of a pRuntime client besides the port
    (``HttpPRuntimeClient`` has it; a test's fake may)."""

    def can_call_soon(self) -> bool: ...

    def encode_shared(self, method: str, payload: object, request: ProtoMessage) -> bytes: ...

    def call_soon(
        self,
        method: str,
        encoded: bytes,
        response_type: type[R],
        on_done: Callable[[R | Exception], None],
    ) -> Callable[[], None] | None: ...


Released = BaseException | None
"""What a parked relay is released with: the error to back off on, or None (step)."""
_OpKey = tuple[tuple[int, int, int], int]
"""(counters, sync_blocks): relays with the same key are sent the same request."""


class TipFeeder:
    """Owns the relays parked at the tip; ``run`` feeds them each new finalized block."""

    def __init__(
        self,
        source: RelaySource,
        *,
        timeout: float,
        window: int = DEFAULT_WINDOW,
        idle_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self._timeout = timeout
        self._window = max(1, window)
        self._idle_seconds = idle_seconds
        self._clock = clock
        self._parked: dict[WorkerRelay, asyncio.Future[Released]] = {}
        """Every parked relay, idle or being fed."""
        self._feeding: set[WorkerRelay] = set()
        """Parked relays with a request in flight, queued, or waiting for their next op."""
        self._ops: dict[_OpKey, asyncio.Future[SyncOp | None]] = {}
        """Next ops for the current head (cleared when the head moves)."""
        self._waiting_op: dict[_OpKey, list[WorkerRelay]] = {}
        self._queue: deque[tuple[WorkerRelay, SyncOp, bytes]] = deque()
        self._in_flight: set[_Request] = set()
        self._sending: dict[WorkerRelay, _Request] = {}
        """Each fed relay's current request (one at a time)."""
        self._sweeper: asyncio.TimerHandle | None = None
        self.requests = 0
        """Requests sent (for tests and benchmarks)."""

    @staticmethod
    def can_feed(relay: WorkerRelay) -> bool:
        """Only relays whose client can send without a task (plain HTTP through the lean
        client) are fed here; the others wait for blocks and step by themselves."""
        can_call_soon = getattr(relay.client, "can_call_soon", None)
        return can_call_soon is not None and bool(can_call_soon())

    def park(self, relay: WorkerRelay) -> asyncio.Future[Released]:
        """The relay, at the tip with nothing due, waits here; the future resolves when it
        must step by itself (None) or back off (the error)."""
        waiter = self._parked.get(relay)
        if waiter is None or waiter.done():
            waiter = asyncio.get_running_loop().create_future()
            self._parked[relay] = waiter
        return waiter

    def forget(self, relay: WorkerRelay) -> None:
        """The relay is no longer parked (it was released, stopped or cancelled)."""
        self._parked.pop(relay, None)
        self._feeding.discard(relay)

    def release(self, relay: WorkerRelay, why: Released = None) -> None:
        waiter = self._parked.pop(relay, None)
        self._feeding.discard(relay)
        if waiter is not None and not waiter.done():
            waiter.set_result(why)

    def release_all(self) -> None:
        for relay in list(self._parked):
            self.release(relay)

    @property
    def parked(self) -> int:
        return len(self._parked)

    async def run(self, stop: StopEvent) -> None:
        """Until ``stop``: each new finalized block is fed to the parked relays; when none
        comes for ``idle_seconds``, relays with a duty due (the slow ``GetInfo``) are
        released. Survives any error (the relays fall back to stepping by themselves)."""
        seen = -1
        try:
            while not stop.is_set():
                try:
                    await wait_for_block_or_stop(self.source, seen + 1, stop, self._idle_seconds)
                    if stop.is_set():
                        break
                    head = await self.source.finalized_number()
                except Exception as exc:  # the node: relays find out themselves
                    _log.debug("tip feeder: %s", exc)
                    self._release_due()
                    continue
                try:
                    if head > seen:
                        seen = head
                        self._feed_parked()
                    self._release_due()
                except Exception:  # a bug: never the end of the feeder, nor a relay stuck
                    _log.exception("tip feeder failed; its relays step by themselves")
                    self._abort_in_flight()
                    self.release_all()
        finally:
            self._abort_in_flight()
            self.release_all()

    def _feed_parked(self) -> None:
        """Start every idle parked relay on the new head (the ops of the old are stale)."""
        self._ops.clear()
        for relay in list(self._parked):
            if relay in self._feeding:
                continue
            if relay.counters is None:
                self.release(relay)
                continue
            self._feeding.add(relay)
            self._advance(relay)

    def _advance(self, relay: WorkerRelay) -> None:
        """Send the relay its next request, or, at the tip, leave it idle."""
        counters = relay.counters
        if counters is None:  # an answer short of what was sent: the relay asks GetInfo
            self.release(relay)
            return
        key: _OpKey = (counters, relay.options.sync_blocks)
        op = self._ops.get(key)
        if op is not None and op.done():
            self._with_op(relay, op)
            return
        # Relays waiting for an op of an older head get the one that is ready first: a
        # request built at an older head is still right, only shorter.
        self._waiting_op.setdefault(key, []).append(relay)
        if op is None:
            op = self._ops[key] = asyncio.ensure_future(relay.next_op(counters))

            def ready(done: asyncio.Future[SyncOp | None], key: _OpKey = key) -> None:
                self._op_ready(key, done)

            op.add_done_callback(ready)

    def _op_ready(self, key: _OpKey, op: asyncio.Future[SyncOp | None]) -> None:
        waiting = self._waiting_op.pop(key, [])
        try:
            for relay in waiting:
                if relay in self._feeding:
                    self._with_op(relay, op)
            self._pump()
        except Exception as exc:  # a bug: those relays step by themselves, with its trace
            _log.exception("tip feeder failed on an op; its relays step by themselves")
            for relay in waiting:
                self.release(relay, exc)

    def _with_op(self, relay: WorkerRelay, op: asyncio.Future[SyncOp | None]) -> None:
        if op.cancelled():
            self.release(relay)
            return
        error = op.exception()
        if error is not None:
            self.release(relay, error)
            return
        sync_op = op.result()
        if sync_op is None:  # at the tip: a duty due now, or idle until the next block
            if relay.wants_step():
                self.release(relay)
            else:
                self._feeding.discard(relay)
            return
        client = cast(FeedableClient, relay.client)
        encoded = client.encode_shared(sync_op.method, sync_op.payload, sync_op.request)
        self._queue.append((relay, sync_op, encoded))
        self._pump()

    def _pump(self) -> None:
        while self._queue and len(self._in_flight) < self._window:
            relay, op, encoded = self._queue.popleft()
            if relay not in self._feeding or relay in self._sending:
                continue
            client = cast(FeedableClient, relay.client)
            request = _Request(relay, self._clock())
            self._in_flight.add(request)
            self._sending[relay] = request

            def answered(
                answer: SyncedTo | HeadersSyncedTo | Exception,
                request: _Request = request,
                op: SyncOp = op,
            ) -> None:
                self._answered(request, op, answer)

            abort = client.call_soon(op.method, encoded, op.answer_type, answered)
            if abort is None:  # not sent this way after all: the relay steps by itself
                self._done(request)
                self.release(relay)
                continue
            request.abort = abort
            self.requests += 1
        if self._in_flight and self._sweeper is None:
            loop = asyncio.get_running_loop()
            self._sweeper = loop.call_later(_SWEEP_SECONDS, self._sweep)

    def _done(self, request: _Request) -> bool:
        """Forget a finished request; whether it is the relay's current one (a relay
        released and parked again while an old request was in flight ignores its answer)."""
        self._in_flight.discard(request)
        current = self._sending.get(request.relay) is request
        if current:
            del self._sending[request.relay]
        return current

    def _answered(
        self, request: _Request, op: SyncOp, answer: SyncedTo | HeadersSyncedTo | Exception
    ) -> None:
        relay = request.relay
        try:
            if self._done(request) and relay in self._feeding:
                if isinstance(answer, Exception):
                    relay.forget_counters()  # whatever happened, the relay asks the pRuntime
                    self.release(relay, answer)
                else:
                    synced = answer.synced_to if isinstance(answer, SyncedTo) else answer
                    relay.apply_answer(op, synced)
                    self._advance(relay)
            self._pump()
        except Exception as exc:  # a bug: this relay steps by itself, with its trace
            _log.exception("tip feeder failed on an answer of %s", relay.name)
            relay.forget_counters()
            self.release(relay, exc)

    def _sweep(self) -> None:
        """Abort requests past the timeout (their answer becomes an error)."""
        self._sweeper = None
        deadline = self._clock() - self._timeout
        for request in [r for r in self._in_flight if r.started <= deadline]:
            request.abort()
        if self._in_flight:
            self._sweeper = asyncio.get_running_loop().call_later(_SWEEP_SECONDS, self._sweep)

    def _abort_in_flight(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for request in list(self._in_flight):
            with contextlib.suppress(Exception):
                request.abort()
        self._queue.clear()

    @property
    def busy(self) -> bool:
        """Requests queued, in flight or waiting for their op."""
        return bool(self._queue or self._in_flight or self._waiting_op)

    def _release_due(self) -> None:
        """Relays idle at the tip with a duty due after this block (or this long)."""
        for relay in [r for r in self._parked if r not in self._feeding]:
            if relay.wants_step():
                self.release(relay)


def _no_abort() -> None:
    return None


class _Request:
    """One request the feeder has in flight."""

    __slots__ = ("abort", "relay", "started")

    def __init__(self, relay: WorkerRelay, started: float) -> None:
        self.relay = relay
        self.started = started
        self.abort: Callable[[], None] = _no_abort
