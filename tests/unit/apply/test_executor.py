"""Executor behaviour: batching per signer, waves, fee checks, per-item results, crash recovery."""

from __future__ import annotations

from pathlib import Path

import pytest

from poolkeeper.apply.executor import Executor
from poolkeeper.apply.journal import Journal, JournalStatus
from poolkeeper.model.actions import Action, ActionKind
from tests.unit.apply.fake_chain import FakeChain, FakeSigners


def add_worker(
    i: int, signer: str = "op", proxy_for: str | None = None, prereq: tuple[str, ...] = ()
) -> Action:
    return Action(
        id=f"add_worker:worker/w{i}",
        kind=ActionKind.ADD_WORKER,
        target=f"worker/w{i}",
        reason="scored and not in pool",
        pid=1,
        pubkey=f"{i:064x}",
        signer=signer,
        proxy_for=proxy_for,
        prerequisites=prereq,
    )


def start(i: int, signer: str = "op") -> Action:
    return Action(
        id=f"start_computing:worker/w{i}",
        kind=ActionKind.START_COMPUTING,
        target=f"worker/w{i}",
        reason="ready",
        pid=1,
        pubkey=f"{i:064x}",
        amount=10**15,
        signer=signer,
        prerequisites=(f"add_worker:worker/w{i}",),
    )


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "journal.sqlite")


def make(chain: FakeChain, journal: Journal) -> Executor:
    return Executor(chain, chain, journal, FakeSigners())


async def test_batches_of_at_most_100_with_consecutive_nonces(journal: Journal) -> None:
    chain = FakeChain(balances={"addr-op": 10**6}, nonces={"addr-op": 7})
    results = await make(chain, journal).execute([add_worker(i) for i in range(250)])
    assert all(r.ok for r in results)
    entries = journal.entries()
    assert [e.nonce for e in entries] == [7, 8, 9]
    assert [len(e.action_ids) for e in entries] == [100, 100, 50]
    assert len(chain.executed) == 250


async def test_prerequisites_run_in_later_waves_and_failures_skip_dependents(
    journal: Journal,
) -> None:
    chain = FakeChain(
        balances={"addr-op": 10**6}, failing_calls={("add_worker", "0x" + f"{1:064x}")}
    )
    actions = [add_worker(0), add_worker(1), start(0), start(1)]
    results = {r.action_id: r for r in await make(chain, journal).execute(actions)}
    assert results["add_worker:worker/w0"].ok
    assert results["add_worker:worker/w1"].error == "PhalaStakePoolv2.WorkerIsNotReady"
    assert results["start_computing:worker/w0"].ok
    assert results["start_computing:worker/w1"].error == (
        "skipped: prerequisite add_worker:worker/w1 failed"
    )
    assert [f for f, _ in chain.executed] == ["add_worker", "start_computing"]
    assert len(journal.entries()) == 2  # one extrinsic per wave


async def test_signer_without_fee_money_fails_alone(journal: Journal) -> None:
    chain = FakeChain(balances={"addr-rich": 10**6, "addr-poor": 3})
    actions = [add_worker(0, signer="rich"), add_worker(1, signer="poor")]
    results = {r.action_id: r for r in await make(chain, journal).execute(actions)}
    assert results["add_worker:worker/w0"].ok
    assert not results["add_worker:worker/w1"].ok
    assert "cannot pay the fees" in (results["add_worker:worker/w1"].error or "")
    assert [f for f, _ in chain.executed] == ["add_worker"]


async def test_proxied_and_direct_calls_of_one_signer_go_in_separate_extrinsics(
    journal: Journal,
) -> None:
    chain = FakeChain(balances={"addr-op": 10**6})
    actions = [add_worker(0), add_worker(1, proxy_for="owner")]
    await make(chain, journal).execute(actions)
    assert sorted(e.nonce for e in journal.entries()) == [0, 1]


async def test_stale_nonce_is_re_read_and_retried_once(journal: Journal) -> None:
    chain = FakeChain(balances={"addr-op": 10**6}, nonces={"addr-op": 0})
    executor = make(chain, journal)
    await executor.execute([add_worker(0)])
    chain.nonces["addr-op"] = 5  # another tool used the account meanwhile
    results = await executor.execute([add_worker(1)])
    assert results[0].ok
    statuses = [e.status for e in journal.entries()]
    assert statuses == [JournalStatus.IN_BLOCK, JournalStatus.REJECTED, JournalStatus.IN_BLOCK]


async def test_lost_reply_is_recovered_without_sending_again(journal: Journal) -> None:
    chain = FakeChain(balances={"addr-op": 10**6}, drop_connection_after_include=1)
    first = await make(chain, journal).execute([add_worker(0)])
    assert not first[0].ok and "will be resolved" in (first[0].error or "")
    assert journal.pending_action_ids() == {"add_worker:worker/w0"}
    # A new process (after the crash) recovers from the journal first.
    recovered = await make(chain, journal).recover()
    assert [r.ok for r in recovered] == [True]
    assert journal.pending_action_ids() == set()
    assert len(chain.executed) == 1
    assert len(chain.sent_hashes) == 1


async def test_prepared_but_never_sent_is_sent_with_the_same_bytes(journal: Journal) -> None:
    chain = FakeChain(balances={"addr-op": 10**6})
    signed = await chain.sign(FakeSigners().signer("op"), [], nonce=0)
    journal.record_prepared(
        extrinsic_hash=signed.extrinsic_hash,
        signer=signed.signer,
        nonce=0,
        data=signed.data,
        action_ids=["x"],
        era_start=None,
        era_period=None,
    )
    executor = make(chain, journal)
    # Pending (its nonce is not used, it is in no block): the same bytes are re-submitted
    # and it stays pending until a block is seen to hold it.
    assert await executor.recover() == []
    assert chain.sent_hashes == [signed.extrinsic_hash]
    assert journal.pending_action_ids() == {"x"}
    results = await executor.recover()
    assert [r.action_id for r in results] == ["x"]
    assert journal.entries()[0].status is JournalStatus.IN_BLOCK
    assert chain.sent_hashes == [signed.extrinsic_hash]


async def test_prepared_whose_nonce_was_consumed_is_dropped(journal: Journal) -> None:
    chain = FakeChain(balances={"addr-op": 10**6}, nonces={"addr-op": 3})
    signed = await chain.sign(FakeSigners().signer("op"), [], nonce=1)
    journal.record_prepared(
        extrinsic_hash=signed.extrinsic_hash,
        signer=signed.signer,
        nonce=1,
        data=signed.data,
        action_ids=["x"],
        era_start=None,
        era_period=None,
    )
    results = await make(chain, journal).recover()
    assert not results[0].ok and "used by another extrinsic" in (results[0].error or "")
    assert journal.entries()[0].status is JournalStatus.DROPPED
    assert chain.sent_hashes == []


async def test_balances_of_all_signers_are_read_once_per_wave(journal: Journal) -> None:
    reads: list[tuple[str, ...]] = []

    class CountingChain(FakeChain):
        async def read_state(self, pids, addresses, pubkeys=()):  # type: ignore[no-untyped-def]
            reads.append(tuple(addresses))
            return await super().read_state(pids, addresses, pubkeys)

    signers = ("a", "b", "c")
    chain = CountingChain(balances={f"addr-{s}": 10**6 for s in signers})
    actions = [add_worker(i, signer=signers[i % 3]) for i in range(6)]
    actions += [start(i, signer=signers[i % 3]) for i in range(6)]
    results = await make(chain, journal).execute(actions)
    assert all(r.ok for r in results)
    assert reads == [("addr-a", "addr-b", "addr-c")] * 2  # two waves, one read each
    assert len(journal.entries()) == 6  # one extrinsic per signer and wave


class _Audit:
    def __init__(self) -> None:
        from poolkeeper.apply.audit import AuditEntry

        self.entries: list[AuditEntry] = []

    def record(self, entry: object) -> None:
        from poolkeeper.apply.audit import AuditEntry

        assert isinstance(entry, AuditEntry)
        self.entries.append(entry)


async def test_every_settled_extrinsic_reaches_the_audit_sink(journal: Journal) -> None:
    chain = FakeChain(
        balances={"addr-op": 10**6}, failing_calls={("add_worker", "0x" + f"{1:064x}")}
    )
    audit = _Audit()
    executor = Executor(chain, chain, journal, FakeSigners(), audit=audit)
    actions = [
        add_worker(0).model_copy(update={"worker": "w0", "pool": "p"}),
        add_worker(1).model_copy(update={"worker": "w1", "pool": "p"}),
    ]
    await executor.execute(actions)
    [entry] = audit.entries
    assert entry.extrinsic_hash == journal.entries()[0].extrinsic_hash
    assert (entry.signer_name, entry.signer_address) == ("op", "addr-op")
    assert entry.fee == chain.fee and not entry.fee_estimated
    calls = [(c.call, c.action, c.worker, c.pool, c.ok, c.error) for c in entry.calls]
    assert calls == [
        ("PhalaStakePoolv2.add_worker", "add_worker:worker/w0", "w0", "p", True, None),
        (
            "PhalaStakePoolv2.add_worker",
            "add_worker:worker/w1",
            "w1",
            "p",
            False,
            "PhalaStakePoolv2.WorkerIsNotReady",
        ),
    ]
