"""Mask every known secret in log records, in one place.

Secret types keep values out of ``repr``; this catches the rest: a value that was
revealed and then formatted into a message, an exception text, a traceback. Every
``Secret`` and every derived private key registers itself here when it is created,
and ``install_log_redaction`` makes each log record pass through ``redact``.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import Any

MASK = "***"
_MIN_LENGTH = 8


class _Registry:
    """The process-wide set of secret patterns and the one regex that matches them all."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.patterns: set[str] = set()
        self.compiled: re.Pattern[str] | None = None
        self.factory_installed = False

    def add(self, pattern: str) -> None:
        with self.lock:
            if pattern in self.patterns:
                return
            self.patterns.add(pattern)
            # Longest first, so a registered mnemonic wins over one of its parts.
            ordered = sorted(self.patterns, key=len, reverse=True)
            self.compiled = re.compile("|".join(f"(?:{p})" for p in ordered), re.IGNORECASE)


_registry = _Registry()


def register_secret(value: str) -> None:
    """Remember ``value`` so that ``redact`` masks it from now on.

    Words separated by whitespace match with any whitespace in between; hex strings
    match in either case, with or without ``0x``.
    """
    words = value.split()
    if len("".join(words)) < _MIN_LENGTH:
        return
    if len(words) > 1:
        pattern = r"\s+".join(re.escape(w) for w in words)
    elif re.fullmatch(r"(0x)?[0-9a-fA-F]+", words[0]):
        pattern = "(?:0x)?" + words[0].removeprefix("0x").lower()
    else:
        pattern = re.escape(words[0])
    _registry.add(pattern)


def register_secret_bytes(value: bytes) -> None:
    """Register the hex form of secret bytes (seeds, private keys)."""
    register_secret(value.hex())


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    compiled = _registry.compiled
    if compiled is None or not text:
        return text
    return compiled.sub(MASK, text)


class RedactingFilter(logging.Filter):
    """A logging filter that rewrites a record's message and exception text through ``redact``.

    Attach it to a handler (filters on a logger do not see records from child loggers),
    or call ``install_log_redaction`` to cover every record of the process.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_record(record)
        return True


def _redact_record(record: logging.LogRecord) -> None:
    """Rewrite ``record`` in place where it shows a secret; leave clean records untouched."""
    if _registry.compiled is None or getattr(record, "_poolkeeper_redacted", False):
        return
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: keep what logging would show, masked
        message = f"{record.msg!s} {record.args!r}"
    masked = redact(message)
    if masked != message:
        record.msg = masked
        record.args = None
    if record.exc_info and not record.exc_text:
        text = logging.Formatter().formatException(record.exc_info)
        masked = redact(text)
        if masked != text:
            record.exc_text = masked
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    record._poolkeeper_redacted = True


def install_log_redaction() -> None:
    """Make every log record created in this process pass through ``redact`` (idempotent).

    Wraps the log-record factory, so handlers added later (pytest, rich, JSON
    loggers) are covered as well.
    """
    with _registry.lock:
        if _registry.factory_installed:
            return
        previous: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            _redact_record(record)
            return record

        logging.setLogRecordFactory(factory)
        _registry.factory_installed = True
