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
_HEX_KEY = 16
"""Hex secrets are found by their first 16 hex digits: one dict lookup per position."""
_HEX_RUN = re.compile(rf"[0-9a-fA-F]{{{_HEX_KEY},}}")
_HEX = re.compile(r"(0x)?[0-9a-fA-F]+")


class _Registry:
    """Every registered secret, kept in the form that finds it fastest.

    Hex secrets (seeds, private keys: the many) sit in a dict keyed by their first
    digits, so a log line full of block hashes costs a scan of its hex runs, not one
    regex alternative per secret. Word sequences and other tokens (the few: one per
    mnemonic) form one regex.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.hex_by_key: dict[str, set[str]] = {}
        self.patterns: set[str] = set()
        self.compiled: re.Pattern[str] | None = None
        self.factory_installed = False

    @property
    def empty(self) -> bool:
        return self.compiled is None and not self.hex_by_key

    def add_hex(self, digits: str) -> None:
        with self.lock:
            self.hex_by_key.setdefault(digits[:_HEX_KEY], set()).add(digits)

    def add_pattern(self, pattern: str) -> None:
        with self.lock:
            if pattern in self.patterns:
                return
            self.patterns.add(pattern)
            # Longest first, so a registered mnemonic wins over one of its parts.
            ordered = sorted(self.patterns, key=len, reverse=True)
            self.compiled = re.compile("|".join(f"(?:{p})" for p in ordered), re.IGNORECASE)

    def hex_spans(self, text: str) -> list[tuple[int, int]]:
        spans: list[tuple[int, int]] = []
        if not self.hex_by_key:
            return spans
        for run in _HEX_RUN.finditer(text):
            digits = run.group().lower()
            i = 0
            while i + _HEX_KEY <= len(digits):
                hit = 0
                for secret in self.hex_by_key.get(digits[i : i + _HEX_KEY], ()):
                    if digits.startswith(secret, i):
                        hit = max(hit, len(secret))
                if hit:
                    spans.append((run.start() + i, run.start() + i + hit))
                    i += hit
                else:
                    i += 1
        return spans


_registry = _Registry()


def register_secret(value: str) -> None:
    """Remember ``value`` so that ``redact`` masks it from now on.

    Words separated by whitespace match with any whitespace in between; hex strings
    match in either case, with or without ``0x``.
    """
    words = value.split()
    if len("".join(words)) < _MIN_LENGTH:
        return
    if len(words) == 1 and _HEX.fullmatch(words[0]):
        digits = words[0].removeprefix("0x").lower()
        if len(digits) >= _HEX_KEY:
            _registry.add_hex(digits)
            return
    _registry.add_pattern(r"\s+".join(re.escape(w) for w in words))


def register_secret_bytes(value: bytes) -> None:
    """Register the hex form of secret bytes (seeds, private keys)."""
    register_secret(value.hex())


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    if not text or _registry.empty:
        return text
    spans = _registry.hex_spans(text)
    if spans:
        parts = []
        last = 0
        for start, end in spans:
            parts.append(text[last:start])
            parts.append(MASK)
            last = end
        parts.append(text[last:])
        text = "".join(parts)
    compiled = _registry.compiled
    return compiled.sub(MASK, text) if compiled is not None else text


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
    if _registry.empty or getattr(record, "_poolkeeper_redacted", False):
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
