"""The pass driver of ``run``: a failing, raising or hanging pass never ends the loop;
it is logged, counted in LoopHealth and backed off; only ``stop`` ends it."""

from __future__ import annotations

import asyncio
import logging

import pytest

from poolkeeper._loop_runner import PassDeadlineExceeded, run_passes
from poolkeeper.backoff import Backoff
from poolkeeper.errors import ChainUnavailable
from poolkeeper.health import LoopHealth
from poolkeeper.model.desired import LoopSettings

FAST = LoopSettings(interval_seconds=0.01, backoff_seconds=(0.01,), pass_timeout_seconds=0.3)


async def _run(passes: list[object], settings: LoopSettings = FAST) -> tuple[LoopHealth, list[str]]:
    """Runs the given pass behaviours in order (an exception is raised, "hang" sleeps
    forever, anything else is returned), then stops."""
    stop = asyncio.Event()
    health = LoopHealth()
    done: list[str] = []
    queue = list(passes)

    async def one_pass() -> str:
        behaviour = queue.pop(0)
        if not queue:
            stop.set()
        if isinstance(behaviour, BaseException):
            raise behaviour
        if behaviour == "hang":
            await asyncio.sleep(3600)
        return str(behaviour)

    await asyncio.wait_for(
        run_passes(
            one_pass,
            stop,
            health=health,
            settings=lambda: settings,
            on_pass=done.append,
            backoff=Backoff((0.01,), jitter=0),
        ),
        10,
    )
    return health, done


async def test_an_unexpected_exception_is_logged_with_traceback_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="poolkeeper")
    health, done = await _run([KeyError("boom"), ValueError("bad reply"), "ok-1", "ok-2"])
    assert done == ["ok-1", "ok-2"]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2
    assert "KeyError: 'boom'" in errors[0].getMessage()
    assert errors[0].exc_info is not None  # the traceback goes with it
    assert "2 in a row" in errors[1].getMessage()
    assert health.failures_total == 2 and health.consecutive_failures == 0
    assert health.healthy and health.last_good_pass_at is not None
    assert any("succeeded again after 2 failure(s)" in r.getMessage() for r in caplog.records)


async def test_a_foreseen_error_is_one_line_and_the_condition_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="poolkeeper")
    health, done = await _run(["ok", ChainUnavailable("node ws://x: connection refused")])
    assert done == ["ok"]
    error = next(r for r in caplog.records if r.levelno == logging.ERROR)
    assert error.exc_info is None and "connection refused" in error.getMessage()
    assert not health.healthy and health.consecutive_failures == 1
    condition = health.as_condition()
    assert condition["status"] == "False" and "connection refused" in str(condition["message"])


async def test_a_hung_pass_hits_its_deadline_names_where_it_hung_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="poolkeeper")
    health, done = await _run(["hang", "ok"])
    assert done == ["ok"]
    assert health.timeouts_total == 1
    error = next(r for r in caplog.records if r.levelno == logging.ERROR)
    assert "exceeded its deadline of 0.3s" in error.getMessage()
    assert "deadline" in error.getMessage() and "one_pass" in error.getMessage()
    assert getattr(error, "event", None) == "pass.timeout"


async def test_stop_lets_the_pass_under_way_finish_within_the_grace() -> None:
    stop = asyncio.Event()
    health = LoopHealth()
    finished: list[str] = []

    async def slow_pass() -> str:
        stop.set()  # a signal arrives while the pass is sending
        await asyncio.sleep(0.1)
        return "settled"

    await run_passes(
        slow_pass,
        stop,
        health=health,
        settings=lambda: FAST,
        on_pass=finished.append,
        shutdown_grace=5,
    )
    assert finished == ["settled"]


async def test_stop_cancels_a_pass_that_outlives_the_grace() -> None:
    stop = asyncio.Event()
    cancelled: list[bool] = []

    async def stuck_pass() -> str:
        stop.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return "never"

    await asyncio.wait_for(
        run_passes(
            stuck_pass,
            stop,
            health=LoopHealth(),
            settings=lambda: LoopSettings(pass_timeout_seconds=60),
            shutdown_grace=0.1,
        ),
        5,
    )
    assert cancelled == [True]


async def test_a_failing_report_hook_does_not_end_the_loop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = asyncio.Event()
    calls: list[int] = []

    async def one_pass() -> int:
        calls.append(1)
        if len(calls) == 3:
            stop.set()
        return len(calls)

    def on_pass(_: int) -> None:
        raise RuntimeError("renderer bug")

    await run_passes(one_pass, stop, health=LoopHealth(), settings=lambda: FAST, on_pass=on_pass)
    assert len(calls) == 3
    assert sum("reporting a pass failed" in r.getMessage() for r in caplog.records) == 3


def test_the_deadline_error_is_temporary() -> None:
    from poolkeeper.errors import TemporaryError

    assert issubclass(PassDeadlineExceeded, TemporaryError)


async def _read_storage() -> None:
    await asyncio.sleep(3600)


async def _observe() -> None:
    await _read_storage()


async def test_the_deadline_error_names_the_innermost_await() -> None:
    stop = asyncio.Event()
    errors: list[Exception] = []

    async def one_pass() -> None:
        if errors:
            stop.set()
            return
        await _observe()

    await asyncio.wait_for(
        run_passes(
            one_pass,
            stop,
            health=LoopHealth(),
            settings=lambda: FAST,
            on_error=lambda exc, _: errors.append(exc),
        ),
        10,
    )
    assert isinstance(errors[0], PassDeadlineExceeded)
    assert "_observe" in str(errors[0]) and "_read_storage" in str(errors[0])


class Executor:
    """Stands for the extrinsic executor: a pass inside it at its deadline is sending."""

    async def execute(self, seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "settled"


async def test_a_pass_sending_extrinsics_at_its_deadline_gets_time_to_settle(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = asyncio.Event()
    done: list[str] = []

    async def one_pass() -> str:
        stop.set()
        return await Executor().execute(0.5)  # past the 0.3 s deadline, within 2 x 0.3 s

    await run_passes(
        one_pass, stop, health=LoopHealth(), settings=lambda: FAST, on_pass=done.append
    )
    assert done == ["settled"]
    assert any("letting them settle" in r.getMessage() for r in caplog.records)
