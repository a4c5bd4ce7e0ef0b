"""Two shards (pool-a, pool-b) on two ``run --ha --shard`` processes against a 3-member
etcd and the devnet: each owns its shard, signs only with its own pool's signer and its
own relay signer, and together they bring every worker to computing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.functional.apply._world import World
from tests.functional.ha._etcd import EtcdCluster, etcd_binary
from tests.functional.ha.test_ha_failover import converged, start, wait_until

pytestmark = pytest.mark.slow

if etcd_binary() is None:
    pytest.skip(
        "etcd not installed (Debian: apt-get install etcd-server; scripts/setup does it)",
        allow_module_level=True,
    )

ACCOUNTS = """\
accounts:
  - {name: owner, role: owner, derivation: owner}
  - {name: operator-a, role: operator, derivation: operator//pool-a}
  - {name: operator-b, role: operator, derivation: operator//pool-b}
  - {name: relay-a, role: relay_signer, derivation: relay//a}
  - {name: relay-b, role: relay_signer, derivation: relay//b}
"""
SHARDS = """\
  shards:
    - {name: a, pools: [pool-a], relay_signer: relay-a}
    - {name: b, pools: [pool-b], relay_signer: relay-b}
"""


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path / "world", 4, block_time=0.3, cool_down=3, accounts=ACCOUNTS)
    settings = w.inventory / "settings.yaml"
    settings.write_text(settings.read_text() + SHARDS)
    try:
        yield w
    finally:
        w.close()


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    cluster = EtcdCluster(tmp_path_factory.mktemp("etcd"))
    try:
        yield cluster
    finally:
        cluster.close()


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
