"""What the live drill-down adds to a frame: condition history, extrinsics, relay output.

A frame says how a worker stands now; an operator drilling into one also asks "since
when, and what happened before?". This keeps, across passes, the condition transitions
the TUI has seen (the loop's conditions when it gives them, else derived here for the
worker being looked at), and reads the worker's extrinsics from the audit log (through
``poolkeeper.apply.audit``, as ``poolkeeper history --worker`` does) and the tail of its
external relay's log. Files are read again only when they changed (size and mtime).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from poolkeeper.apply.audit import AUDIT_FILE, read_selected, render_history
from poolkeeper.model.conditions import Condition, Conditions, derive_conditions
from poolkeeper_tui._data import Frame

HISTORY_PER_WORKER = 20
"""Transitions kept per worker (the oldest are dropped)."""
AUDIT_ENTRIES = 10
"""Extrinsics shown per worker (the latest)."""
RELAY_TAIL_LINES = 12
RELAY_TAIL_BYTES = 16_384
"""How much of the end of a relay's log is read (never the whole file)."""


@dataclass(frozen=True, slots=True)
class Transition:
    """A condition as first seen with this status, reason and message."""

    type: str
    status: str
    reason: str
    message: str
    last_transition: datetime
    severity: str | None


class ConditionHistory:
    """The conditions seen per worker, and the transitions between them, across passes."""

    def __init__(self, per_worker: int = HISTORY_PER_WORKER) -> None:
        self._per_worker = per_worker
        self._last: dict[str, tuple[Condition, ...]] = {}
        self._changes: dict[str, deque[Transition]] = {}
        self._first: dict[str, tuple[Condition, ...]] = {}
        """The conditions of each worker when first seen (its first transitions)."""
        self._derived: dict[str, Conditions] = {}
        """Per worker, conditions derived here (sources that give none), kept so the
        next derivation keeps their transition times."""

    def note(self, conditions: Conditions, workers: Iterable[str] | None = None) -> None:
        """Record what changed since the last conditions seen (of ``workers``, or all)."""
        by_worker = conditions.workers
        names = by_worker if workers is None else workers
        last = self._last
        for name in names:
            now = by_worker.get(name)
            if now is None:
                continue
            before = last.get(name)
            if before is None:  # first sight: kept as is, made transitions only if asked
                last[name] = self._first[name] = now
                continue
            if before == now:  # unchanged conditions are the same objects: a C-level compare
                continue
            last[name] = now
            seen = {c.type: c for c in before}
            for condition in now:
                old = seen.get(condition.type)
                if old is not None and (
                    old.status,
                    old.reason,
                    old.message,
                    old.severity,
                ) == (condition.status, condition.reason, condition.message, condition.severity):
                    continue
                changes = self._changes.get(name)
                if changes is None:
                    changes = self._changes[name] = deque(maxlen=self._per_worker)
                changes.append(_transition(condition))

    def derive(self, frame: Frame, name: str, now: datetime) -> None:
        """Derive (and note) ``name``'s conditions from the frame, for sources that give
        none: one worker only (all 10,000 would cost a tenth of a second per pass)."""
        spec = frame.desired.workers_by_name.get(name)
        if spec is None:
            return
        one = frame.desired.model_copy(update={"workers": (spec,)})
        derived = derive_conditions(one, frame.observed, self._derived.get(name), now)
        self._derived[name] = derived
        self.note(derived, [name])

    def current(self, name: str) -> tuple[Condition, ...]:
        return self._last.get(name, ())

    def transitions(self, name: str) -> list[Transition]:
        """Oldest first: the conditions first seen, then each change (the last
        ``per_worker`` changes)."""
        first = [_transition(c) for c in self._first.get(name, ())]
        return first + list(self._changes.get(name, ()))


def _transition(condition: Condition) -> Transition:
    return Transition(
        condition.type,
        str(condition.status),  # a StrEnum's value, or the text of one a newer loop sent
        str(condition.reason),
        condition.message,
        condition.last_transition,
        condition.severity,
    )


class _Cached:
    """A file's derived text, read again only when its size or mtime changed."""

    def __init__(self) -> None:
        self._seen: dict[Path, tuple[tuple[int, int], list[str]]] = {}

    def stamp(self, path: Path) -> tuple[int, int] | None:
        try:
            stat = os.stat(path)
        except OSError:
            return None
        return stat.st_size, stat.st_mtime_ns

    def lookup(self, path: Path, stamp: tuple[int, int]) -> list[str] | None:
        hit = self._seen.get(path)
        return hit[1] if hit is not None and hit[0] == stamp else None

    def keep(self, path: Path, stamp: tuple[int, int], lines: list[str]) -> list[str]:
        self._seen[path] = (stamp, lines)
        return lines


class WorkerFiles:
    """The worker's extrinsics (audit log) and relay log tail under the state dir."""

    def __init__(self, state_dir: Path | None) -> None:
        self.state_dir = state_dir
        self._cache = _Cached()

    def extrinsics(self, worker: str, last: int = AUDIT_ENTRIES) -> list[str]:
        """The worker's latest extrinsics as ``poolkeeper history --worker`` prints them."""
        if self.state_dir is None:
            return ["(state directory unknown: no audit log)"]
        path = self.state_dir / AUDIT_FILE
        stamp = self._cache.stamp(path)
        if stamp is None:
            return [f"no extrinsic recorded ({path} does not exist yet)"]
        key = path.with_name(f"{AUDIT_FILE}#{worker}")
        hit = self._cache.lookup(key, stamp)
        if hit is not None:
            return hit
        try:
            read = read_selected(path, worker=worker, last=last)
        except OSError as error:
            return [f"cannot read {path}: {error.strerror or error}"]
        lines = render_history(read.entries, worker).rstrip("\n").splitlines()
        lines += [f"warning: {w}" for w in read.warnings[-3:]]
        return self._cache.keep(key, stamp, lines)

    def relay_tail(self, worker: str, lines: int = RELAY_TAIL_LINES) -> list[str]:
        """The last lines of the worker's external relay log ([] when there is none)."""
        from poolkeeper.relay.external import relay_log_path

        if self.state_dir is None:
            return []
        path = relay_log_path(self.state_dir, worker)
        stamp = self._cache.stamp(path)
        if stamp is None:
            return []
        hit = self._cache.lookup(path, stamp)
        if hit is not None:
            return hit
        try:
            with path.open("rb") as handle:
                handle.seek(max(0, stamp[0] - RELAY_TAIL_BYTES))
                data = handle.read(RELAY_TAIL_BYTES)
        except OSError as error:
            return [f"cannot read {path}: {error.strerror or error}"]
        text = data.decode("utf-8", errors="replace").splitlines()
        if stamp[0] > RELAY_TAIL_BYTES and text:
            text = text[1:]  # the first line read is cut
        return self._cache.keep(path, stamp, text[-lines:])


def live_detail(
    frame: Frame, name: str, history: ConditionHistory, files: WorkerFiles
) -> RenderableType:
    """The drill-down's live part: conditions now, transitions seen, extrinsics, relay."""
    if frame.conditions is None:
        history.derive(frame, name, frame.observed.read_at)
    out = Table.grid()
    out.add_column()
    now = Table(title="Conditions", title_justify="left", expand=True)
    for column in ("condition", "status", "reason", "since", "message"):
        now.add_column(column)
    for c in history.current(name):
        style = "red" if c.severity == "critical" else "yellow" if c.severity == "warn" else ""
        now.add_row(
            c.type, str(c.status), str(c.reason), _when(c.last_transition), c.message, style=style
        )
    if not history.current(name):
        now.add_row("-", "-", "-", "-", "no conditions yet (not in the inventory, or not observed)")
    out.add_row(now)
    seen = Table(title="Transitions seen (oldest first)", title_justify="left", expand=True)
    for column in ("at", "condition", "status", "reason", "message"):
        seen.add_column(column)
    for t in history.transitions(name):
        seen.add_row(_when(t.last_transition), t.type, t.status, t.reason, t.message)
    out.add_row(seen)
    out.add_row(Text(f"\nExtrinsics (audit log, latest {AUDIT_ENTRIES})", style="bold"))
    out.add_row(Text("\n".join(files.extrinsics(name))))
    out.add_row(Text("\nRelay", style="bold"))
    status = frame.observed.relays.get(name)
    detail = frame.observed.relay_details.get(name)
    relay = f"{status.value if status else 'none run by this process'}" + (
        f": {detail}" if detail else ""
    )
    out.add_row(Text(relay))
    tail = files.relay_tail(name)
    if tail:
        out.add_row(Text(f"log tail ({len(tail)} lines):", style="bold"))
        out.add_row(Text("\n".join(tail)))
    else:
        out.add_row(Text("no relay log file (an in-process relay logs to the event log)"))
    return out


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}Z"
