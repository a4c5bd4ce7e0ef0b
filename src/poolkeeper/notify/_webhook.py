"""Deliver alert events to the operator's webhook: one JSON POST per pass that has news.

The effect half of the notifier (the deciding half is ``_tracker``). Delivery never
breaks a reconcile pass: a failed POST is logged and its events are offered again on
the next pass. The debounce state is kept in a small JSON file in the state directory
so that ``apply`` run repeatedly (e.g. from cron) neither repeats an alert nor loses
a recovery.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from poolkeeper.keys import register_secret
from poolkeeper.model.actions import Plan
from poolkeeper.notify._tracker import AlertEvent, AlertTracker

PAYLOAD_FORMAT_VERSION = 1
log = logging.getLogger(__name__)


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def payload_of(
    events: Sequence[AlertEvent], *, sent_at: float, block: int | None
) -> dict[str, Any]:
    """The JSON body of one POST (documented in docs/accounts.md)."""
    return {
        "format_version": PAYLOAD_FORMAT_VERSION,
        "source": "poolkeeper",
        "sent_at": _iso(sent_at),
        "block": block,
        "events": [
            {
                "event": e.kind.value,
                "target": e.target,
                "severity": e.severity.value,
                "message": e.message,
                "pool": e.pool,
                "since": _iso(e.since),
                "at": _iso(e.at),
            }
            for e in events
        ],
    }


class WebhookNotifier:
    """Turns successive plans into debounced webhook POSTs."""

    def __init__(
        self,
        url: str,
        *,
        debounce_seconds: float,
        state_file: Path | None = None,
        clock: Callable[[], float] = time.time,
        timeout_seconds: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url
        # Webhook URLs often carry a token in their path or query (Slack, Discord, ...):
        # mask it in every log line, including httpx's own request log.
        parts = urlsplit(url)
        register_secret(parts.path + (f"?{parts.query}" if parts.query else ""))
        self._clock = clock
        self._state_file = state_file
        self.tracker = AlertTracker(debounce_seconds)
        self._client = httpx.AsyncClient(timeout=timeout_seconds, transport=transport)
        if state_file is not None:
            self._load_state(state_file)

    def _load_state(self, path: Path) -> None:
        try:
            self.tracker.restore(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as error:
            log.warning("ignoring unreadable alert state %s: %s", path, error)

    def _save_state(self) -> None:
        if self._state_file is None:
            return
        path = self._state_file
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            scratch = path.with_name(path.name + ".tmp")
            scratch.write_text(json.dumps(self.tracker.state(), indent=2), encoding="utf-8")
            os.replace(scratch, path)
        except OSError as error:
            log.warning("cannot save alert state %s: %s", path, error)

    async def notify(self, plan: Plan) -> list[AlertEvent]:
        """Announce what changed since the previous plan; the events delivered are returned."""
        now = self._clock()
        events = self.tracker.update(plan.alerts, now)
        delivered: list[AlertEvent] = []
        if events:
            body = payload_of(events, sent_at=now, block=plan.block)
            try:
                response = await self._client.post(self.url, json=body)
                response.raise_for_status()
            except httpx.HTTPError as error:
                # The URL is not logged: webhook URLs often embed a token.
                log.warning(
                    "alert webhook POST failed (%s); %d event(s) will be retried on the next pass",
                    type(error).__name__,
                    len(events),
                )
                self.tracker.unannounce(events)
            else:
                delivered = events
        self._save_state()
        return delivered

    async def aclose(self) -> None:
        await self._client.aclose()
