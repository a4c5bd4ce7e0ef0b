"""The executor and chain adapter against the devnet chain, over its websocket.

Real signing (derived sr25519 keys), real nonces, force_batch, Proxy.proxy by a
StakePoolManager delegate, module errors decoded by name, and crash recovery from
the journal: the simulator counts what it executed, so a double submission shows.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from poolkeeper.apply.executor import Executor, Job
from poolkeeper.apply.journal import Journal, JournalStatus
from poolkeeper.chain import SubstrateChain
from poolkeeper.chain.ports import CallSpec
from poolkeeper.keys import DerivedKey, Mnemonic, derive_keys
from poolkeeper_devnet.chain.server import DevnetChain

PHRASE = "bottom drive obey lake curtain smoke basket hold race lonely fit walk"
PHA = 10**12


class Keys:
    """Alice (funded by the dev preset) plus derived accounts."""

    def __init__(self) -> None:
        from substrateinterface import Keypair

        alice = Keypair.create_from_uri("//Alice", ss58_format=30)
        self.alice = _KeypairSigner(alice)
        self.derived: dict[str, DerivedKey] = derive_keys(
            Mnemonic(PHRASE), ["owner", "manager", "poor"], 30
        )

    def signer(self, account: str) -> object:
        return self.alice if account == "alice" else self.derived[account]

    def address(self, account: str) -> str:
        return self.signer(account).address  # type: ignore[attr-defined, no-any-return]


class _KeypairSigner:
    def __init__(self, keypair: object) -> None:
        self._kp = keypair

    @property
    def address(self) -> str:
        return str(self._kp.ss58_address)  # type: ignore[attr-defined]

    @property
    def public_key(self) -> bytes:
        return bytes(self._kp.public_key)  # type: ignore[attr-defined]

    def sign(self, payload: bytes) -> bytes:
        return bytes(self._kp.sign(payload))  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def devnet() -> Iterator[DevnetChain]:
    handle = DevnetChain.start("dev", block_time="0.1s", finality_lag=1)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
async def chain(devnet: DevnetChain) -> AsyncIterator[SubstrateChain]:
    adapter = SubstrateChain(devnet.url, poll_seconds=0.05)
    yield adapter
    await adapter.close()


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal(tmp_path / "journal.sqlite")
    yield j
    j.close()


def transfer(dest: str, amount: int) -> CallSpec:
    return CallSpec("Balances", "transfer_keep_alive", {"dest": dest, "value": amount})


async def fund(executor: Executor, keys: Keys, *names: str, amount: int = 1000 * PHA) -> None:
    jobs = [Job(f"fund:{n}", transfer(keys.address(n), amount), "alice") for n in names]
    results = await executor.execute_jobs(jobs)
    assert all(r.ok for r in results), results


async def test_many_calls_of_one_signer_go_out_as_concurrent_batches(
    chain: SubstrateChain, journal: Journal
) -> None:
    keys = Keys()
    executor = Executor(chain, chain, journal, keys)  # type: ignore[arg-type]
    dest = keys.address("poor")
    before = (await chain.read_state((), (dest,))).accounts[dest].free
    jobs = [Job(f"t{i}", transfer(dest, PHA), "alice") for i in range(230)]
    results = await executor.execute_jobs(jobs)
    assert all(r.ok for r in results)
    entries = journal.entries()
    assert [len(e.action_ids) for e in entries] == [100, 100, 30]
    assert [e.nonce for e in entries] == list(range(entries[0].nonce, entries[0].nonce + 3))
    assert all(e.status is JournalStatus.IN_BLOCK for e in entries)
    after = (await chain.read_state((), (dest,))).accounts[dest].free
    assert after - before == 230 * PHA


async def test_proxied_pool_calls_map_module_errors_per_item(
    chain: SubstrateChain, journal: Journal
) -> None:
    keys = Keys()
    executor = Executor(chain, chain, journal, keys)  # type: ignore[arg-type]
    await fund(executor, keys, "owner", "manager")
    owner = keys.address("owner")
    setup = await executor.execute_jobs(
        [
            Job("create", CallSpec("PhalaStakePoolv2", "create"), "owner"),
            Job(
                "proxy",
                CallSpec(
                    "Proxy",
                    "add_proxy",
                    {
                        "delegate": keys.address("manager"),
                        "proxy_type": "StakePoolManager",
                        "delay": 0,
                    },
                ),
                "owner",
            ),
        ]
    )
    assert all(r.ok for r in setup), setup
    created = [e for e in setup[0].events if e.name == "PoolCreated"]
    assert len(created) == 1 and created[0].attributes["owner"] == owner
    state = await chain.read_state(list(range(20)), ())
    [pid] = [p.pid for p in state.pools.values() if p.owner == owner]
    ghost = "0x" + "ab" * 32
    results = await executor.execute_jobs(
        [
            Job(
                "add-ghost",
                CallSpec("PhalaStakePoolv2", "add_worker", {"pid": pid, "pubkey": ghost}),
                "manager",
                "owner",
            ),
            Job("transfer-in-proxy", transfer(keys.address("poor"), PHA), "manager", "owner"),
        ]
    )
    by_id = {r.action_id: r for r in results}
    assert not by_id["add-ghost"].ok
    assert by_id["add-ghost"].error is not None and by_id["add-ghost"].error.startswith("Phala")
    # A StakePoolManager proxy may not transfer the owner's funds.
    assert not by_id["transfer-in-proxy"].ok
    assert "CallFiltered" in (by_id["transfer-in-proxy"].error or "")


async def test_signer_without_funds_fails_alone(chain: SubstrateChain, journal: Journal) -> None:
    keys = Keys()
    keys.derived = derive_keys(Mnemonic(PHRASE), ["owner", "manager", "empty"], 30)
    keys.derived["poor"] = keys.derived["empty"]
    executor = Executor(chain, chain, journal, keys)  # type: ignore[arg-type]
    results = await executor.execute_jobs(
        [
            Job("rich", transfer(keys.address("manager"), PHA), "alice"),
            Job("broke", transfer(keys.address("alice"), PHA), "empty"),
        ]
    )
    by_id = {r.action_id: r for r in results}
    assert by_id["rich"].ok
    assert not by_id["broke"].ok and "cannot pay the fees" in (by_id["broke"].error or "")


async def test_crash_after_submit_is_recovered_without_a_second_submission(
    chain: SubstrateChain, journal: Journal
) -> None:
    keys = Keys()
    dest = keys.address("manager")
    start_nonce = await chain.account_nonce(keys.address("alice"))
    before = (await chain.read_state((), (dest,))).accounts[dest].free
    # What a crashed apply leaves behind: journaled, sent, never settled.
    signed = await chain.sign(keys.alice, [transfer(dest, 7 * PHA)], nonce=start_nonce)
    journal.record_prepared(
        extrinsic_hash=signed.extrinsic_hash,
        signer=signed.signer,
        nonce=signed.nonce,
        data=signed.data,
        action_ids=["crashed"],
        era_start=signed.era_start,
        era_period=signed.era_period,
    )
    await chain.send(signed)
    # And one that was journaled but never left the machine.
    unsent = await chain.sign(keys.alice, [transfer(dest, 5 * PHA)], nonce=start_nonce + 1)
    journal.record_prepared(
        extrinsic_hash=unsent.extrinsic_hash,
        signer=unsent.signer,
        nonce=unsent.nonce,
        data=unsent.data,
        action_ids=["unsent"],
        era_start=unsent.era_start,
        era_period=unsent.era_period,
    )
    executor = Executor(chain, chain, journal, keys)  # type: ignore[arg-type]
    results = await executor.recover()
    # The sent one is found in its block; the unsent one is pending: its bytes are
    # re-submitted, and a later resolution (the next pass) finds it included.
    assert {r.action_id: r.ok for r in results} == {"crashed": True}
    for _ in range(100):
        results += await executor.recover()
        if len(results) == 2:
            break
        await asyncio.sleep(0.1)
    assert {r.action_id: r.ok for r in results} == {"crashed": True, "unsent": True}
    await asyncio.sleep(0.3)
    after = (await chain.read_state((), (dest,))).accounts[dest].free
    assert after - before == 12 * PHA  # each exactly once
    assert await chain.account_nonce(keys.address("alice")) == start_nonce + 2
    assert journal.unsettled() == []
