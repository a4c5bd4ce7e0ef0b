"""The mirrored journal: etcd first, nothing recorded (so nothing sent) when not owner,
records removed when settled, and a new owner adopts the old owner's unsettled ones."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from poolkeeper.apply.journal import JournalStatus
from poolkeeper.errors import TemporaryError
from poolkeeper.ha.journal import BackendThread, MirroredJournal, ShardRoute
from tests.unit.ha.test_fence import Clock, FakeEtcd

OWNER = "/poolkeeper/c/shards/s/owner"
PREFIX = "/poolkeeper/c/shards/s/journal/"


def route(shard: str, value: Callable[[], str], may_write: Callable[[], bool]) -> ShardRoute:
    prefix = f"/poolkeeper/c/shards/{shard}/"
    return ShardRoute(shard, prefix + "owner", value, prefix + "journal/", may_write, may_write)


def record(journal: MirroredJournal, h: str, nonce: int = 5) -> None:
    journal.record_prepared(
        extrinsic_hash=h,
        signer="5Signer",
        nonce=nonce,
        data=b"\x01\x02",
        action_ids=("a1", "a2"),
        era_start=10,
        era_period=64,
    )


def test_mirror_then_adopt_by_the_next_owner(tmp_path: Path) -> None:
    etcd = FakeEtcd(Clock())
    etcd.keys[OWNER] = ("one", 1)
    remote = BackendThread(lambda: etcd, 2.0)
    allowed = [True]
    try:
        first = MirroredJournal(
            tmp_path / "a.sqlite",
            remote=remote,
            routes=[route("s", lambda: "one", lambda: allowed[0])],
        )
        record(first, "0xaa")
        record(first, "0xbb", 6)
        assert set(etcd.keys) == {OWNER, PREFIX + "0xaa", PREFIX + "0xbb"}
        first.settle("0xaa", JournalStatus.IN_BLOCK, block_number=3)
        assert PREFIX + "0xaa" not in etcd.keys
        allowed[0] = False
        with pytest.raises(TemporaryError):
            record(first, "0xcc", 7)
        assert [e.extrinsic_hash for e in first.unsettled()] == ["0xbb"]
        # The owner dies; another process wins the shard and adopts what is unsettled.
        etcd.keys[OWNER] = ("two", 2)
        second = MirroredJournal(
            tmp_path / "b.sqlite", remote=remote, routes=[route("s", lambda: "two", lambda: True)]
        )
        assert second.adopt_remote() == ["0xbb"]
        (entry,) = second.unsettled()
        assert (entry.nonce, entry.data, entry.action_ids) == (6, b"\x01\x02", ("a1", "a2"))
        assert second.pending_action_ids() == {"a1", "a2"}
        assert second.adopt_remote() == []
        # The old owner can no longer write: its condition on the owner key fails.
        allowed[0] = True
        with pytest.raises(TemporaryError, match="no longer ours"):
            record(first, "0xdd", 8)
        first.close()
        second.close()
    finally:
        remote.close()


def test_the_journal_is_complete_only_since_the_shard_was_won(tmp_path: Path) -> None:
    """The daily top-up cap trusts the journal alone only for a day it saw whole: under HA
    that is from the moment this process won the shard, not from the file's creation."""
    etcd = FakeEtcd(Clock())
    remote = BackendThread(lambda: etcd, 2.0)
    try:
        journal = MirroredJournal(
            tmp_path / "j.sqlite", remote=remote, routes=[route("s", lambda: "one", lambda: True)]
        )
        created = journal.created_at
        assert created > 0
        journal.note_won(created + 3600)
        assert journal.created_at == created + 3600
        journal.note_won(created + 60)  # the latest win counts (several shards: any order)
        assert journal.created_at == created + 3600
        journal.close()
        fresh = MirroredJournal(
            tmp_path / "k.sqlite", remote=remote, routes=[route("s", lambda: "one", lambda: True)]
        )
        fresh.note_won(fresh.created_at - 3600)  # won before the file existed: the file counts
        assert fresh.created_at > created
        fresh.close()
    finally:
        remote.close()
