"""The fees each signer paid recently, read from the audit log, for the funding runway.

The audit log (``audit.jsonl``) is the record of every fee poolkeeper paid; the runway
(``model.runway``, pure) needs the fees of the last ``window_days`` per signer. This
reader follows the log as it grows: each pass reads only the lines appended since the
last one (a long ``run`` never re-reads months of history), keeps the entries of the
window, and hands the sums over in ``Observed.fees_paid``. A torn last line (a crash
mid-write) is left for the next read; a damaged line is skipped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from poolkeeper.apply.audit import entry_time
from poolkeeper.model.observed import FeesPaid, Observed


@dataclass(frozen=True)
class _Fee:
    at: datetime
    address: str
    plancks: int


class FeeHistory:
    """Follows ``path`` (the audit log); ``None``: no record, no runway."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._offset = 0
        self._fees: list[_Fee] = []
        self._first: datetime | None = None

    def note(self, observed: Observed, window_days: float) -> Observed:
        """``observed`` with the fees paid per signer within the window before ``read_at``."""
        if self._path is None or not self._read_new():
            return observed
        start = observed.read_at - timedelta(days=window_days)
        self._fees = [f for f in self._fees if f.at >= start]
        paid: dict[str, FeesPaid] = {}
        for fee in self._fees:
            if fee.at > observed.read_at:
                continue
            before = paid.get(fee.address, FeesPaid())
            paid[fee.address] = FeesPaid(
                plancks=before.plancks + fee.plancks, extrinsics=before.extrinsics + 1
            )
        assert self._first is not None
        since = max(start, self._first)
        return observed.model_copy(update={"fees_paid": paid, "fees_since": since})

    def _read_new(self) -> bool:
        """Read the complete lines appended since the last call; False when no log exists."""
        assert self._path is not None
        try:
            size = self._path.stat().st_size
            if size < self._offset:  # replaced by a shorter file: start again
                self._offset, self._fees, self._first = 0, [], None
            with self._path.open("rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except OSError:
            return self._first is not None
        end = data.rfind(b"\n") + 1
        self._offset += end
        for raw in data[:end].splitlines():
            self._take(raw)
        return self._first is not None or self._offset > 0

    def _take(self, raw: bytes) -> None:
        try:
            entry = json.loads(raw)
        except ValueError:
            return
        if not isinstance(entry, dict):
            return
        at = entry_time(entry)
        if at is None:
            return
        if self._first is None or at < self._first:
            self._first = at
        fee = entry.get("fee")
        signer = entry.get("signer")
        if not isinstance(fee, dict) or not isinstance(signer, dict):
            return
        plancks, address = fee.get("plancks"), signer.get("address")
        if isinstance(plancks, int) and isinstance(address, str):
            self._fees.append(_Fee(at, address, plancks))
