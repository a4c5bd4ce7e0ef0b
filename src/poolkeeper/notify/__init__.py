"""Alerts beyond the plan: a debounced webhook for new alerts and recoveries.

``AlertTracker`` decides (pure, clock passed in); ``WebhookNotifier`` delivers (httpx).
The reconcile loop hands every executed pass's plan to the notifier.
"""

from poolkeeper.notify._tracker import AlertEvent, AlertTracker, EventKind, alert_key
from poolkeeper.notify._webhook import PAYLOAD_FORMAT_VERSION, WebhookNotifier, payload_of

__all__ = [
    "PAYLOAD_FORMAT_VERSION",
    "AlertEvent",
    "AlertTracker",
    "EventKind",
    "WebhookNotifier",
    "alert_key",
    "payload_of",
]
