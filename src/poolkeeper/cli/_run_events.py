"""What ``poolkeeper run`` says about each pass, as log records an operator can filter.

A pass summary alone ("2 alert(s)") hides which alert started and when it ended. This
reporter turns each pass into records: one summary, one per action result (with its
worker, pool, action id and extrinsic), and one per alert when it starts and when it
ends, named by the alert's identity (``notify.alert_key``: target, severity and message
with numbers masked, so a moving balance stays one alert).
"""

from __future__ import annotations

import logging
import time

from poolkeeper.loop import PassResult
from poolkeeper.model.actions import Action, Alert, Severity
from poolkeeper.notify import AlertTracker, EventKind

_log = logging.getLogger("poolkeeper.run")


def _worker_of(target: str) -> str | None:
    return target.removeprefix("worker/") if target.startswith("worker/") else None


class PassReporter:
    """Feed it every completed pass (``report``); it logs the pass and alert changes."""

    def __init__(self) -> None:
        self._alerts = AlertTracker(debounce_seconds=0)

    def report(self, result: PassResult) -> None:
        plan = result.plan
        ok = sum(1 for r in result.results if r.ok)
        failed = len(result.results) - ok
        for r in result.resolved:
            _log.info(
                "resolved from the journal: %s: %s",
                r.action_id,
                "ok" if r.ok else f"not done ({r.error})",
                extra={
                    "event": "journal.resolved",
                    "action": r.action_id,
                    "extrinsic": r.extrinsic_hash,
                },
            )
        flight = f", {len(result.in_flight)} in flight" if result.in_flight else ""
        _log.info(
            "pass at #%s: %d action(s) planned, %d done, %d failed%s, %d wait(s), %d alert(s)",
            result.observed.head.best_number,
            len(plan.actions),
            ok,
            failed,
            flight,
            len(plan.waits),
            len(plan.alerts),
            extra={"event": "pass.done"},
        )
        if result.started_relays:
            _log.info(
                "relays started: %s",
                ", ".join(result.started_relays),
                extra={"event": "relay.started"},
            )
        actions = {a.id: a for a in plan.actions}
        for r in result.results:
            action: Action | None = actions.get(r.action_id)
            fields = {
                "action": r.action_id,
                "worker": _worker_of(action.target) if action else None,
                "pool": action.pool if action else None,
                "extrinsic": r.extrinsic_hash,
            }
            if r.ok:
                where = f" in block #{r.block_number}" if r.block_number is not None else ""
                _log.info(
                    "%s: done%s", r.action_id, where, extra={"event": "action.done", **fields}
                )
            else:
                _log.warning(
                    "%s: failed: %s",
                    r.action_id,
                    r.error,
                    extra={"event": "action.failed", **fields},
                )
        self.alerts(plan.alerts)

    def alerts(self, alerts: tuple[Alert, ...], now: float | None = None) -> None:
        """Log each alert that started or ended since the previous call."""
        for event in self._alerts.update(alerts, time.time() if now is None else now):
            fields = {
                "alert": event.key,
                "severity": event.severity.value,
                "target": event.target,
                "worker": _worker_of(event.target),
                "pool": event.pool,
            }
            if event.kind is EventKind.ALERT:
                level = logging.ERROR if event.severity is Severity.CRITICAL else logging.WARNING
                _log.log(
                    level,
                    "alert started: %s: %s",
                    event.target,
                    event.message,
                    extra={"event": "alert.start", **fields},
                )
            else:
                _log.info(
                    "alert ended: %s: %s",
                    event.target,
                    event.message,
                    extra={"event": "alert.end", **fields},
                )
