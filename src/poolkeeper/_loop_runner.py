"""Runs reconcile passes for months: no failure ends it, no pass runs forever.

``poolkeeper run`` is kept up by operators for months, so what drives its passes must
survive anything a pass can throw (a node's JSON-RPC error, a decoding bug, a hung
read) and say so in the logs and in ``LoopHealth`` instead of dying or going quiet.
This is that driver, apart from the reconciler so it can be tested with a fake pass:

- every pass runs as a task with a deadline (``settings.loop.pass_timeout_seconds``);
  past it the pass is cancelled and reported with where it was stuck. A pass that is
  sending extrinsics at its deadline gets up to ``settle_seconds`` more first: a send
  cut off mid-way stays unsettled in the journal until the next start's recovery.
- every failure is logged (a traceback for the unforeseen), counted in ``LoopHealth``
  and followed by a jittered, capped backoff (``Backoff``);
- only ``stop`` (SIGINT/SIGTERM) ends it: the pass under way gets ``shutdown_grace``
  seconds to finish (its extrinsics to settle) before it is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any, TypeVar

from poolkeeper.backoff import Backoff
from poolkeeper.errors import PoolkeeperError, TemporaryError
from poolkeeper.health import LoopHealth
from poolkeeper.model.desired import LoopSettings

R = TypeVar("R")
_log = logging.getLogger("poolkeeper.loop")
_SENDING_PREFIXES = ("Executor.", "TxCollector.")
"""Frames of a pass that is sending extrinsics (given time to settle at its deadline)."""


class PassDeadlineExceeded(TemporaryError):
    """A pass ran past ``settings.loop.pass_timeout_seconds`` and was cancelled."""


def _await_chain(task: asyncio.Task[Any]) -> list[FrameType]:
    """The frames of a pending task from its coroutine down to what it awaits now
    (``Task.get_stack`` stops at the task's own coroutine)."""
    frames: list[FrameType] = []
    current: Any = task.get_coro()
    for _ in range(200):
        frame = getattr(current, "cr_frame", None) or getattr(current, "gi_frame", None)
        if frame is None:
            break
        frames.append(frame)
        current = getattr(current, "cr_await", None) or getattr(current, "gi_yieldfrom", None)
        if current is None:
            break
    return frames


def where_stuck(task: asyncio.Task[Any]) -> str:
    """The innermost awaiting frames of a pending task, as ``function (file:line)``."""
    frames = _await_chain(task)
    if not frames:
        return "unknown"
    names = []
    for frame in frames[-3:]:
        code = frame.f_code
        names.append(f"{code.co_qualname} ({code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno})")
    return " > ".join(names)


def _is_sending(task: asyncio.Task[Any]) -> bool:
    return any(f.f_code.co_qualname.startswith(_SENDING_PREFIXES) for f in _await_chain(task))


def describe_error(exc: BaseException) -> str:
    """One line for logs and conditions: the message of a foreseen error, type and
    message of anything else."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, PoolkeeperError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def bounded(
    make: Callable[[], Awaitable[R]],
    *,
    timeout: float,
    settle_seconds: float,
    stop: asyncio.Event,
    shutdown_grace: float,
) -> R:
    """``await make()`` within ``timeout`` seconds, or until ``stop`` plus
    ``shutdown_grace``. Raises ``PassDeadlineExceeded`` (naming where it hung) or
    ``asyncio.CancelledError`` (stopped) after cancelling it."""
    task: asyncio.Task[R] = asyncio.ensure_future(make())
    stopping = asyncio.ensure_future(stop.wait())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    stop_deadline: float | None = None
    extended = False
    try:
        while True:
            limit = deadline if stop_deadline is None else min(deadline, stop_deadline)
            waiters: set[asyncio.Future[Any]] = {task}
            if stop_deadline is None:
                waiters.add(stopping)
            await asyncio.wait(
                waiters, timeout=max(0.0, limit - loop.time()), return_when=asyncio.FIRST_COMPLETED
            )
            if task.done():
                return task.result()
            if stop_deadline is None and stopping.done():
                stop_deadline = loop.time() + shutdown_grace
                _log.info(
                    "stopping: letting the pass under way finish (up to %.0fs)",
                    shutdown_grace,
                    extra={"event": "loop.stopping"},
                )
                continue
            if stop_deadline is not None and loop.time() >= stop_deadline:
                await _cancel(task)
                raise asyncio.CancelledError("stopped")
            if loop.time() < deadline:
                continue
            if not extended and settle_seconds > 0 and _is_sending(task):
                extended = True
                deadline = loop.time() + settle_seconds
                _log.warning(
                    "pass past its %.0fs deadline while sending extrinsics: letting them "
                    "settle (up to %.0fs more)",
                    timeout,
                    settle_seconds,
                    extra={"event": "pass.deadline_settling"},
                )
                continue
            where = where_stuck(task)
            await _cancel(task)
            raise PassDeadlineExceeded(
                f"pass exceeded its deadline of {timeout:g}s (settings.loop."
                f"pass_timeout_seconds); it was waiting in {where}"
            )
    finally:
        stopping.cancel()
        if not task.done():
            await _cancel(task)


async def _cancel(task: asyncio.Future[Any]) -> None:
    task.cancel()
    with contextlib.suppress(BaseException):  # cancelled: whatever it raised is moot
        await task


async def run_passes(
    one_pass: Callable[[], Awaitable[R]],
    stop: asyncio.Event,
    *,
    health: LoopHealth,
    settings: Callable[[], LoopSettings],
    before_pass: Callable[[], None] | None = None,
    changed: asyncio.Event | None = None,
    on_pass: Callable[[R], None] | None = None,
    on_error: Callable[[Exception, float], None] | None = None,
    shutdown_grace: float = 30.0,
    backoff: Backoff | None = None,
) -> None:
    """Pass after pass until ``stop``: one per ``interval_seconds``, sooner when
    ``changed`` is set (``before_pass`` then reloads). Never raises for a failed pass."""
    backoff = backoff or Backoff(settings().backoff_seconds)
    while not stop.is_set():
        if before_pass is not None:
            try:
                before_pass()
            except Exception:
                _log.exception("reloading the inventory failed", extra={"event": "reload.error"})
        current = settings()
        backoff.delays = current.backoff_seconds
        interval = current.interval_seconds
        started = time.monotonic()
        try:
            result = await bounded(
                one_pass,
                timeout=current.pass_timeout_seconds,
                settle_seconds=current.pass_timeout_seconds,
                stop=stop,
                shutdown_grace=shutdown_grace,
            )
        except asyncio.CancelledError:
            if stop.is_set():
                _log.warning(
                    "the pass under way was cancelled at shutdown; anything it left "
                    "unsettled is resolved from the journal at the next start",
                    extra={"event": "loop.pass_cancelled"},
                )
                return
            raise
        except Exception as exc:
            elapsed = time.monotonic() - started
            delay = backoff.next_delay()
            error = describe_error(exc)
            timed_out = isinstance(exc, PassDeadlineExceeded)
            health.record_failure(error, elapsed, next_try_in=delay, timed_out=timed_out)
            # A foreseen fault (node down, pRuntime busy) is one line; anything else is a
            # bug and gets its traceback. Both are errors: the pass did not happen.
            _log.error(
                "pass failed (%d in a row): %s; next try in %.1fs",
                health.consecutive_failures,
                error,
                delay,
                exc_info=None if isinstance(exc, PoolkeeperError) else exc,
                extra={"event": "pass.timeout" if timed_out else "pass.error"},
            )
            if isinstance(exc, PoolkeeperError):
                _log.debug("traceback of the failed pass", exc_info=exc)
            if on_error is not None:
                _call_hook(on_error, exc, delay)
            interval = delay
        else:
            if health.consecutive_failures:
                _log.info(
                    "pass succeeded again after %d failure(s)",
                    health.consecutive_failures,
                    extra={"event": "pass.recovered"},
                )
            health.record_success(time.monotonic() - started)
            backoff.reset()
            if on_pass is not None:
                _call_hook(on_pass, result)
        await _wait(stop, changed, interval)


def _call_hook(hook: Callable[..., None], *args: object) -> None:
    """A reporting hook that fails is logged; it never ends the loop."""
    try:
        hook(*args)
    except Exception:
        _log.exception("reporting a pass failed", extra={"event": "loop.hook_error"})


async def _wait(stop: asyncio.Event, changed: asyncio.Event | None, seconds: float) -> None:
    waiters = [asyncio.ensure_future(stop.wait())]
    if changed is not None:
        waiters.append(asyncio.ensure_future(changed.wait()))
    _, pending = await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
