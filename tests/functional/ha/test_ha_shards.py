"""Two shards (pool-a, pool-b) on two ``run --ha --shard`` processes against a 3-member
etcd and the devnet: each owns its shard, signs only with its own pool's signer and its
own relay signer, and together they bring every worker to computing."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from scalecodec.utils.ss58 import ss58_decode

from tests.faults._faults import calls_in_blocks
from tests.functional.apply._world import World
from tests.functional.ha._etcd import EtcdCluster, etcd_binary
from tests.functional.ha.test_ha_failover import Runner, converged, start, wait_until

pytestmark = pytest.mark.slow

if etcd_binary() is None:
    pytest.skip(
        "etcd not installed (Debian: apt-get install etcd-server; scripts/setup does it)",
        allow_module_level=True,
    )

ACCOUNTS = """\
accounts:
  - {name: owner-a, role: owner, derivation: owner//a}
  - {name: owner-b, role: owner, derivation: owner//b}
  - {name: operator-a, role: operator, derivation: operator//pool-a}
  - {name: operator-b, role: operator, derivation: operator//pool-b}
  - {name: relay-a, role: relay_signer, derivation: relay//a}
  - {name: relay-b, role: relay_signer, derivation: relay//b}
"""
# Each shard its own owner: an owner whose key poolkeeper holds signs pool creation and
# settings, and a signer belongs to one shard.
POOLS = """\
pools:
  - {name: pool-a, pid: 0, owner: owner-a, operator: operator-a, default_stake: 1000 PHA}
  - {name: pool-b, pid: 1, owner: owner-b, operator: operator-b, default_stake: 1000 PHA}
"""
SHARDS = """\
  shards:
    - {name: a, pools: [pool-a], relay_signer: relay-a}
    - {name: b, pools: [pool-b], relay_signer: relay-b}
"""


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path / "world", 4, block_time=0.3, cool_down=3, accounts=ACCOUNTS, pools=POOLS)
    settings = w.inventory / "settings.yaml"
    settings.write_text(settings.read_text() + SHARDS)
    try:
        yield w
    finally:
        w.close()


def test_two_shards_on_two_processes_each_sign_only_their_own(
    world: World, etcd: EtcdCluster
) -> None:
    a = start(world, etcd, "a", "shards", "--shard", "a")
    b = start(world, etcd, "b", "shards", "--shard", "b")
    try:
        wait_until(lambda: a.ha().get("owner") is True, 30, "a owns shard a", a, b)
        wait_until(lambda: b.ha().get("owner") is True, 30, "b owns shard b", a, b)
        assert (a.ha()["shard"], b.ha()["shard"]) == ("a", "b")
        wait_until(lambda: converged(world), 120, "every worker computing", a, b)
        addr = world.addresses
        signed_a = {s for s in a.signers()}
        signed_b = {s for s in b.signers()}
        assert signed_a and signed_b
        assert signed_a <= {addr["operator-a"], addr["relay-a"]}, signed_a
        assert signed_b <= {addr["operator-b"], addr["relay-b"]}, signed_b
        assert addr["operator-a"] in signed_a and addr["operator-b"] in signed_b
        twice = [c for c, n in world.stake_pool_calls().items() if n > 1]
        assert not twice, twice
    finally:
        a.stop()
        b.stop()


TOPPED_UP = """\
accounts:
  - {name: owner-a, role: owner, derivation: owner//a}
  - {name: owner-b, role: owner, derivation: owner//b}
  - {name: funder-a, role: funding, derivation: funder//a}
  - {name: funder-b, role: funding, derivation: funder//b}
  - {name: operator-a, role: operator, derivation: operator//pool-a,
     top_up: {from: funder-a, to: 3000 PHA, max_per_day: 10000 PHA}}
  - {name: operator-b, role: operator, derivation: operator//pool-b,
     top_up: {from: funder-b, to: 3000 PHA, max_per_day: 10000 PHA}}
  - {name: relay-a, role: relay_signer, derivation: relay//a}
  - {name: relay-b, role: relay_signer, derivation: relay//b}
"""
PHA = 10**12


def transfers(world: World) -> list[tuple[str, int]]:
    """Every balance transfer in every block of the chain: (destination, value)."""
    found: list[tuple[str, int]] = []
    for _, call in calls_in_blocks(world.chain):
        if call["call_module"] == "Balances":
            dest = call["args"]["dest"]
            dest = dest.get("Id", dest) if isinstance(dest, dict) else dest
            found.append((str(dest), int(call["args"]["value"])))
    return found


def top_ups(runner: Runner) -> set[str]:
    """Destinations of the top-ups this process sent (its journal's ledger)."""
    db = sqlite3.connect(f"file:{runner.state_dir / 'journal.sqlite'}?mode=ro", uri=True)
    try:
        return {str(r[0]) for r in db.execute("SELECT destination FROM top_ups")}
    finally:
        db.close()


@pytest.fixture
def topped_world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path / "world", 4, block_time=0.3, cool_down=3, accounts=TOPPED_UP, pools=POOLS)
    settings = w.inventory / "settings.yaml"
    settings.write_text(settings.read_text() + SHARDS)
    try:
        yield w
    finally:
        w.close()


def test_two_shard_processes_top_up_each_account_once(
    topped_world: World, etcd: EtcdCluster
) -> None:
    """Both operators are low (1,000 PHA, to: 3,000 PHA) when both processes start: only
    the process of the operator's shard tops it up (before, each process planned every
    account's top-up and both could send it)."""
    world = topped_world
    a = start(world, etcd, "a", "topups", "--shard", "a")
    b = start(world, etcd, "b", "topups", "--shard", "b")
    try:
        wait_until(lambda: a.ha().get("owner") is True, 30, "a owns shard a", a, b)
        wait_until(lambda: b.ha().get("owner") is True, 30, "b owns shard b", a, b)
        wait_until(lambda: converged(world), 120, "every worker computing", a, b)
        time.sleep(4)  # a few more passes of both processes
        addr = world.addresses
        sent = transfers(world)
        print(f"transfers on chain: {[(d[:10], v / PHA) for d, v in sent]}")
        for operator, own, other in (("operator-a", a, b), ("operator-b", b, a)):
            public = ss58_decode(addr[operator])
            total = sum(v for d, v in sent if d.lower().removeprefix("0x") == public)
            # One top-up of 2,000 PHA, then at most the fees it paid since (well under 100).
            assert 2000 * PHA <= total <= 2100 * PHA, (operator, total / PHA)
            # Only the process of the operator's shard ever sent it a top-up.
            assert addr[operator] in top_ups(own), (operator, top_ups(own))
            assert addr[operator] not in top_ups(other), (operator, top_ups(other))
        twice = [c for c, n in world.stake_pool_calls().items() if n > 1]
        assert not twice, twice
    finally:
        a.stop()
        b.stop()
