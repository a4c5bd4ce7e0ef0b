"""External relays: an operator-chosen relay program (e.g. an official pherry) per worker.

When the inventory names an external relay command for a worker, poolkeeper does not
relay that worker itself: it runs the command with the worker's values filled in, keeps
it running (a process that exits is restarted after a capped, jittered backoff), stops
it when the plan no longer needs a relay, and appends its output to
``<state_dir>/relays/<worker>.log``. The fee-paying key reaches the process only through
a 0600 file (``{key_file}``) and the ``POOLKEEPER_RELAY_SURI`` environment variable,
never through its command line; the master secret's variable is removed from its
environment, and the key is masked in the captured output.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO

from poolkeeper.backoff import DEFAULT_DELAYS, Backoff
from poolkeeper.errors import SecretError
from poolkeeper.keys import Secret, load_relay_key
from poolkeeper.model.desired import Settings, WorkerSpec
from poolkeeper.model.observed import RelayStatus
from poolkeeper.model.relay_command import KEY_ENV, expand, placeholders_in
from poolkeeper.relay.worker import StopEvent

LOG_ROTATE_BYTES = 8 << 20
"""A log file past this size is moved to ``.1`` when its relay (re)starts."""
_REDACTED = b"[redacted]"
_log = logging.getLogger(__name__)


class ExternalState(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    BACKING_OFF = "backing off"
    FAILED = "not started"
    STOPPED = "stopped"


@dataclass
class ExternalStatus:
    """What an external relay process is doing, for status and the TUI."""

    state: ExternalState = ExternalState.STARTING
    pid: int | None = None
    starts: int = 0
    last_exit: int | None = None
    """Exit code of the last run (negative: killed by that signal)."""
    restart_at: float | None = None
    """``time.monotonic()`` of the next start while backing off."""
    problem: str | None = None
    last_line: str | None = None
    """The last line it printed (secrets masked)."""
    counters: tuple[int, int, int] | None = None
    """The pRuntime's (headernum, para_headernum, blocknum) when last seen to move."""
    unmoved_since: float | None = None
    """``time.monotonic()`` since when the pRuntime, behind the chain, has not moved."""
    stalled_for: float | None = None
    """Seconds without progress once past ``stall_seconds``: the relay is stalled."""

    def describe(self) -> str:
        exited = f"exited with code {self.last_exit}" if self.last_exit is not None else None
        if self.state is ExternalState.RUNNING:
            text = f"external, running (pid {self.pid})"
            if self.starts > 1 and exited:
                text += f", restarted {self.starts - 1}× (last {exited})"
            if self.stalled_for is not None and self.counters is not None:
                text += (
                    f"; stalled: pRuntime at #{self.counters[2]} behind the chain, "
                    f"no progress for {self.stalled_for:.0f}s"
                )
            return text
        if self.state is ExternalState.BACKING_OFF:
            left = max(0.0, (self.restart_at or 0.0) - time.monotonic())
            why = exited or self.problem or "did not start"
            return f"external, {why}; restarting in {left:.0f}s"
        if self.state is ExternalState.FAILED:
            return f"external, not started: {self.problem}"
        return f"external, {self.state.value}"


@dataclass(frozen=True)
class ExternalRelayOptions:
    """How to run one worker's external relay (built by the reconciler from the inventory)."""

    argv: tuple[str, ...]
    log_path: Path
    env: Mapping[str, str] = field(repr=False, default_factory=dict)
    """The whole environment of the process (without the master secret's variable)."""
    key: Secret | None = field(default=None, repr=False)
    key_file: Path | None = None
    """Where ``key`` is written (0600) for the process; removed when the relay stops."""
    backoff: Sequence[float] = DEFAULT_DELAYS
    stable_seconds: float = 60.0
    """A run at least this long resets the backoff."""
    stop_seconds: float = 5.0
    """Grace between SIGTERM and SIGKILL when stopping."""
    stall_seconds: float = 120.0
    """A running process whose pRuntime, behind the chain, has not moved for this long is
    reported stalled (it stays running: the operator, or its own watchdog, decides)."""
    problem: str | None = None
    """Why it cannot be started at all (e.g. a placeholder without a value)."""


class ExternalRelay:
    """Runs, restarts and stops one external relay process."""

    def __init__(
        self,
        name: str,
        options: ExternalRelayOptions,
        *,
        after: asyncio.Future[None] | None = None,
    ) -> None:
        self.name = name
        self.options = options
        self._after = after
        """A previous relay of this worker that is still stopping: start once it ended."""
        self.status = ExternalStatus()
        self._process: asyncio.subprocess.Process | None = None

    def model_status(self) -> RelayStatus:
        if self.status.state is ExternalState.RUNNING and self.status.stalled_for is not None:
            return RelayStatus.STALLED
        if self.status.state in (ExternalState.RUNNING, ExternalState.STARTING):
            return RelayStatus.RUNNING
        if self.status.state is ExternalState.STOPPED:
            return RelayStatus.STOPPED
        return RelayStatus.BACKING_OFF

    def note_progress(
        self, counters: tuple[int, int, int] | None, behind: bool, now: float | None = None
    ) -> None:
        """What observation saw of this worker's pRuntime: its counters (None when
        unreachable or uninitialized) and whether it is behind the chain. A process that
        runs while its pRuntime stays behind without moving is a stall, never silent."""
        status = self.status
        now = time.monotonic() if now is None else now
        if status.state is not ExternalState.RUNNING or not behind:
            status.counters, status.unmoved_since, status.stalled_for = counters, None, None
            return
        if status.unmoved_since is None or counters != status.counters:
            status.counters, status.unmoved_since, status.stalled_for = counters, now, None
            return
        unmoved = now - status.unmoved_since
        status.stalled_for = unmoved if unmoved >= self.options.stall_seconds else None

    async def run(self, stop: StopEvent, *, idle_seconds: float = 1.0) -> None:
        """Keep the process running until ``stop`` is set; then end it (and its group)."""
        options = self.options
        if self._after is not None and not self._after.done():
            await asyncio.wait((self._after,))
        if options.problem is not None:
            self.status.state = ExternalState.FAILED
            self.status.problem = options.problem
            await stop.wait()
            self.status.state = ExternalState.STOPPED
            return
        log = _open_log(options.log_path)
        backoff = Backoff(options.backoff)
        try:
            while not stop.is_set():
                started = time.monotonic()
                code = await self._run_once(stop, log)
                if stop.is_set():
                    break
                self.status.last_exit = code
                if time.monotonic() - started >= options.stable_seconds:
                    backoff.reset()
                delay = backoff.next_delay()
                _log.warning(
                    "external relay %s %s; restarting in %.1fs",
                    self.name,
                    f"exited with code {code}" if code is not None else "did not start",
                    delay,
                    extra={"event": "relay.external_exited", "worker": self.name},
                )
                self.status.state = ExternalState.BACKING_OFF
                self.status.restart_at = time.monotonic() + delay
                await _sleep_or_stop(stop, delay)
        finally:
            try:
                await self._terminate(log)
            finally:
                self._remove_key_file()
                log.close()
                self.status.state = ExternalState.STOPPED
                self.status.pid = None

    async def _run_once(self, stop: StopEvent, log: IO[bytes]) -> int | None:
        """One run: its exit code; ``None`` when it could not start or is being stopped."""
        options = self.options
        self._write_key_file()
        try:
            process = await asyncio.create_subprocess_exec(
                *options.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=dict(options.env),
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        except OSError as exc:
            self.status.problem = f"cannot start {options.argv[0]!r}: {exc.strerror or exc}"
            _log_line(log, f"poolkeeper: {self.status.problem}")
            return None
        self._process = process
        self.status.problem = None
        self.status.starts += 1
        self.status.pid = process.pid
        self.status.state = ExternalState.RUNNING
        _log_line(log, f"poolkeeper: started pid {process.pid} (start {self.status.starts})")
        pump = asyncio.create_task(self._pump(process, log))
        exited = asyncio.create_task(process.wait())
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait((exited, stopping), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not exited.done():
                exited.cancel()
        if not exited.done() or exited.cancelled():
            pump.cancel()
            return None  # stopping: run() ends the process
        code = exited.result()
        self._process = None
        self._kill_group(signal.SIGKILL, process)  # anything it left behind in its group
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(pump, 1.0)  # the rest of its output
        _log_line(log, f"poolkeeper: pid {process.pid} exited with code {code}")
        return code

    async def _pump(self, process: asyncio.subprocess.Process, log: IO[bytes]) -> None:
        assert process.stdout is not None
        secret = self.options.key.reveal().encode() if self.options.key else None
        while line := await process.stdout.readline():
            if secret:
                line = line.replace(secret, _REDACTED)
            log.write(line)
            log.flush()
            text = line.decode("utf-8", "replace").strip()
            if text:
                self.status.last_line = text[:200]

    async def _terminate(self, log: IO[bytes]) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        try:
            if process.returncode is None:
                self._kill_group(signal.SIGTERM, process)
                try:
                    await asyncio.wait_for(process.wait(), self.options.stop_seconds)
                except TimeoutError:
                    self._kill_group(signal.SIGKILL, process)
                    await process.wait()
        except asyncio.CancelledError:
            self._kill_group(signal.SIGKILL, process)
            raise
        finally:
            self._kill_group(signal.SIGKILL, process)
            _log_line(log, f"poolkeeper: stopped pid {process.pid}")

    @staticmethod
    def _kill_group(sig: signal.Signals, process: asyncio.subprocess.Process) -> None:
        # The process leads its own session and group (start_new_session): its pid is the
        # group id, so helpers it started (a shell wrapper's child) are signalled too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)

    def _write_key_file(self) -> None:
        path, key = self.options.key_file, self.options.key
        if path is None or key is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, key.reveal().encode())
        finally:
            os.close(fd)

    def _remove_key_file(self) -> None:
        if self.options.key_file is not None:
            with contextlib.suppress(FileNotFoundError):
                self.options.key_file.unlink()


def _open_log(path: Path) -> IO[bytes]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_size > LOG_ROTATE_BYTES:
            path.replace(path.with_name(path.name + ".1"))
    return open(path, "ab")


def _log_line(log: IO[bytes], text: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    log.write(f"{stamp} {text}\n".encode())
    log.flush()


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if poolkeeper dies without stopping it."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


async def _sleep_or_stop(stop: StopEvent, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


def relay_log_path(state_dir: Path, worker: str) -> Path:
    """Where an external relay's output for ``worker`` is appended (the TUI shows its tail)."""
    return state_dir / "relays" / f"{worker}.log"


@dataclass
class ExternalRelayFactory:
    """Builds each worker's ``ExternalRelayOptions`` from the inventory (per pass)."""

    settings: Settings
    chain_url: str
    state_dir: Path
    inventory_dir: Path | None = None
    environ: Mapping[str, str] | None = None
    _key: Secret | None = field(default=None, init=False, repr=False)
    _key_error: str | None = field(default=None, init=False)

    def options(
        self, worker: WorkerSpec, template: tuple[str, ...], operator: str | None
    ) -> ExternalRelayOptions:
        relays = self.state_dir / "relays"
        work_dir = relays / worker.name
        key_file = relays / f"{worker.name}.key"
        values = {
            "endpoint": worker.endpoint,
            "chain": self.chain_url,
            "relaychain": (self.settings.chain.relaychain_endpoints or (self.chain_url,))[0],
            "worker": worker.name,
            "attestation_provider": self.settings.relay.attestation_provider,
            "sync_blocks": str(self.settings.relay.sync_blocks),
            "key_file": str(key_file),
            "work_dir": str(work_dir),
        }
        if operator is not None:
            values["operator"] = operator
        log_path = relay_log_path(self.state_dir, worker.name)
        backoff = self.settings.relay.external_backoff_seconds or (1.0,)
        key, problem = self._relay_key()
        try:
            argv = expand(template, values)
        except KeyError as exc:
            name = exc.args[0]
            problem = (
                f"{{{name}}} has no value for this worker (is its pool owner's address known?)"
            )
            argv = ()
        except ValueError as exc:
            problem, argv = str(exc), ()
        work_dir.mkdir(parents=True, exist_ok=True)
        return ExternalRelayOptions(
            argv=argv,
            log_path=log_path,
            env=self._environment(key),
            key=key,
            key_file=key_file if key is not None and _uses_key_file(template) else None,
            backoff=tuple(backoff),
            problem=problem,
        )

    def _relay_key(self) -> tuple[Secret | None, str | None]:
        source = self.settings.relay.external_key
        if source is None:
            return None, None
        if self._key is None and self._key_error is None:
            try:
                self._key = load_relay_key(
                    source, base_dir=self.inventory_dir, environ=self.environ
                )
            except SecretError as exc:
                self._key_error = str(exc)
        return self._key, self._key_error

    def _environment(self, key: Secret | None) -> dict[str, str]:
        env = dict(os.environ if self.environ is None else self.environ)
        # The master secret never reaches a relay process, nor the relay key's own variable
        # (the process gets that one under its documented name only).
        for name in (
            self.settings.secrets.env,
            getattr(self.settings.relay.external_key, "env", None),
        ):
            if name:
                env.pop(name, None)
        if key is not None:
            env[KEY_ENV] = key.reveal()
        return env


def _uses_key_file(template: tuple[str, ...]) -> bool:
    return any("key_file" in placeholders_in(argument) for argument in template)
