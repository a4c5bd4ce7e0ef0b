"""The debouncing rule, with a clock the test controls."""

from __future__ import annotations

from poolkeeper.model.actions import Alert, Severity
from poolkeeper.notify import AlertTracker, EventKind, alert_key


def low(balance: str, *, critical: bool = False, target: str = "account/op") -> Alert:
    kind = "critical" if critical else "warn"
    return Alert(
        target=target,
        severity=Severity.CRITICAL if critical else Severity.WARN,
        message=f"balance {balance} PHA is below the {kind} threshold 20 PHA",
    )


def kinds(events: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [(e.kind.value, e.target) for e in events]


def test_an_alert_is_sent_only_after_standing_the_debounce_period() -> None:
    tracker = AlertTracker(debounce_seconds=60)
    assert tracker.update([low("3")], now=1000) == []
    assert tracker.update([low("3")], now=1059.9) == []
    events = tracker.update([low("3")], now=1060)
    assert kinds(events) == [("alert", "account/op")]
    assert events[0].since == 1000 and events[0].at == 1060


def test_no_repeat_while_it_stands_even_as_numbers_change() -> None:
    tracker = AlertTracker(debounce_seconds=0)
    assert kinds(tracker.update([low("3")], now=0)) == [("alert", "account/op")]
    for t, balance in enumerate(["2.5", "2", "1.99", "12"], start=1):
        assert tracker.update([low(balance)], now=t * 100) == []


def test_recovery_is_sent_once_when_it_clears() -> None:
    tracker = AlertTracker(debounce_seconds=10)
    tracker.update([low("3")], now=0)
    assert kinds(tracker.update([low("3")], now=10)) == [("alert", "account/op")]
    recovered = tracker.update([], now=20)
    assert kinds(recovered) == [("recovered", "account/op")]
    assert recovered[0].message == low("3").message
    assert tracker.update([], now=30) == []


def test_a_flap_shorter_than_the_debounce_is_never_announced() -> None:
    tracker = AlertTracker(debounce_seconds=60)
    assert tracker.update([low("3")], now=0) == []
    assert tracker.update([], now=30) == []
    assert tracker.update([low("3")], now=40) == []
    assert tracker.update([low("3")], now=99) == []
    assert kinds(tracker.update([low("3")], now=100)) == [("alert", "account/op")]


def test_warn_turning_critical_is_a_new_alert_and_the_warn_recovers() -> None:
    tracker = AlertTracker(debounce_seconds=0)
    tracker.update([low("10")], now=0)
    events = tracker.update([low("4", critical=True)], now=1)
    assert sorted((e.kind.value, e.severity.value) for e in events) == [
        ("alert", "critical"),
        ("recovered", "warn"),
    ]


def test_alerts_of_different_targets_are_independent() -> None:
    tracker = AlertTracker(debounce_seconds=5)
    a, b = low("1", target="account/a"), low("1", target="account/b")
    tracker.update([a], now=0)
    tracker.update([a, b], now=3)
    assert kinds(tracker.update([a, b], now=5)) == [("alert", "account/a")]
    assert kinds(tracker.update([b], now=8)) == [
        ("recovered", "account/a"),
        ("alert", "account/b"),
    ]


def test_undelivered_events_are_offered_again() -> None:
    tracker = AlertTracker(debounce_seconds=0)
    first = tracker.update([low("3")], now=0)
    tracker.unannounce(first)
    assert kinds(tracker.update([low("3")], now=1)) == [("alert", "account/op")]
    gone = tracker.update([], now=2)
    tracker.unannounce(gone)
    assert kinds(tracker.update([], now=3)) == [("recovered", "account/op")]
    assert tracker.update([], now=4) == []


def test_state_round_trip_keeps_announced_alerts_quiet() -> None:
    tracker = AlertTracker(debounce_seconds=0)
    tracker.update([low("3")], now=0)
    again = AlertTracker(debounce_seconds=0)
    again.restore(tracker.state())
    assert again.update([low("2")], now=50) == []
    assert kinds(again.update([], now=60)) == [("recovered", "account/op")]
    broken = AlertTracker(debounce_seconds=0)
    broken.restore({"format_version": 1, "standing": [{"key": "x"}]})
    assert kinds(broken.update([low("3")], now=0)) == [("alert", "account/op")]


def test_key_masks_numbers_but_keeps_target_and_severity() -> None:
    assert alert_key(low("3")) == alert_key(low("17.25"))
    assert alert_key(low("3")) != alert_key(low("3", critical=True))
    assert alert_key(low("3")) != alert_key(low("3", target="account/x"))
    assert EventKind.ALERT.value == "alert"
