"""Burn rate and runway per signer: fees over the record's span, balance over the rate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from poolkeeper.model.desired import (
    AccountRole,
    AccountSpec,
    Desired,
    RunwaySettings,
    Settings,
)
from poolkeeper.model.observed import ChainHead, FeesPaid, Observed, ObservedAccount
from poolkeeper.model.runway import low_runways, runways

NOW = datetime(2026, 1, 10, tzinfo=UTC)
PHA = 10**12


def _world(limit: float | None, since: timedelta | None) -> tuple[Desired, Observed]:
    desired = Desired(
        settings=Settings(runway=RunwaySettings(alert_below_days=limit)),
        accounts=(
            AccountSpec(name="op", role=AccountRole.OPERATOR, address="A"),
            AccountSpec(name="idle", role=AccountRole.OWNER, address="B"),
            AccountSpec(name="later", role=AccountRole.OWNER, derivation="later"),
        ),
    )
    observed = Observed(
        read_at=NOW,
        head=ChainHead(best_number=1, finalized_number=1),
        accounts={
            "A": ObservedAccount(address="A", free=10 * PHA),
            "B": ObservedAccount(address="B", free=PHA),
        },
        fees_paid={"A": FeesPaid(plancks=2 * PHA, extrinsics=40)},
        fees_since=None if since is None else NOW - since,
    )
    return desired, observed


def test_burn_per_day_and_days_left() -> None:
    desired, observed = _world(None, timedelta(days=2))
    found = runways(desired, observed)
    assert set(found) == {"op", "idle"}  # an account without an address has none
    assert found["op"].burn_per_day == PHA and found["op"].days == 10.0
    assert found["idle"].burn_per_day == 0 and found["idle"].days is None


def test_a_record_shorter_than_an_hour_counts_as_an_hour() -> None:
    desired, observed = _world(None, timedelta(minutes=1))
    assert runways(desired, observed)["op"].burn_per_day == 48 * PHA


def test_alert_below_the_declared_days_only() -> None:
    desired, observed = _world(11, timedelta(days=2))
    assert [r.account for r in low_runways(desired, observed)] == ["op"]
    desired, observed = _world(10, timedelta(days=2))
    assert low_runways(desired, observed) == []  # exactly at the limit
    desired, observed = _world(None, timedelta(days=2))
    assert low_runways(desired, observed) == []


def test_no_record_no_runway() -> None:
    desired, observed = _world(11, None)
    assert runways(desired, observed) == {}
