"""Which alerts to announce, and when: debouncing as a pure function of plans and a clock.

Every reconcile pass produces a fresh plan whose alerts describe the world *now*; a
webhook must hear about an alert once when it has stood long enough to matter, never
again while it stands, and once more when it clears. That bookkeeping is kept apart
from HTTP so it can be tested with a clock the test controls.

An alert's identity is its target, severity and message with every number masked:
"balance 3.2 PHA is below the warn threshold 20 PHA" stays the same alert while the
balance moves, but becomes a different one when it turns critical.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from poolkeeper.model.actions import Alert, Severity

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


class EventKind(StrEnum):
    """What a notification says about an alert."""

    ALERT = "alert"
    """The alert has stood for the debounce period: new."""
    RECOVERED = "recovered"
    """An alert announced earlier is gone."""


@dataclass(frozen=True)
class AlertEvent:
    """One notification about one alert."""

    kind: EventKind
    key: str
    target: str
    severity: Severity
    message: str
    """For a recovery: the last message seen while the alert stood."""
    pool: str | None
    since: float
    """Unix seconds when the alert was first seen."""
    at: float
    """Unix seconds of the pass that produced the event."""


def alert_key(alert: Alert) -> str:
    """The identity of an alert across passes (numbers masked)."""
    return f"{alert.target}|{alert.severity.value}|{_NUMBER.sub('#', alert.message)}"


@dataclass
class _Standing:
    alert: Alert
    since: float
    announced: bool


class AlertTracker:
    """Feed it each pass's alerts with the time; it says what to announce."""

    def __init__(self, debounce_seconds: float) -> None:
        if debounce_seconds < 0:
            raise ValueError("debounce_seconds must not be negative")
        self.debounce_seconds = debounce_seconds
        self._standing: dict[str, _Standing] = {}

    def update(self, alerts: Iterable[Alert], now: float) -> list[AlertEvent]:
        """The events due after a pass that saw exactly ``alerts`` at ``now``.

        An alert is announced on the first pass at which it has stood for at least
        ``debounce_seconds``; an alert that clears before that is forgotten silently.
        An announced alert that clears yields one recovery.
        """
        current: dict[str, Alert] = {}
        for alert in alerts:
            current.setdefault(alert_key(alert), alert)
        events: list[AlertEvent] = []
        for key in sorted(set(self._standing) - set(current)):
            gone = self._standing.pop(key)
            if gone.announced:
                events.append(_event(EventKind.RECOVERED, key, gone.alert, gone.since, now))
        for key in sorted(current):
            alert = current[key]
            standing = self._standing.get(key)
            if standing is None:
                standing = self._standing[key] = _Standing(alert, now, announced=False)
            standing.alert = alert
            if not standing.announced and now - standing.since >= self.debounce_seconds:
                standing.announced = True
                events.append(_event(EventKind.ALERT, key, alert, standing.since, now))
        return events

    def unannounce(self, events: Iterable[AlertEvent]) -> None:
        """Undo ``events`` that could not be delivered, so the next pass tries again."""
        for event in events:
            if event.kind is EventKind.ALERT:
                standing = self._standing.get(event.key)
                if standing is not None:
                    standing.announced = False
            elif event.key not in self._standing:
                alert = Alert(
                    target=event.target,
                    severity=event.severity,
                    message=event.message,
                    pool=event.pool,
                )
                # Still announced and now absent: the next update re-emits the recovery.
                self._standing[event.key] = _Standing(alert, event.since, announced=True)

    def state(self) -> dict[str, Any]:
        """JSON-ready state, so a one-shot ``apply`` run from cron does not repeat itself."""
        return {
            "format_version": 1,
            "standing": [
                {"key": key, "since": s.since, "announced": s.announced, **s.alert.model_dump()}
                for key, s in sorted(self._standing.items())
            ],
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Load what ``state()`` returned; unreadable state is ignored (start afresh)."""
        if state.get("format_version") != 1:
            return
        restored: dict[str, _Standing] = {}
        try:
            for item in state.get("standing", []):
                alert = Alert(
                    target=item["target"],
                    severity=Severity(item["severity"]),
                    message=item["message"],
                    pool=item.get("pool"),
                )
                restored[str(item["key"])] = _Standing(
                    alert, float(item["since"]), bool(item["announced"])
                )
        except (KeyError, TypeError, ValueError):
            return
        self._standing = restored


def _event(kind: EventKind, key: str, alert: Alert, since: float, now: float) -> AlertEvent:
    return AlertEvent(
        kind=kind,
        key=key,
        target=alert.target,
        severity=alert.severity,
        message=alert.message,
        pool=alert.pool,
        since=since,
        at=now,
    )
