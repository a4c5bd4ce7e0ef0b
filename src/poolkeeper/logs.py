"""The process's log output: timestamps, levels, text or JSON lines, secrets masked.

``run`` and ``relay`` are services: what they report goes through Python ``logging``
so an operator (or journald, Loki, ...) gets one line per event with a time and a
level, as text or as JSON (``--log-format json``: keys ``ts``, ``level``, ``event``,
``message`` and, when known, ``worker``, ``pool``, ``action``, ``extrinsic``,
``alert``). Every handler installed here carries the secret-redaction filter
(``keys._redact``), and the JSON fields given through ``extra`` are masked as well.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from enum import StrEnum
from typing import IO, Any, Literal

from poolkeeper.keys import RedactingFilter, install_log_redaction, redact

LogFormat = Literal["text", "json"]


class LogFormatChoice(StrEnum):
    """``--log-format`` values."""

    TEXT = "text"
    JSON = "json"


FIELDS = ("worker", "pool", "action", "extrinsic", "alert", "severity", "target")
"""``extra`` keys a record may carry, shown in both formats."""
_HANDLER_NAME = "poolkeeper"


def level_for(verbose: int, quiet: int, *, default: int = logging.INFO) -> int:
    """``-v`` lowers the threshold by one level, ``-q`` raises it (within DEBUG..CRITICAL)."""
    levels = [logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL]
    index = levels.index(default) - verbose + quiet
    return levels[max(0, min(len(levels) - 1, index))]


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _event(record: logging.LogRecord) -> str:
    event = getattr(record, "event", None)
    return str(event) if event else record.name.removeprefix("poolkeeper.") or "log"


def _exception_text(formatter: logging.Formatter, record: logging.LogRecord) -> str | None:
    if record.exc_info and not record.exc_text:
        record.exc_text = formatter.formatException(record.exc_info)
    return redact(record.exc_text) if record.exc_text else None


class TextFormatter(logging.Formatter):
    """``2026-01-02T03:04:05.678Z INFO  message [worker=w pool=p]`` (+ traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(
            f"{key}={value}"
            for key in FIELDS
            if key not in ("severity", "target") and (value := getattr(record, key, None))
        )
        line = f"{_timestamp(record)} {record.levelname:<5} {redact(record.getMessage())}"
        if fields:
            line += f" [{redact(fields)}]"
        exc = _exception_text(self, record)
        if exc:
            line += "\n" + exc
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line; a traceback goes into ``exc`` (never a second line)."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "event": _event(record),
            "message": redact(record.getMessage()),
            "logger": record.name,
        }
        for key in FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                document[key] = redact(str(value))
        exc = _exception_text(self, record)
        if exc:
            document["exc"] = exc
        return json.dumps(document, ensure_ascii=False)


def configure_logging(
    log_format: LogFormat = "text",
    level: int = logging.INFO,
    *,
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Send poolkeeper's records (and warnings of libraries) to ``stream`` (stderr).

    Replaces a handler installed by an earlier call, so calling it twice is harmless."""
    install_log_redaction()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    # Libraries speak at WARNING and above; poolkeeper at the chosen level.
    root.setLevel(max(level, logging.WARNING))
    logging.getLogger("poolkeeper").setLevel(level)
    for noisy in ("websockets", "httpx", "httpcore", "watchfiles", "substrateinterface"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    return handler
