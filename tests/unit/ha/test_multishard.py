"""One ``run --ha`` process holding two shards, each through its own lease: journal
records are routed by signer to the owning shard's fence and etcd prefix, a shard's
earlier extrinsics are adopted and recovered only when that shard is won (never another
shard's), and losing one shard refuses only that shard's signers, relays and entries."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from poolkeeper.errors import TemporaryError
from poolkeeper.ha.agent import ShardAgent
from poolkeeper.ha.fence import Fence
from poolkeeper.ha.gate import HaGate
from poolkeeper.ha.journal import BackendThread, MirroredJournal, ShardRoute, record_json
from poolkeeper.model.desired import AccountSpec, Desired, PoolSpec, Settings, ShardSpec, WorkerSpec
from poolkeeper.model.shards import signer_shards
from tests.unit.ha.test_fence import Clock, FakeEtcd

TTL = 6.0
DELAY = 1.0


def prefix(shard: str) -> str:
    return f"/poolkeeper/c/shards/{shard}/"


def desired() -> Desired:
    def account(name: str, role: str, address: str) -> AccountSpec:
        return AccountSpec(name=name, role=role, address=address, derivation=f"//{name}")

    return Desired(
        settings=Settings(
            shards=(
                ShardSpec(name="a", pools=("pool-a",), relay_signer="relay-a"),
                ShardSpec(name="b", pools=("pool-b",), relay_signer="relay-b"),
            )
        ),
        accounts=(
            account("owner-a", "owner", "5OA"),
            account("owner-b", "owner", "5OB"),
            account("operator-a", "operator", "5A"),
            account("operator-b", "operator", "5B"),
            account("relay-a", "relay_signer", "5RA"),
            account("relay-b", "relay_signer", "5RB"),
        ),
        pools=(
            PoolSpec(name="pool-a", pid=0, owner="owner-a", operator="operator-a"),
            PoolSpec(name="pool-b", pid=1, owner="owner-b", operator="operator-b"),
        ),
        workers=(
            WorkerSpec(name="w-a", endpoint="http://h:1", pool="pool-a"),
            WorkerSpec(name="w-b", endpoint="http://h:2", pool="pool-b"),
        ),
    )


def test_each_signer_belongs_to_its_shard() -> None:
    d = desired()
    assert signer_shards(d.settings.shards, d.pools, d.workers, d.accounts) == {
        "operator-a": "a",
        "owner-a": "a",
        "relay-a": "a",
        "operator-b": "b",
        "owner-b": "b",
        "relay-b": "b",
    }


def earlier_record(etcd: FakeEtcd, shard: str, extrinsic_hash: str, signer: str) -> None:
    """An unsettled extrinsic a previous owner of ``shard`` left in etcd."""
    etcd.keys[prefix(shard) + "journal/" + extrinsic_hash] = (
        record_json(
            extrinsic_hash=extrinsic_hash,
            signer=signer,
            nonce=3,
            data=b"\x09",
            action_ids=(f"act:{extrinsic_hash}",),
            era_start=1,
            era_period=64,
        ),
        0,
    )


def sign(journal: MirroredJournal, extrinsic_hash: str, signer: str) -> None:
    journal.record_prepared(
        extrinsic_hash=extrinsic_hash,
        signer=signer,
        nonce=7,
        data=b"\x01",
        action_ids=(f"act:{extrinsic_hash}",),
        era_start=10,
        era_period=64,
    )


class Executor:
    def __init__(self) -> None:
        self.forgotten: list[set[str]] = []

    def forget_nonces(self, addresses: Iterable[str]) -> None:
        self.forgotten.append(set(addresses))


class Reconciler:
    """What the gate uses of the reconciler: the inventory, the executor, ``recover``
    (which records the unsettled entries the journal shows it)."""

    def __init__(self, journal: MirroredJournal) -> None:
        self.desired = desired()
        self.executor = Executor()
        self.journal = journal
        self.recovered: list[list[str]] = []

    async def recover(self) -> list[Any]:
        self.recovered.append([e.extrinsic_hash for e in self.journal.unsettled()])
        return []


async def test_two_shards_route_by_signer_recover_per_shard_and_lose_one(tmp_path: Path) -> None:
    clock = Clock()
    etcd = FakeEtcd(clock)
    etcd.keys[prefix("b") + "owner"] = ("another process", 0)  # b is held elsewhere
    earlier_record(etcd, "a", "0xa1", "5A")
    earlier_record(etcd, "b", "0xb1", "5B")
    fenced: list[str] = []
    agents = {
        shard: ShardAgent(
            backend=etcd,
            cluster="c",
            shard=shard,
            identity="me",
            fence=Fence(ttl_seconds=TTL, lock_delay_seconds=DELAY),
            log=lambda _m: None,
            on_fenced=lambda reason, shard=shard: fenced.append(shard),  # type: ignore[misc]
            clock=clock,
        )
        for shard in ("a", "b")
    }
    remote = BackendThread(lambda: etcd, 2.0)
    journal = MirroredJournal(
        tmp_path / "j.sqlite",
        remote=remote,
        routes=[
            ShardRoute(
                shard=s,
                owner_key=agent.owner_key,
                owner_value=agent.owner_value,
                prefix=agent.journal_prefix,
                may_write=agent.may_sign,
                owned=agent.may_write,
            )
            for s, agent in agents.items()
        ],
    )
    gate = HaGate(agents, journal, lambda _m: None)
    rec = Reconciler(journal)

    async def steps(seconds: float = 0.0) -> None:
        clock.now += seconds
        for agent in agents.values():
            await agent.step()

    try:
        await steps()
        await steps(DELAY)
        assert agents["a"].may_write() and not agents["b"].may_write()
        # Won a only: signing waits for a's recovery (the gate's first pass).
        assert not gate.may_sign("operator-a")
        assert await gate.allow(rec) is True
        # a's earlier record adopted and recovered; b's neither read nor touched.
        assert rec.recovered == [["0xa1"]]
        assert {e.extrinsic_hash for e in journal.entries()} == {"0xa1"}
        assert prefix("b") + "journal/0xb1" in etcd.keys
        assert rec.executor.forgotten == [{"5OA", "5A", "5RA"}]
        assert gate.may_sign("operator-a") and gate.may_sign("relay-a")
        assert not gate.may_sign("operator-b") and not gate.may_sign("relay-b")
        assert not gate.may_sign(None) and not gate.may_sign("nobody")
        assert gate.may_relay("w-a") and not gate.may_relay("w-b")
        # Records go under their signer's shard; b's signer and unknown ones are refused.
        sign(journal, "0xa2", "5A")
        assert prefix("a") + "journal/0xa2" in etcd.keys
        with pytest.raises(TemporaryError, match="not the owner of shard b"):
            sign(journal, "0xb2", "5B")
        with pytest.raises(TemporaryError, match="belongs to none of this process's shards"):
            sign(journal, "0xx", "5Unknown")
        assert prefix("b") + "journal/0xb2" not in etcd.keys
        assert [e.extrinsic_hash for e in journal.unsettled()] == ["0xa1", "0xa2"]

        # b is released; this process wins it too: only now are b's records adopted.
        del etcd.keys[prefix("b") + "owner"]
        await steps(0.5)
        await steps(DELAY)
        assert await gate.allow(rec) is True
        assert rec.recovered[-1] == ["0xa1", "0xa2", "0xb1"]
        assert rec.executor.forgotten[-1] == {"5OB", "5B", "5RB"}
        assert gate.may_sign("operator-b") and gate.may_relay("w-b")
        sign(journal, "0xb2", "5B")
        assert prefix("b") + "journal/0xb2" in etcd.keys
        # Settling deletes the record under the signer's shard.
        from poolkeeper.apply.journal import JournalStatus

        journal.settle("0xb2", JournalStatus.IN_BLOCK, block_number=5)
        assert prefix("b") + "journal/0xb2" not in etcd.keys
        journal.settle("0xa2", JournalStatus.IN_BLOCK, block_number=5)
        assert prefix("a") + "journal/0xa2" not in etcd.keys

        # b's owner key is taken away (deleted, then held by another): only b is lost.
        etcd.keys[prefix("b") + "owner"] = ("thief", 0)
        await steps(0.5)
        assert fenced == ["b"]
        assert not gate.may_sign("operator-b") and not gate.may_relay("w-b")
        assert gate.may_sign("operator-a") and gate.may_relay("w-a")
        with pytest.raises(TemporaryError, match="not the owner of shard b"):
            sign(journal, "0xb3", "5B")
        sign(journal, "0xa3", "5A")
        # b's unsettled extrinsic is no longer this process's to recover (or re-send).
        assert [e.extrinsic_hash for e in journal.unsettled()] == ["0xa1", "0xa3"]
        assert "act:0xb1" not in journal.pending_action_ids()
        assert await gate.allow(rec) is True  # a pass still writes for a
        assert rec.recovered[-1] == ["0xa1", "0xa2", "0xb1"], "no new recovery for a"
    finally:
        journal.close()
        remote.close()
        await asyncio.sleep(0)


async def test_a_shard_whose_journal_cannot_be_read_is_not_written(tmp_path: Path) -> None:
    """Winning a shard whose etcd journal cannot be read leaves it unwritable (its earlier
    extrinsics unknown) and the pass writes for no shard."""
    clock = Clock()
    etcd = FakeEtcd(clock)
    agent = ShardAgent(
        backend=etcd,
        cluster="c",
        shard="a",
        identity="me",
        fence=Fence(ttl_seconds=TTL, lock_delay_seconds=DELAY),
        log=lambda _m: None,
        clock=clock,
    )
    other = ShardAgent(
        backend=etcd,
        cluster="c",
        shard="b",
        identity="me",
        fence=Fence(ttl_seconds=TTL, lock_delay_seconds=DELAY),
        log=lambda _m: None,
        clock=clock,
    )
    remote = BackendThread(lambda: etcd, 2.0)
    journal = MirroredJournal(
        tmp_path / "j.sqlite",
        remote=remote,
        routes=[
            ShardRoute(
                s.shard, s.owner_key, s.owner_value, s.journal_prefix, s.may_sign, s.may_write
            )
            for s in (agent, other)
        ],
    )
    gate = HaGate({"a": agent, "b": other}, journal, lambda _m: None)
    try:
        await agent.step()
        clock.now += DELAY
        etcd.down = True
        assert await gate.allow(Reconciler(journal)) is False
        assert not gate.may_sign("operator-a") and not gate.may_relay("w-a")
        with pytest.raises(TemporaryError):
            sign(journal, "0xa1", "5A")
    finally:
        journal.close()
        remote.close()


def test_one_process_condition_and_document_for_two_shards() -> None:
    """``HaLeaseHeld`` names the lost shard (critical) while the other is owned; the
    ``ha`` document has a row per shard and top-level keys combining them."""
    import time
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from poolkeeper.cli._ha import HaCli
    from poolkeeper.model.conditions import Conditions, ConditionStatus

    now = time.monotonic()
    fences = {s: Fence(ttl_seconds=TTL, lock_delay_seconds=0.0) for s in ("a", "b")}
    fences["a"].won(1, now, 1_780_000_000.0)
    fences["b"].won(2, now, 1_780_000_100.0)
    etcd = FakeEtcd(Clock())
    agents = {
        s: ShardAgent(backend=etcd, cluster="c", shard=s, identity="me", fence=f, log=print)
        for s, f in fences.items()
    }
    cli = HaCli(enabled=True, names=("a", "b"))
    cli.run = SimpleNamespace(agents=agents, gate=None)
    at = datetime(2026, 1, 1, tzinfo=UTC)

    def held() -> tuple[ConditionStatus, str, str | None]:
        (c,) = [c for c in cli._condition(Conditions(), at).process if c.type == "HaLeaseHeld"]
        return c.status, c.message, c.severity

    assert held()[:2] == (ConditionStatus.TRUE, "owns shard a, b (active)")
    document = cli.document()
    assert (document["shard"], document["state"], document["owner"]) == ("a,b", "active", True)
    assert document["since"] == 1_780_000_000.0
    fences["b"].fence(time.monotonic(), "renewal failed: timeout")
    status, message, severity = held()
    assert status is ConditionStatus.FALSE and severity == "critical"
    assert message.startswith("lost the lease of shard b: renewal failed"), message
    document = cli.document()
    assert (document["state"], document["owner"]) == ("mixed", False)
    assert document["last_problem"] == "b: renewal failed: timeout"
    assert [(r["shard"], r["state"], r["owner"]) for r in document["shards"]] == [
        ("a", "active", True),
        ("b", "fenced", False),
    ]
    assert document["lease_ttl_seconds"] == document["shards"][0]["lease_ttl_seconds"] > 0
    fences["b"] = agents["b"].fence = Fence(ttl_seconds=TTL, lock_delay_seconds=0.0)
    assert held()[:2] == (ConditionStatus.TRUE, "owns shard a; standby for b (active)")
