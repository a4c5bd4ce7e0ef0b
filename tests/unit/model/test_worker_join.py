"""``join_worker``: the one join of an inventory worker with its pRuntime and chain record."""

from __future__ import annotations

import gc
import weakref
from datetime import UTC, datetime

from poolkeeper.model.conditions import _JOINS, join_worker, worker_joins, worker_pubkey
from poolkeeper.model.desired import Desired, WorkerSpec
from poolkeeper.model.observed import (
    ChainHead,
    ChainWorker,
    Observed,
    PRuntimeInfo,
    PRuntimeObservation,
)

A, B, C = "aa" * 32, "bb" * 32, "cc" * 32


def _observed(reported: str | None, *, remembered: str | None = None) -> Observed:
    info = PRuntimeInfo(initialized=True, public_key=reported) if reported is not None else None
    return Observed(
        read_at=datetime(2026, 1, 1, tzinfo=UTC),
        head=ChainHead(best_number=10, finalized_number=9),
        pruntimes={"http://w": PRuntimeObservation(endpoint="http://w", info=info)},
        chain_workers={key: ChainWorker(pubkey=key, pool_pid=ord(key[0])) for key in (A, B, C)},
        remembered_pubkeys={"http://w": remembered} if remembered else {},
    )


def _spec(pubkey: str | None = None) -> WorkerSpec:
    return WorkerSpec(name="w", endpoint="http://w", pool="p", pubkey=pubkey)


def test_pin_wins_over_the_reported_and_remembered_key() -> None:
    joined = join_worker(_spec("0x" + A.upper()), _observed(B, remembered=C))
    assert joined.pubkey == A
    assert joined.chain is not None and joined.chain.pubkey == A
    assert joined.pruntime is not None and joined.pruntime.endpoint == "http://w"


def test_reported_key_then_remembered_key() -> None:
    assert join_worker(_spec(), _observed(B, remembered=C)).pubkey == B
    joined = join_worker(_spec(), _observed(None, remembered="0x" + C))
    assert (joined.pubkey, joined.chain and joined.chain.pubkey) == (C, C)


def test_no_key_no_chain_record_and_unknown_key_no_record() -> None:
    assert join_worker(_spec(), _observed(None)) == (
        _observed(None).pruntimes["http://w"],
        None,
        None,
    )
    unknown = join_worker(_spec("dd" * 32), _observed(None))
    assert (unknown.pubkey, unknown.chain) == ("dd" * 32, None)


def test_worker_pubkey_is_the_joins_key() -> None:
    observed = _observed(B, remembered=C)
    assert worker_pubkey(_spec(), observed) == join_worker(_spec(), observed).pubkey == B


def test_the_joins_of_a_pass_are_made_once_and_follow_a_new_observation() -> None:
    desired = Desired(
        workers=(
            WorkerSpec(name="a", endpoint="http://a"),
            WorkerSpec(name="b", endpoint="http://b"),
        )
    )

    def world(key: str | None) -> Observed:
        info = PRuntimeInfo(initialized=True, public_key=key) if key else None
        return Observed(
            read_at=datetime(2026, 1, 1, tzinfo=UTC),
            head=ChainHead(best_number=1, finalized_number=1),
            pruntimes={"http://a": PRuntimeObservation(endpoint="http://a", info=info)},
            chain_workers={"cd" * 32: ChainWorker(pubkey="cd" * 32)},
        )

    first = world(None)
    joins = worker_joins(desired, first)
    assert worker_joins(desired, first) is joins, "the same pair: made once"
    assert joins["a"].pubkey is None and joins["b"].pruntime is None
    second = world("0xCD" + "cd" * 31)  # a: now reports its key, found on chain
    again = worker_joins(desired, second)
    assert again is not joins
    assert again["a"] == join_worker(desired.workers[0], second)
    assert again["a"].pubkey == "cd" * 32 and again["a"].chain is not None
    # Kept only while the observation lives.
    gone = weakref.ref(second)
    del second, again
    gc.collect()
    assert gone() is None and _JOINS._last is None
