"""Starts, stops and watches the relays of one process.

The planner decides which workers need a relay (START_RELAY / STOP_RELAY); the
supervisor makes the set of running relays match, each in its own task sharing one
``RelaySource`` and one pRuntime transport, or, for workers whose inventory names an
external relay command, one supervised process each (``relay.external``). It reports
each relay's condition back to observation (``model.observed.RelayStatus``, plus a
line of detail) so a stalled, failing or restarting relay is visible in plans, status
and the TUI rather than silent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from poolkeeper.chain.relay_source import RelaySource
from poolkeeper.model.observed import Observed, RelayStatus
from poolkeeper.model.phase import is_synced
from poolkeeper.pruntime import PRuntimeTransport
from poolkeeper.relay.external import ExternalRelay, ExternalRelayOptions
from poolkeeper.relay.tip import TipFeeder
from poolkeeper.relay.worker import (
    AT_TIP_WAKE_SECONDS,
    RelayCondition,
    RelayOptions,
    RelayStop,
    StopEvent,
    Submit,
    WorkerRelay,
)

AnyRelayOptions = RelayOptions | ExternalRelayOptions
"""In-process relay options, or how to run an external relay process."""


@dataclass
class _Running:
    relay: WorkerRelay | ExternalRelay
    stop: StopEvent
    task: asyncio.Task[None]
    endpoint: str


class RelaySupervisor:
    """Keeps one ``WorkerRelay`` task per wanted worker."""

    def __init__(
        self,
        source: RelaySource,
        transport: PRuntimeTransport,
        submit_for: Callable[[str], Submit | None],
        *,
        idle_seconds: float = AT_TIP_WAKE_SECONDS,
        in_flight: Callable[[str], bool] | None = None,
        tip_feeder: bool = True,
    ) -> None:
        self.source = source
        self.transport = transport
        self._use_feeder = tip_feeder
        self.feeder: TipFeeder | None = None
        """Feeds the relays waiting at the tip (started with the first relay)."""
        self._feeder_stop = asyncio.Event()
        self._feeder_task: asyncio.Task[None] | None = None
        self._submit_for = submit_for
        self._in_flight = in_flight
        self._idle = idle_seconds
        self._running: dict[str, _Running] = {}
        self._stopping: dict[str, asyncio.Task[None]] = {}
        """Relays told to stop that have not ended yet (a process may take seconds)."""

    def reconcile(self, wanted: Mapping[str, tuple[str, AnyRelayOptions]]) -> None:
        """Run exactly the relays in ``wanted`` (worker name → (endpoint, options))."""
        for name in sorted(set(self._running) - set(wanted)):
            self._stop(name)
        for name, (endpoint, options) in sorted(wanted.items()):
            current = self._running.get(name)
            if current is not None and (
                current.endpoint != endpoint
                or current.task.done()
                or _needs_restart(current.relay, options)
            ):
                self._stop(name)
                current = None
            if current is None:
                self._start(name, endpoint, options)
            elif isinstance(current.relay, WorkerRelay) and isinstance(options, RelayOptions):
                current.relay.options = options

    def _start(self, name: str, endpoint: str, options: AnyRelayOptions) -> None:
        relay: WorkerRelay | ExternalRelay
        if isinstance(options, ExternalRelayOptions):
            # Its predecessor's process (same log, same key file) must be gone first.
            relay = ExternalRelay(name, options, after=self._stopping.get(name))
        else:
            relay = WorkerRelay(
                name,
                self.transport.client(endpoint),
                self.source,
                options,
                self._submit_for(name),
                in_flight=self._in_flight,
                feeder=self._tip_feeder(),
            )
        stop = RelayStop()
        task = asyncio.create_task(relay.run(stop, idle_seconds=self._idle), name=f"relay:{name}")
        self._running[name] = _Running(relay, stop, task, endpoint)

    def _tip_feeder(self) -> TipFeeder | None:
        if not self._use_feeder:
            return None
        if self.feeder is None:
            self.feeder = TipFeeder(
                self.source,
                timeout=self.transport.timeout,
                window=self.transport.max_in_flight,
                idle_seconds=self._idle,
            )
        if self._feeder_task is None or self._feeder_task.done():
            self._feeder_stop.clear()
            self._feeder_task = asyncio.create_task(
                self.feeder.run(self._feeder_stop), name="relay:tip-feeder"
            )
        return self.feeder

    def _stop(self, name: str) -> None:
        running = self._running.pop(name)
        running.stop.set()
        if self.feeder is not None and isinstance(running.relay, WorkerRelay):
            self.feeder.release(running.relay)
        # Kept until it has ended: an external process must be gone before poolkeeper is.
        self._stopping[name] = running.task

        def forget(task: asyncio.Task[None]) -> None:
            if self._stopping.get(name) is task:
                del self._stopping[name]

        running.task.add_done_callback(forget)

    def relay(self, name: str) -> WorkerRelay | None:
        running = self._running.get(name)
        return running.relay if running and isinstance(running.relay, WorkerRelay) else None

    def external(self, name: str) -> ExternalRelay | None:
        running = self._running.get(name)
        return running.relay if running and isinstance(running.relay, ExternalRelay) else None

    def note_observation(self, observed: Observed) -> None:
        """Let external relays judge their progress from the pRuntimes just observed (an
        in-process relay sees its pRuntime's counters itself, and learns of pending
        egress here without asking again)."""
        for running in self._running.values():
            seen = observed.pruntimes.get(running.endpoint)
            info = seen.info if seen else None
            if not isinstance(running.relay, ExternalRelay):
                if info is not None:
                    running.relay.note_observed(
                        initialized=info.initialized,
                        registered=info.registered,
                        blocknum=info.blocknum,
                        pending_messages=info.pending_messages,
                    )
                continue
            counters = (
                (info.headernum, info.para_headernum, info.blocknum)
                if info is not None and info.initialized
                else None
            )
            running.relay.note_progress(counters, behind=not is_synced(seen, observed.head))

    def statuses(self) -> dict[str, RelayStatus]:
        """Each running relay's status in the model's terms."""
        out: dict[str, RelayStatus] = {}
        for name, running in self._running.items():
            if isinstance(running.relay, ExternalRelay):
                out[name] = running.relay.model_status()
                continue
            condition = running.relay.status.condition
            if condition is RelayCondition.STALLED:
                out[name] = RelayStatus.STALLED
            elif condition is RelayCondition.BACKING_OFF:
                out[name] = RelayStatus.BACKING_OFF
            else:
                out[name] = RelayStatus.RUNNING
        return out

    def details(self) -> dict[str, str]:
        """One line per relay saying what it is doing (for status and the TUI)."""
        out: dict[str, str] = {}
        for name, running in self._running.items():
            if isinstance(running.relay, ExternalRelay):
                out[name] = running.relay.status.describe()
                continue
            status = running.relay.status
            text = f"{status.condition.value}, pRuntime at #{status.blocknum}"
            if status.last_error:
                text += f"; last error: {status.last_error}"
            out[name] = text
        return out

    async def stop_all(self) -> None:
        running = list(self._running.values())
        self._running.clear()
        for r in running:
            r.stop.set()
        self._feeder_stop.set()
        if self.feeder is not None:
            self.feeder.release_all()
        tasks = [r.task for r in running] + list(self._stopping.values())
        if self._feeder_task is not None:
            tasks.append(self._feeder_task)
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 15)


def _needs_restart(relay: WorkerRelay | ExternalRelay, options: AnyRelayOptions) -> bool:
    """A change of kind, or of how an external process is run."""
    if isinstance(relay, ExternalRelay):
        return not isinstance(options, ExternalRelayOptions) or relay.options != options
    return isinstance(options, ExternalRelayOptions)
