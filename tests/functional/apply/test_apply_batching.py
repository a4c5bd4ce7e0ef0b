"""A reconcile pass adding 150 scored workers to proxied pools and starting them all:
2 pools (one batch per operator and wave), or 1 pool (its operator has two batches per
wave in flight, with consecutive nonces).

The devnet chain starts with the workers registered and scored but in no pool (operated
by the pools' owners); the inventory wants them computing. ``Reconciler.reconcile_once``
observes through the chain adapter, plans, and executes: the add_worker wave, then the
start_computing wave once the first is included. Each wave must go out in at most
ceil(calls / 100) extrinsics (``Utility.force_batch`` inside ``Proxy.proxy``), every
extrinsic must be journaled and found on chain exactly once, no pool call may be included
twice, and the chain must end with every worker computing in its pool.

The pRuntimes are not what this test is about: the observer gets a source that reports
each one synced with its public key, and no relays are started.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from poolkeeper.app import build_ports
from poolkeeper.apply.journal import Journal, JournalStatus
from poolkeeper.chain import SubstrateChain
from poolkeeper.inventory import load_inventory
from poolkeeper.keys import KeyRing, Mnemonic
from poolkeeper.loop import Reconciler
from poolkeeper.model.actions import ActionKind
from poolkeeper.model.desired import Desired
from poolkeeper.model.observed import Observed, PRuntimeInfo, SessionState
from poolkeeper.observe.observer import observe
from poolkeeper.plan import PlanPolicy
from poolkeeper.relay.worker import RelayOptions
from poolkeeper_devnet.chain.server import DevnetChain
from poolkeeper_devnet.command import genesis_for
from tests.functional.apply._world import PHRASE, _stake_pool_calls

WORKERS = 150
STAKE = 1000 * 10**12
MAX_CALLS = 100


def worker_pubkey(index: int) -> str:
    return hashlib.blake2b(b"batching:" + index.to_bytes(4, "little"), digest_size=32).hexdigest()


def write_inventory(directory: Path, chain_url: str, pools_count: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    accounts = ["accounts:"]
    pools = ["pools:"]
    for pid in range(pools_count):
        accounts.append(f"  - {{name: owner-{pid}, role: owner, derivation: owner//{pid}}}")
        accounts.append(
            f"  - {{name: operator-{pid}, role: operator, derivation: operator//{pid}}}"
        )
        pools.append(
            f"  - {{name: pool-{pid}, pid: {pid}, owner: owner-{pid}, operator: operator-{pid},"
            " default_stake: 1000 PHA}"
        )
    workers = ["workers:"] + [
        f"  - {{name: w{i:03d}, endpoint: 'http://127.0.0.1:9/w/{i}', "
        f"pool: pool-{i * pools_count // WORKERS}}}"
        for i in range(WORKERS)
    ]
    for name, lines in (("accounts", accounts), ("pools", pools), ("workers", workers)):
        (directory / f"{name}.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (directory / "settings.yaml").write_text(
        "settings:\n  network: devnet\n"
        f'  chain: {{endpoints: ["{chain_url}"], wait_for: inclusion}}\n'
        "  secrets: {env: POOLKEEPER_MNEMONIC}\n",
        encoding="utf-8",
    )


class SyncedPRuntimes:
    """Every pRuntime initialized and synced, reporting its worker's public key."""

    def __init__(self, desired: Desired) -> None:
        self._keys = {w.endpoint: worker_pubkey(i) for i, w in enumerate(desired.workers)}

    async def get_info(self, endpoint: str) -> PRuntimeInfo:
        key = self._keys[endpoint]
        return PRuntimeInfo(
            initialized=True, registered=True, headernum=10**6, blocknum=10**6, public_key=key
        )


class ChainOnlyReconciler(Reconciler):
    """The product's pass with the stand-in pRuntime source and no relays."""

    async def observe(self) -> Observed:
        return await observe(self.desired, self.chain, SyncedPRuntimes(self.desired))

    def relay_plan(self, observed: Observed) -> dict[str, tuple[str, RelayOptions]]:
        return {}


@pytest.fixture(params=[2, 1], ids=["2-pools", "1-pool"])
def world(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[DevnetChain, Desired, Path]]:
    """2 pools: one batch per signer and wave; 1 pool: two batches of one signer per wave,
    in flight together with consecutive nonces."""
    pools_count: int = request.param
    inventory = tmp_path / "inventory"
    write_inventory(inventory, "ws://127.0.0.1:1", pools_count)
    desired = load_inventory(inventory)
    ring = KeyRing(desired, Mnemonic(PHRASE))
    addresses = {a.name: ring.address(a.name) for a in desired.accounts}
    genesis = genesis_for(desired, addresses, cool_down=60)
    owners = {p.name: addresses[p.owner] for p in desired.pools}
    genesis["phala"]["workers"] = [
        {
            "pubkey": "0x" + worker_pubkey(i),
            "operator": owners[w.pool or ""],
            "initial_score": 1000,
        }
        for i, w in enumerate(desired.workers)
    ]
    # No relay answers heartbeats here: with the devnet's 30 blocks (6 s at 0.2 s blocks) a
    # loaded machine read a computing worker back as WorkerUnresponsive. Not this test's
    # subject: its workers never go unresponsive.
    genesis["phala"]["unresponsive_after"] = 10**6
    chain = DevnetChain.start(genesis, block_time=0.2, finality_lag=1)
    try:
        write_inventory(inventory, chain.url, pools_count)
        yield chain, load_inventory(inventory), tmp_path / "state"
    finally:
        chain.stop()


async def test_each_wave_goes_out_in_full_batches_and_lands(
    world: tuple[DevnetChain, Desired, Path],
) -> None:
    chain, desired, state_dir = world
    pools_count = len(desired.pools)
    reconciler = ChainOnlyReconciler(
        desired,
        build_ports(desired, mnemonic=Mnemonic(PHRASE), state_dir=state_dir, chain_url=chain.url),
    )
    try:
        result = await reconciler.reconcile_once(PlanPolicy())
    finally:
        await reconciler.close()

    kinds = Counter(a.kind for a in result.plan.actions)
    plan = result.plan
    expected = {ActionKind.ADD_WORKER: WORKERS, ActionKind.START_COMPUTING: WORKERS}
    assert kinds == expected, (plan.alerts[:3], plan.waits[:3])
    failed = [r for r in result.results if not r.ok]
    assert failed == [], failed[:3]

    journal = Journal(state_dir / "journal.sqlite")
    entries = journal.entries()
    journal.close()
    assert all(e.status is JournalStatus.IN_BLOCK for e in entries)
    kind_of = {a.id: a.kind for a in result.plan.actions}
    waves: dict[ActionKind, list[int]] = {}
    for entry in entries:
        [kind] = {kind_of[i] for i in entry.action_ids}  # a batch never mixes waves
        assert entry.block_number is not None
        waves.setdefault(kind, []).append(entry.block_number)
    for kind, blocks in waves.items():
        assert len(blocks) <= math.ceil(WORKERS / MAX_CALLS), (kind, len(blocks))
    assert min(waves[ActionKind.START_COMPUTING]) > max(waves[ActionKind.ADD_WORKER])
    nonces: dict[str, list[int]] = {}
    for entry in entries:
        nonces.setdefault(entry.signer, []).append(entry.nonce)
    assert len(nonces) == pools_count  # each pool's operator signs its own batches
    for signer_nonces in nonces.values():
        assert sorted(signer_nonces) == list(range(len(signer_nonces)))  # none lost or reused

    # The chain's own blocks: every journaled extrinsic once, nothing else signed by us,
    # and no pool call twice.
    journaled = {e.extrinsic_hash for e in entries}
    on_chain = chain.call(lambda: _extrinsic_hashes(chain))
    assert Counter(h for h in on_chain if h in journaled) == Counter(dict.fromkeys(journaled, 1))
    assert len(on_chain) == len(journaled)
    pool_calls = chain.call(_stake_pool_calls(chain))
    assert sum(pool_calls.values()) == 2 * WORKERS
    assert max(pool_calls.values()) == 1

    adapter = SubstrateChain(chain.url)
    try:
        state = await adapter.read_state(list(range(pools_count)), ())
    finally:
        await adapter.close()
    for i, worker in enumerate(desired.workers):
        pid = i * pools_count // WORKERS
        seen = state.workers[worker_pubkey(i)]
        assert worker_pubkey(i) in state.pools[pid].workers, worker.name
        assert seen.pool_pid == pid and seen.stake == STAKE, seen
        assert seen.session_state is SessionState.WORKER_IDLE, seen


def _extrinsic_hashes(handle: DevnetChain) -> list[str]:
    chain = handle.chain
    return [
        "0x" + hashlib.blake2b(raw, digest_size=32).hexdigest()
        for number in sorted(chain.blocks)
        for raw in chain.blocks[number].extrinsics
    ]
