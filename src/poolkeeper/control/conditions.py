"""Per-worker conditions on the control stream, both ways, at the cost of what changed.

An attached front end needs the loop's conditions (what is wrong by name, and since
when): deriving them again on its side would restart every transition time at the
moment it attached. The rows of the stream carry them as ``status --json`` does
(``conditions``: type → status, reason, message, last_transition, severity). With
10,000 workers a pass, both ends work per worker whose conditions changed only: the
loop keeps unchanged conditions as the same objects (``derive_conditions``), so the
server reuses their documents (the hub then finds the row unchanged and sends nothing),
and the client's view keeps unchanged rows as the same dicts, so it reuses what it parsed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from poolkeeper.model.conditions import (
    Condition,
    Conditions,
    ConditionStatus,
    Reason,
    condition_document,
)

Document = dict[str, dict[str, Any]]
"""One worker's conditions on the wire: by type, ``condition_document`` of each."""


class ConditionDocuments:
    """The loop's side: each worker's conditions as a document, built again only when
    its conditions changed (unchanged ones are the same ``Condition`` objects), and then
    from one document per ``Condition`` object: workers sharing a condition (the
    derivation shares equal ones) share its document, and a condition kept from the last
    pass keeps its document (``Synced`` says the block it is at: it changes every pass
    while the others stay)."""

    def __init__(self) -> None:
        self._kept: dict[str, tuple[tuple[Condition, ...], Document]] = {}
        self._parts: dict[int, tuple[Condition, dict[str, Any]]] = {}
        """``id`` of each condition in use → it (kept alive: the id stays its) and its
        document."""

    def documents(self, conditions: Conditions) -> dict[str, Document]:
        """By worker name; the same dict objects as last time for unchanged workers."""
        kept = self._kept
        old_parts = self._parts
        fresh: dict[str, tuple[tuple[Condition, ...], Document]] = {}
        parts: dict[int, tuple[Condition, dict[str, Any]]] = {}
        out: dict[str, Document] = {}
        for name, now in conditions.workers.items():
            before = kept.get(name)
            # Unchanged conditions are the same objects: compared by identity.
            if before is not None and _same(before[0], now):
                fresh[name] = before
                out[name] = before[1]
                for condition in now:
                    key = id(condition)
                    if key not in parts:
                        parts[key] = old_parts[key]
                continue
            document: Document = {}
            for condition in now:
                key = id(condition)
                part = parts.get(key) or old_parts.get(key)
                if part is None:
                    part = (condition, condition_document(condition))
                parts[key] = part
                document[condition.type] = part[1]
            fresh[name] = (now, document)
            out[name] = document
        self._kept = fresh
        self._parts = parts
        return out


def _same(before: tuple[Condition, ...], now: tuple[Condition, ...]) -> bool:
    """Whether two workers' conditions are the same objects. Not ``==``: a changed
    condition would be compared field by field by pydantic (13 µs a worker, every pass at
    10,000 workers whose Synced moves with the head)."""
    return len(before) == len(now) and all(a is b for a, b in zip(before, now, strict=True))


class ConditionReader:
    """The client's side: the rows' ``conditions`` as ``Conditions``, each worker's
    read again only when its row's document is a new object (the view replaces the
    rows a delta names, and keeps the others), and then each condition parsed again
    only when its document differs (the same ``Condition`` object otherwise)."""

    def __init__(self) -> None:
        self._kept: dict[str, tuple[object, tuple[Condition, ...]]] = {}
        self._parts: dict[str, dict[str, tuple[dict[str, Any], Condition]]] = {}
        self._interned: dict[tuple[object, ...], Condition] = {}
        """Conditions by their values: workers brought up together share most of theirs
        (same reason, message and time), so attaching to 10,000 workers parses each
        distinct condition once."""
        self.changed: list[str] = []
        """Workers whose conditions were read again by the last ``read``."""

    def read(self, rows: Mapping[str, Mapping[str, Any]]) -> Conditions | None:
        """The workers' conditions; None when no row carries any (a loop from before
        conditions were streamed: the front end derives its own then)."""
        kept = self._kept
        fresh: dict[str, tuple[object, tuple[Condition, ...]]] = {}
        workers: dict[str, tuple[Condition, ...]] = {}
        changed: list[str] = []
        for name, row in rows.items():
            document = row.get("conditions")
            if not document or not isinstance(document, dict):
                continue
            before = kept.get(name)
            if before is not None and before[0] is document:
                fresh[name] = before
                workers[name] = before[1]
                continue
            old = self._parts.get(name, {})
            own: dict[str, tuple[dict[str, Any], Condition]] = {}
            for kind, part in document.items():
                if not isinstance(part, dict):
                    continue
                seen = old.get(kind)
                own[kind] = (
                    seen
                    if seen is not None and seen[0] == part
                    else (part, self._parse(kind, part))
                )
            parsed = tuple(c for _, c in own.values())
            self._parts[name] = own
            fresh[name] = (document, parsed)
            workers[name] = parsed
            changed.append(name)
        for name in [n for n in self._parts if n not in fresh]:
            del self._parts[name]
        self._kept = fresh
        self.changed = changed
        if not workers:
            return None
        return Conditions.model_construct(workers=workers)

    def _parse(self, kind: str, document: dict[str, Any]) -> Condition:
        key = (
            kind,
            document.get("status"),
            document.get("reason"),
            document.get("message"),
            document.get("last_transition"),
            document.get("severity"),
        )
        try:
            condition = self._interned.get(key)
        except TypeError:  # a value that is not text (a newer or broken loop): no sharing
            return _condition(kind, document)
        if condition is None:
            if len(self._interned) >= INTERNED:
                self._interned.clear()
            condition = self._interned[key] = _condition(kind, document)
        return condition


INTERNED = 100_000
"""Distinct conditions kept for sharing (then the table starts afresh)."""


def _condition(type_: str, document: Mapping[str, Any]) -> Condition:
    """One condition from its document. A status or reason this version does not name
    (a newer loop's) is kept as its text rather than dropped."""
    status = document.get("status")
    reason = document.get("reason")
    return Condition.model_construct(
        type=type_,
        status=_STATUS.get(status, str(status)),
        reason=_REASON.get(reason, str(reason)),
        message=str(document.get("message") or ""),
        last_transition=_moment(document.get("last_transition")),
        severity=document.get("severity"),
    )


_STATUS: dict[object, Any] = {s.value: s for s in ConditionStatus}
_REASON: dict[object, Any] = {r.value: r for r in Reason}
"""The known names as their enum members (a newer loop's stay text: shown, not dropped)."""


def _moment(value: Any) -> datetime:
    """An ISO 8601 time; ``datetime.min`` when missing or not one (shown, not fatal)."""
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else datetime.min
    except ValueError:
        return datetime.min
