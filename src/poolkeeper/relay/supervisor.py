"""Starts, stops and watches the relays of one process.

The planner decides which workers need a relay (START_RELAY / STOP_RELAY); the
supervisor makes the set of running relays match, each in its own task sharing one
``RelaySource`` and one pRuntime transport. It reports each relay's condition back to
observation (``model.observed.RelayStatus``) so a stalled or failing relay is visible
in plans and the TUI rather than silent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from poolkeeper.chain.relay_source import RelaySource
from poolkeeper.model.observed import RelayStatus
from poolkeeper.pruntime import PRuntimeTransport
from poolkeeper.relay.worker import RelayCondition, RelayOptions, Submit, WorkerRelay


@dataclass
class _Running:
    relay: WorkerRelay
    stop: asyncio.Event
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
        idle_seconds: float = 1.0,
    ) -> None:
        self.source = source
        self.transport = transport
        self._submit_for = submit_for
        self._idle = idle_seconds
        self._running: dict[str, _Running] = {}

    def reconcile(self, wanted: Mapping[str, tuple[str, RelayOptions]]) -> None:
        """Run exactly the relays in ``wanted`` (worker name → (endpoint, options))."""
        for name in sorted(set(self._running) - set(wanted)):
            self._stop(name)
        for name, (endpoint, options) in sorted(wanted.items()):
            current = self._running.get(name)
            if current is not None and (current.endpoint != endpoint or current.task.done()):
                self._stop(name)
                current = None
            if current is None:
                self._start(name, endpoint, options)
            else:
                current.relay.options = options

    def _start(self, name: str, endpoint: str, options: RelayOptions) -> None:
        relay = WorkerRelay(
            name, self.transport.client(endpoint), self.source, options, self._submit_for(name)
        )
        stop = asyncio.Event()
        task = asyncio.create_task(relay.run(stop, idle_seconds=self._idle), name=f"relay:{name}")
        self._running[name] = _Running(relay, stop, task, endpoint)

    def _stop(self, name: str) -> None:
        running = self._running.pop(name)
        running.stop.set()

    def relay(self, name: str) -> WorkerRelay | None:
        running = self._running.get(name)
        return running.relay if running else None

    def statuses(self) -> dict[str, RelayStatus]:
        """Each running relay's status in the model's terms."""
        out: dict[str, RelayStatus] = {}
        for name, running in self._running.items():
            condition = running.relay.status.condition
            if condition is RelayCondition.STALLED:
                out[name] = RelayStatus.STALLED
            elif condition is RelayCondition.BACKING_OFF:
                out[name] = RelayStatus.BACKING_OFF
            else:
                out[name] = RelayStatus.RUNNING
        return out

    async def stop_all(self) -> None:
        running = list(self._running.values())
        self._running.clear()
        for r in running:
            r.stop.set()
        for r in running:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(r.task, 10)
