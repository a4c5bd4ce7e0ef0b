"""How the reconcile loop itself is doing: the process condition behind "LoopHealthy".

``run`` must never die of a failed pass, so a failure has to be visible somewhere
other than a crash: the loop records each pass's outcome here (``Reconciler.health``),
and metrics, the control API and ``status`` read it. Kept apart from the loop so readers
need not import the reconciler's world.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass
class LoopHealth:
    """The loop's record of its passes (mutated by the loop only)."""

    last_error: str | None = None
    """The last failed pass's error, one line (secret-free); None once a pass succeeds."""
    last_error_at: datetime | None = None
    consecutive_failures: int = 0
    failures_total: int = 0
    passes_total: int = 0
    """Passes that completed (good ones)."""
    timeouts_total: int = 0
    """Failed passes that ran past ``settings.loop.pass_timeout_seconds``."""
    last_good_pass_at: datetime | None = None
    last_pass_seconds: float | None = None
    """Duration of the last pass, good or failed."""
    next_try_in: float | None = None
    """Seconds of backoff before the next attempt after a failure."""

    @property
    def healthy(self) -> bool:
        """The last pass completed."""
        return self.last_good_pass_at is not None and self.consecutive_failures == 0

    def record_success(self, seconds: float, now: datetime | None = None) -> None:
        self.passes_total += 1
        self.consecutive_failures = 0
        self.last_error = None
        self.next_try_in = None
        self.last_pass_seconds = seconds
        self.last_good_pass_at = now or datetime.now(UTC)

    def record_failure(
        self,
        error: str,
        seconds: float,
        *,
        next_try_in: float,
        timed_out: bool = False,
        now: datetime | None = None,
    ) -> None:
        self.failures_total += 1
        self.consecutive_failures += 1
        self.timeouts_total += int(timed_out)
        self.last_error = error
        self.last_error_at = now or datetime.now(UTC)
        self.last_pass_seconds = seconds
        self.next_try_in = next_try_in

    def as_condition(self) -> dict[str, object]:
        """The LoopHealthy condition, as status and the API show conditions."""
        if self.healthy:
            status, reason, message = "True", "PassSucceeded", None
        elif self.last_good_pass_at is None and self.consecutive_failures == 0:
            status, reason, message = "Unknown", "NoPassYet", None
        else:
            status, reason = "False", "PassFailed"
            message = f"{self.consecutive_failures} failed pass(es) in a row: {self.last_error}"
        return {
            "type": "LoopHealthy",
            "status": status,
            "reason": reason,
            "message": message,
            "last_good_pass_at": self.last_good_pass_at.isoformat()
            if self.last_good_pass_at
            else None,
            "consecutive_failures": self.consecutive_failures,
        }
