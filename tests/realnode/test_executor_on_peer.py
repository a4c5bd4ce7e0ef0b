"""The executor and chain adapter on every chain peer: chopsticks running the real
Asset Hub runtime, and the devnet simulator.

What poolkeeper's apply path does with a real runtime: a batch of transfers with one
failing item (force_batch, or batch where the runtime lacks it: later items are then
reported not executed), each result mapped back to its action; ``Proxy.proxy`` signed by
a delegate; three extrinsics of one signer in flight at once with consecutive nonces; a
signer with no funds failing alone with a clear message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from substrateinterface import Keypair

from poolkeeper.apply.executor import Executor, Job
from poolkeeper.apply.journal import Journal, JournalStatus
from poolkeeper.chain import SubstrateChain
from poolkeeper.chain.ports import CallSpec, Signer
from tests.peers import ChainPeer


class KeypairSigner:
    """A substrate-interface keypair as the product's ``Signer``."""

    def __init__(self, keypair: Keypair) -> None:
        self._kp = keypair

    @property
    def address(self) -> str:
        return str(self._kp.ss58_address)

    @property
    def public_key(self) -> bytes:
        return bytes(self._kp.public_key)

    def sign(self, payload: bytes) -> bytes:
        return bytes(self._kp.sign(payload))


class Signers:
    """Account names → keypairs, as the executor's ``SignerSource``."""

    def __init__(self, **keypairs: Keypair) -> None:
        self._signers = {name: KeypairSigner(kp) for name, kp in keypairs.items()}

    def signer(self, account: str) -> Signer:
        return self._signers[account]

    def address(self, account: str) -> str:
        return self._signers[account].address


@pytest.fixture
async def chain(peer: ChainPeer) -> AsyncIterator[SubstrateChain]:
    adapter = SubstrateChain(peer.url, poll_seconds=0.05, timeout_seconds=60)
    yield adapter
    await adapter.close()


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal(tmp_path / "journal.sqlite")
    yield j
    j.close()


def transfer(dest: str, amount: int) -> CallSpec:
    return CallSpec("Balances", "transfer_keep_alive", {"dest": dest, "value": amount})


async def free(chain: SubstrateChain, address: str) -> int:
    state = await chain.read_state((), (address,))
    return state.accounts[address].free


async def test_batch_with_a_failing_item_maps_each_result_to_its_action(
    peer: ChainPeer, chain: SubstrateChain, journal: Journal
) -> None:
    payer = peer.new_account("batch-payer", 1000)
    dest = peer.new_account("batch-dest", 10)
    stranger = peer.new_account("batch-stranger")
    executor = Executor(chain, chain, journal, Signers(payer=payer))
    before = await free(chain, dest.ss58_address)
    not_a_proxy = CallSpec(
        "Proxy",
        "remove_proxy",
        {"delegate": stranger.ss58_address, "proxy_type": "Any", "delay": 0},
    )
    jobs = [
        Job("first", transfer(dest.ss58_address, peer.unit), "payer"),
        Job("failing", not_a_proxy, "payer"),
        Job("third", transfer(dest.ss58_address, 2 * peer.unit), "payer"),
    ]
    by_id = {r.action_id: r for r in await executor.execute_jobs(jobs)}
    assert by_id["first"].ok, by_id["first"]
    assert not by_id["failing"].ok
    assert "NotFound" in (by_id["failing"].error or ""), by_id["failing"]
    received = await free(chain, dest.ss58_address) - before
    if by_id["third"].ok:  # force_batch: the items after a failure still run
        assert received == 3 * peer.unit
    else:  # batch: interrupted at the failure, later items not executed
        assert "not executed" in (by_id["third"].error or ""), by_id["third"]
        assert received == peer.unit
    [entry] = journal.entries()
    assert entry.action_ids == ("first", "failing", "third")
    assert entry.status is JournalStatus.IN_BLOCK


async def test_overdraft_item_reads_as_the_runtimes_error(
    peer: ChainPeer, chain: SubstrateChain, journal: Journal
) -> None:
    """The per-action result names the runtime's error readably, a module error
    (``Balances.InsufficientBalance``) as well as a Token one (``Token.FundsUnavailable``)."""
    payer = peer.new_account("overdraft-payer", 10)
    dest = peer.new_account("overdraft-dest", 1)
    executor = Executor(chain, chain, journal, Signers(payer=payer))
    jobs = [
        Job("fine", transfer(dest.ss58_address, peer.unit), "payer"),
        Job("overdraft", transfer(dest.ss58_address, 100 * peer.unit), "payer"),
    ]
    by_id = {r.action_id: r for r in await executor.execute_jobs(jobs)}
    assert by_id["fine"].ok, by_id["fine"]
    assert not by_id["overdraft"].ok
    assert by_id["overdraft"].error is not None
    assert peer.overdraft_error in by_id["overdraft"].error, by_id["overdraft"]


async def test_proxy_call_signed_by_a_delegate(
    peer: ChainPeer, chain: SubstrateChain, journal: Journal
) -> None:
    real = peer.new_account("proxy-real", 1000)
    delegate = peer.new_account("proxy-delegate", 100)
    dest = peer.new_account("proxy-dest", 10)
    executor = Executor(chain, chain, journal, Signers(real=real, delegate=delegate))
    grant = CallSpec(
        "Proxy",
        "add_proxy",
        {"delegate": delegate.ss58_address, "proxy_type": "Any", "delay": 0},
    )
    [granted] = await executor.execute_jobs([Job("grant", grant, "real")])
    assert granted.ok, granted
    real_before = await free(chain, real.ss58_address)
    dest_before = await free(chain, dest.ss58_address)
    [paid] = await executor.execute_jobs(
        [Job("pay", transfer(dest.ss58_address, 5 * peer.unit), "delegate", proxy_for="real")]
    )
    assert paid.ok, paid
    assert await free(chain, dest.ss58_address) - dest_before == 5 * peer.unit
    # The real account paid the 5 tokens; the delegate paid the fee.
    assert real_before - await free(chain, real.ss58_address) == 5 * peer.unit
    assert journal.entries()[-1].signer == delegate.ss58_address


async def test_three_batches_of_one_signer_in_flight_together(
    peer: ChainPeer, chain: SubstrateChain, journal: Journal
) -> None:
    payer = peer.new_account("inflight-payer", 1000)
    dest = peer.new_account("inflight-dest", 10)
    executor = Executor(chain, chain, journal, Signers(payer=payer), max_batch=2)
    before = await free(chain, dest.ss58_address)
    jobs = [Job(f"t{i}", transfer(dest.ss58_address, peer.unit), "payer") for i in range(6)]
    results = await executor.execute_jobs(jobs)
    assert all(r.ok for r in results), results
    entries = journal.entries()
    assert [len(e.action_ids) for e in entries] == [2, 2, 2]
    first = entries[0].nonce
    assert sorted(e.nonce for e in entries) == [first, first + 1, first + 2]
    assert all(e.status is JournalStatus.IN_BLOCK for e in entries)
    assert await free(chain, dest.ss58_address) - before == 6 * peer.unit
    assert await chain.account_nonce(payer.ss58_address) == first + 3


async def test_signer_without_funds_fails_alone_with_a_clear_message(
    peer: ChainPeer, chain: SubstrateChain, journal: Journal
) -> None:
    rich = peer.new_account("nofee-rich", 1000)
    broke = peer.new_account("nofee-broke")
    dest = peer.new_account("nofee-dest", 10)
    executor = Executor(chain, chain, journal, Signers(rich=rich, broke=broke))
    results = await executor.execute_jobs(
        [
            Job("rich", transfer(dest.ss58_address, peer.unit), "rich"),
            Job("broke", transfer(dest.ss58_address, peer.unit), "broke"),
        ]
    )
    by_id = {r.action_id: r for r in results}
    assert by_id["rich"].ok, by_id["rich"]
    assert not by_id["broke"].ok
    assert "cannot pay the fees" in (by_id["broke"].error or ""), by_id["broke"]
    assert [e.signer for e in journal.entries()] == [rich.ss58_address]
