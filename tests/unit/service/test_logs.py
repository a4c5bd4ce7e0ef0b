"""Log output of the services: JSON lines with the documented keys, text with timestamp and
level, secrets masked in messages, fields and tracebacks; alerts logged by name when they
start and when they end."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from poolkeeper.cli._run_events import PassReporter
from poolkeeper.keys import Mnemonic, derive_key
from poolkeeper.logs import configure_logging, level_for
from poolkeeper.model.actions import Alert, Severity
from poolkeeper.notify import alert_key

PHRASE = "bottom drive obey lake curtain smoke basket hold race lonely fit walk"


@pytest.fixture
def captured() -> Iterator[tuple[io.StringIO, logging.Handler]]:
    stream = io.StringIO()
    handler = configure_logging("json", logging.DEBUG, stream=stream)
    try:
        yield stream, handler
    finally:
        logging.getLogger().removeHandler(handler)


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_the_documented_keys(
    captured: tuple[io.StringIO, logging.Handler],
) -> None:
    stream, _ = captured
    log = logging.getLogger("poolkeeper.test")
    log.info(
        "sent %d call(s)",
        2,
        extra={"event": "action.done", "worker": "w1", "pool": "p", "action": "a:1"},
    )
    try:
        raise ValueError("decoding went wrong\nsecond line")
    except ValueError:
        log.exception("pass failed")
    first, second = _lines(stream)
    assert set(first) >= {"ts", "level", "event", "message", "worker", "pool", "action"}
    assert first["event"] == "action.done" and first["level"] == "INFO"
    assert str(first["ts"]).endswith("Z") and first["message"] == "sent 2 call(s)"
    assert second["level"] == "ERROR" and "ValueError" in str(second["exc"])
    assert len(stream.getvalue().splitlines()) == 2  # a traceback never breaks the lines


def test_the_mnemonic_never_reaches_the_output(
    captured: tuple[io.StringIO, logging.Handler],
) -> None:
    stream, _ = captured
    derive_key(Mnemonic(PHRASE), "operator//pool-a")  # registers the phrase for masking
    log = logging.getLogger("poolkeeper.test")
    log.warning("leaked %s", PHRASE, extra={"worker": PHRASE})
    try:
        raise RuntimeError(f"secret in the error: {PHRASE}")
    except RuntimeError:
        log.exception("oops")
    out = stream.getvalue()
    assert PHRASE not in out and "bottom drive obey" not in out
    assert "***" in out


def test_text_format_has_timestamp_level_and_fields() -> None:
    stream = io.StringIO()
    handler = configure_logging("text", logging.INFO, stream=stream)
    try:
        logging.getLogger("poolkeeper.test").warning("hello", extra={"worker": "w9"})
        logging.getLogger("poolkeeper.test").debug("hidden")
    finally:
        logging.getLogger().removeHandler(handler)
    (line,) = stream.getvalue().splitlines()
    stamp, level, *_rest = line.split()
    assert stamp.endswith("Z") and "T" in stamp and level == "WARNING"
    assert line.endswith("hello [worker=w9]")


def test_verbosity_flags_move_the_threshold() -> None:
    assert level_for(0, 0) == logging.INFO
    assert level_for(1, 0) == logging.DEBUG and level_for(5, 0) == logging.DEBUG
    assert level_for(0, 1) == logging.WARNING and level_for(0, 9) == logging.CRITICAL
    assert level_for(1, 0, default=logging.WARNING) == logging.INFO


def test_alerts_are_logged_by_name_when_they_start_and_when_they_end(
    captured: tuple[io.StringIO, logging.Handler],
) -> None:
    stream, _ = captured
    low = Alert(target="account/op", severity=Severity.WARN, message="balance 3 PHA below 20 PHA")
    lower = low.model_copy(update={"message": "balance 2 PHA below 20 PHA"})
    down = Alert(target="worker/w1", severity=Severity.WARN, message="pRuntime unreachable")
    reporter = PassReporter()
    reporter.alerts((low,), now=1.0)
    reporter.alerts((lower, down), now=2.0)  # the same balance alert: nothing new for it
    reporter.alerts((), now=3.0)
    events = [(d["event"], d["alert"]) for d in _lines(stream)]
    assert events == [
        ("alert.start", alert_key(low)),
        ("alert.start", alert_key(down)),
        ("alert.end", alert_key(low)),
        ("alert.end", alert_key(down)),
    ]
    assert _lines(stream)[1]["worker"] == "w1"
