"""Two ``run --ha --shard a --shard b`` processes against a 3-member etcd and the devnet:
each holds each shard through its own lease. A shard's lease revoked in etcd stops only
that shard's signing and relays in its owner, which keeps the other shard; once the
shards are split, each process signs and relays only for the shard it owns and together
they converge; the owner of both shards SIGKILLed in the middle of an apply is replaced
for both, with no call executed twice on chain (blocks walked over RPC)."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from poolkeeper._crash_points import ENV
from poolkeeper.cli._control import ha_line
from poolkeeper.ha.etcd import EtcdBackend
from tests.faults._faults import calls_in_blocks, counted
from tests.functional.apply._world import World
from tests.functional.ha._etcd import EtcdCluster, etcd_binary
from tests.functional.ha.test_ha_failover import (
    Runner,
    control_ha,
    converged,
    start,
    wait_until,
)
from tests.functional.ha.test_ha_shards import ACCOUNTS, POOLS, SHARDS

pytestmark = pytest.mark.slow

if etcd_binary() is None:
    pytest.skip(
        "etcd not installed (Debian: apt-get install etcd-server; scripts/setup does it)",
        allow_module_level=True,
    )

BOTH = ("--shard", "a", "--shard", "b")
SIGNERS = {"a": ("owner-a", "operator-a", "relay-a"), "b": ("owner-b", "operator-b", "relay-b")}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path / "world", 4, block_time=0.3, cool_down=3, accounts=ACCOUNTS, pools=POOLS)
    settings = w.inventory / "settings.yaml"
    settings.write_text(settings.read_text() + SHARDS)
    try:
        yield w
    finally:
        w.close()


def row(runner: Runner, shard: str) -> dict[str, Any]:
    """That shard's row of the process's ha.json (empty before it is written)."""
    for r in runner.ha().get("shards", []):
        if r.get("shard") == shard:
            found: dict[str, Any] = r
            return found
    return {}


def owns(runner: Runner, shard: str) -> bool:
    return row(runner, shard).get("state") in ("waiting", "active")


def signed(runner: Runner) -> list[tuple[str, float]]:
    """(signer address, when journaled) of every extrinsic this process journaled."""
    path = runner.state_dir / "journal.sqlite"
    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT signer, created_at FROM extrinsics").fetchall()
        return [(str(r[0]), float(r[1])) for r in rows]
    finally:
        db.close()


async def revoke_owner_lease(etcd: EtcdCluster, cluster: str, shard: str) -> None:
    """Revoke the lease through which someone owns ``shard`` (its owner key goes too)."""
    backend = EtcdBackend([("127.0.0.1", p) for p in etcd.client_ports], timeout=2.0)
    try:
        found = await backend.read(f"/poolkeeper/{cluster}/shards/{shard}/owner")
        assert found is not None, f"nobody owns shard {shard}"
        await backend.revoke(found[1])
    finally:
        await backend.close()


def duplicates(world: World) -> list[str]:
    """Pool, registry and transfer calls found more than once in the chain's blocks."""
    calls = counted(calls_in_blocks(world.chain), {"PhalaStakePoolv2", "PhalaRegistry", "Balances"})
    return [c for c, n in calls.items() if n > 1]


def split(p1: Runner, p2: Runner, etcd: EtcdCluster, cluster: str) -> tuple[float, set[int], int]:
    """With p1 owning both shards and p2 standby: revoke shard b's lease until p2 holds b
    (both campaign for it, p1 may win it back), checking each time that p1 lets b go and
    stops b's relays while shard a stays its own. (first loss, shard a's relay counts
    p1 showed meanwhile, how many revocations)."""
    first_loss: float | None = None
    a_relays: set[int] = set()
    for attempt in range(12):
        lost_at = time.time()
        asyncio.run(revoke_owner_lease(etcd, cluster, "b"))
        first_loss = first_loss or lost_at
        wait_until(
            lambda: not owns(p1, "b") and row(p1, "b").get("relays_running") == 0,
            10,
            "p1 lets shard b go and stops its relays",
            p1,
            p2,
        )
        if attempt == 0:
            assert "ALERT: HA lease of shard b lost" in p1.output()
            assert "ALERT: HA lease of shard a" not in p1.output()

        def b_owned() -> bool:
            a_relays.add(row(p1, "a").get("relays_running", -1))
            return owns(p1, "b") or owns(p2, "b")

        wait_until(b_owned, 20, "someone owns shard b again", p1, p2)
        if owns(p2, "b"):
            return first_loss, a_relays, attempt + 1
    raise AssertionError("p2 never won shard b")


def wait_standby_for_both(owner: Runner, standby: Runner) -> None:
    wait_until(
        lambda: all(row(standby, shard).get("state") == "standby" for shard in ("a", "b")),
        30,
        "p2 is standby for both",
        owner,
        standby,
    )


def test_a_lost_shard_stops_only_its_signing_and_relays_then_each_process_keeps_its_own(
    world: World, etcd: EtcdCluster
) -> None:
    p1 = start(world, etcd, "p1", "multi", *BOTH)
    p2: Runner | None = None
    try:
        wait_until(lambda: owns(p1, "a") and owns(p1, "b"), 30, "p1 owns both shards", p1)
        p2 = start(world, etcd, "p2", "multi", *BOTH)
        q = p2
        wait_standby_for_both(p1, q)
        wait_until(
            lambda: (
                row(p1, "a").get("relays_running") == 2 and row(p1, "b").get("relays_running") == 2
            ),
            60,
            "p1 relays both shards' workers",
            p1,
            p2,
        )
        # Front ends see one row per shard (docs/api.md `ha`, additive `shards`).
        seen = asyncio.run(control_ha(p1.state_dir))
        assert seen is not None and [r["shard"] for r in seen["shards"]] == ["a", "b"], seen
        assert seen["owner"] is True and seen["shard"] == "a,b", seen
        assert ha_line(seen).startswith("ha: shards a owner"), ha_line(seen)

        # Shard b's lease is revoked in etcd: p1 stops b (signing, relays), keeps a.
        first_loss, a_relays, attempts = split(p1, q, etcd, "multi")
        # Shard a stayed p1's throughout, its relays running.
        assert owns(p1, "a") and row(p1, "a").get("owner") is True
        assert a_relays == {2}, a_relays
        assert not owns(q, "a")
        wait_until(lambda: row(q, "b").get("relays_running") == 2, 30, "p2 relays b", p1, q)
        assert row(p1, "b").get("relays_running") == 0 and row(q, "a").get("relays_running") == 0
        # Together they converge, each shard signed for by its owner alone.
        wait_until(lambda: converged(world), 150, "every worker computing", p1, q)
        time.sleep(3)  # a few more passes of both processes
        addr = world.addresses
        of_a = {addr[n] for n in SIGNERS["a"]}
        of_b = {addr[n] for n in SIGNERS["b"]}
        by_p1 = signed(p1)
        by_p2 = signed(q)
        late_b = [s for s, t in by_p1 if s in of_b and t >= first_loss]
        assert not late_b, f"p1 signed {len(late_b)} extrinsic(s) of shard b after losing it"
        assert {s for s, _ in by_p1} <= of_a | of_b
        assert by_p2 and {s for s, _ in by_p2} <= of_b, by_p2
        assert addr["relay-a"] in {s for s, _ in by_p1}, "p1 relays a's workers, signing as a"
        assert addr["relay-b"] in {s for s, _ in by_p2}, "p2 relays b's workers, signing as b"
        assert p1.proc.poll() is None and q.proc.poll() is None
        twice = duplicates(world)
        assert not twice, twice
        print(f"p1 lost shard b {attempts} time(s) before p2 won it")
    finally:
        p1.stop()
        if p2 is not None:
            p2.stop()


def test_owner_of_both_shards_killed_mid_apply_the_other_takes_both_without_duplicates(
    world: World, etcd: EtcdCluster
) -> None:
    # p1 kills itself (SIGKILL) right after its 3rd extrinsic reached the node.
    p1 = start(world, etcd, "p1", "multikill", *BOTH, **{ENV: "after_submit:3"})
    p2: Runner | None = None
    try:
        wait_until(lambda: owns(p1, "a") and owns(p1, "b"), 30, "p1 owns both shards", p1)
        p2 = start(world, etcd, "p2", "multikill", *BOTH)
        q = p2
        wait_standby_for_both(p1, q)
        died = wait_until(lambda: p1.proc.poll() is not None, 90, "p1 killed mid-apply", p1, q)
        assert p1.proc.returncode == -signal.SIGKILL, p1.output()[-3000:]
        in_flight = [h for h, s in p1.by_hash().items() if s == "prepared"]
        assert in_flight, "nothing was in flight"
        both = wait_until(
            lambda: row(q, "a").get("owner") is True and row(q, "b").get("owner") is True,
            30,
            "p2 takes both shards",
            p1,
            q,
        )
        print(f"failover of both shards (SIGKILL -> standby signing): {both - died:.2f}s")
        wait_until(lambda: converged(world), 150, "convergence", q)
        assert "HA: took over" in q.output(), q.output()[-3000:]
        settled_by_q = q.by_hash()
        assert all(settled_by_q.get(h) not in (None, "prepared") for h in in_flight), (
            in_flight,
            settled_by_q,
        )
        twice = duplicates(world)
        assert not twice, twice
    finally:
        p1.stop()
        if p2 is not None:
            p2.stop()


def test_owner_of_one_shard_killed_mid_apply_the_other_takes_it_and_keeps_its_own(
    world: World, etcd: EtcdCluster
) -> None:
    p1 = start(world, etcd, "p1", "onekill", *BOTH)
    p2: Runner | None = None
    try:
        wait_until(lambda: owns(p1, "a") and owns(p1, "b"), 30, "p1 owns both shards", p1)
        # p2 kills itself (SIGKILL) right after its 2nd extrinsic reached the node: it only
        # signs once it owns shard b.
        p2 = start(world, etcd, "p2", "onekill", *BOTH, **{ENV: "after_submit:2"})
        q = p2
        wait_until(lambda: row(q, "b").get("state") == "standby", 30, "p2 is standby", p1, q)
        wait_until(lambda: row(p1, "a").get("relays_running") == 2, 60, "p1 relays a", p1, q)
        split(p1, q, etcd, "onekill")
        died = wait_until(lambda: q.proc.poll() is not None, 90, "p2 killed mid-apply", p1, q)
        assert q.proc.returncode == -signal.SIGKILL, q.output()[-3000:]
        in_flight = [h for h, s in q.by_hash().items() if s == "prepared"]
        assert in_flight, "nothing was in flight"
        a_relays: set[int] = set()

        def p1_signs_b() -> bool:
            a_relays.add(row(p1, "a").get("relays_running", -1))
            return row(p1, "b").get("owner") is True

        back = wait_until(p1_signs_b, 30, "p1 takes shard b back", p1, q)
        print(f"failover of shard b (SIGKILL -> p1 signing): {back - died:.2f}s")
        assert a_relays == {2}, a_relays  # shard a went on untouched
        wait_until(lambda: converged(world), 150, "convergence", p1)
        settled_by_p1 = p1.by_hash()
        assert all(settled_by_p1.get(h) not in (None, "prepared") for h in in_flight), (
            in_flight,
            settled_by_p1,
        )
        twice = duplicates(world)
        assert not twice, twice
    finally:
        p1.stop()
        if p2 is not None:
            p2.stop()
