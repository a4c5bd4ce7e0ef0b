"""The audit log: one JSON line per settled extrinsic, for humans asking "what did it do?".

The journal (SQLite) exists for crash safety and is pruned of meaning once settled; an
operator months later wants a plain, append-only record of every extrinsic poolkeeper
sent: who signed, which nonce and hash, which calls for which actions, workers and
pools, the block, each item's result and the fee paid. JSON lines under the state
directory (``audit.jsonl``, mode 0600) are greppable, survive upgrades and are read
back by ``poolkeeper history``. Nothing secret is written: extrinsics are public once
sent.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from poolkeeper.model.amounts import format_pha

AUDIT_FILE = "audit.jsonl"
AUDIT_FORMAT_VERSION = 1


@dataclass(frozen=True)
class AuditCall:
    """One call of an extrinsic, with the plan action it carried out and its result."""

    action: str
    call: str | None = None
    """``Pallet.call``; None when unknown (an extrinsic resolved from the journal)."""
    worker: str | None = None
    pool: str | None = None
    ok: bool = False
    error: str | None = None


@dataclass(frozen=True)
class AuditEntry:
    """One settled extrinsic."""

    extrinsic_hash: str
    signer_address: str
    nonce: int
    status: str
    calls: tuple[AuditCall, ...]
    signer_name: str | None = None
    block_number: int | None = None
    block_hash: str | None = None
    fee: int | None = None
    fee_estimated: bool = False
    """True when the chain reported no fee event and ``fee`` is the pre-send estimate."""
    error: str | None = None
    ts: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_json(self) -> dict[str, Any]:
        return {
            "v": AUDIT_FORMAT_VERSION,
            "ts": self.ts.isoformat(),
            "signer": {"name": self.signer_name, "address": self.signer_address},
            "nonce": self.nonce,
            "hash": self.extrinsic_hash,
            "status": self.status,
            "block": {"number": self.block_number, "hash": self.block_hash},
            "calls": [
                {
                    "call": c.call,
                    "action": c.action,
                    "worker": c.worker,
                    "pool": c.pool,
                    "ok": c.ok,
                    "error": c.error,
                }
                for c in self.calls
            ],
            "fee": None
            if self.fee is None
            else {"plancks": self.fee, "estimated": self.fee_estimated},
            "error": self.error,
        }


class AuditLog:
    """Appends entries to ``<state_dir>/audit.jsonl`` (created 0600, never rewritten)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def record(self, entry: AuditEntry) -> None:
        line = json.dumps(entry.to_json(), sort_keys=True, separators=(",", ":")) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)


@dataclass(frozen=True)
class AuditRead:
    """What was read back: the entries, and a warning per damaged line (file:line)."""

    entries: list[dict[str, Any]]
    warnings: list[str]


def read_audit(path: Path) -> AuditRead:
    """Every well-formed entry of the log, in order; damaged lines (a crash mid-write
    leaves a torn last line) are skipped with a warning naming ``file:line``."""
    entries: list[dict[str, Any]] = []
    warnings: list[str] = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            text = raw.strip()
            if not text:
                continue
            try:
                entry = json.loads(text)
            except ValueError:
                entry = None
            if not isinstance(entry, dict) or not isinstance(entry.get("ts"), str):
                warnings.append(f"{path}:{number}: damaged line ignored")
                continue
            entries.append(entry)
    return AuditRead(entries, warnings)


def entry_time(entry: dict[str, Any]) -> datetime | None:
    try:
        ts = datetime.fromisoformat(str(entry["ts"]))
    except (KeyError, ValueError):
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def select(
    entries: Sequence[dict[str, Any]],
    *,
    since: datetime | None = None,
    worker: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Entries at or after ``since`` that touched ``worker`` (when given)."""
    for entry in entries:
        if since is not None:
            ts = entry_time(entry)
            if ts is None or ts < since:
                continue
        if worker is not None:
            calls = entry.get("calls") or []
            if not any(isinstance(c, dict) and c.get("worker") == worker for c in calls):
                continue
        yield entry


def read_selected(
    path: Path,
    *,
    since: datetime | None = None,
    worker: str | None = None,
    last: int | None = None,
) -> AuditRead:
    """The entries of the log at ``path`` at or after ``since`` that touched ``worker``
    (the last ``last`` of them when given), oldest first; a log not written yet is empty.
    ``poolkeeper history`` and the TUI's drill-down read the log through this."""
    if not path.exists():
        return AuditRead([], [])
    read = read_audit(path)
    entries = list(select(read.entries, since=since, worker=worker))
    if last is not None:
        entries = entries[-last:] if last > 0 else []
    return AuditRead(entries, read.warnings)


def render_history(entries: list[dict[str, Any]], worker: str | None = None) -> str:
    """One block per extrinsic; with ``worker``, only that worker's calls are listed."""
    if not entries:
        return "No extrinsics recorded.\n"
    out: list[str] = []
    for e in entries:
        signer = e.get("signer") or {}
        block = e.get("block") or {}
        fee = e.get("fee")
        fee_text = "-"
        if isinstance(fee, dict) and fee.get("plancks") is not None:
            fee_text = format_pha(int(fee["plancks"])) + (
                " (estimated)" if fee.get("estimated") else ""
            )
        where = f"#{block['number']}" if block.get("number") is not None else "no block"
        name = signer.get("name") or signer.get("address")
        out.append(
            f"{e.get('ts', '?')}  {e.get('status', '?')}  {where}  {e.get('hash', '?')}\n"
            f"  signer {name} ({signer.get('address')}) nonce {e.get('nonce')}  fee {fee_text}"
        )
        calls = [c for c in e.get("calls") or [] if isinstance(c, dict)]
        shown = [c for c in calls if worker is None or c.get("worker") == worker]
        for c in shown:
            verdict = "ok" if c.get("ok") else f"FAILED: {c.get('error')}"
            out.append(f"  - {c.get('call') or '?'}  {c.get('action')}  {verdict}")
        if len(shown) < len(calls):
            out.append(f"  (and {len(calls) - len(shown)} call(s) for other workers)")
        if e.get("error"):
            out.append(f"  error: {e['error']}")
    return "\n".join(out) + "\n"
