"""The reconciler's pass, driven through fakes of its ports: what it observes through the
chain and pRuntime ports is planned, and executed through the chain writer; an action
carried by an extrinsic still pending in the journal is not sent again."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from poolkeeper.apply.journal import Journal
from poolkeeper.apply.pool_settings import PoolSettingsMemory
from poolkeeper.chain.ports import ChainState, SignedExtrinsic, TransferScan
from poolkeeper.chain.relay_source import RelaySource
from poolkeeper.keys import KeyRing, Mnemonic
from poolkeeper.loop import Reconciler, ReconcilerPorts, RelayPort
from poolkeeper.model.actions import ActionKind, Plan
from poolkeeper.model.conditions import Conditions, with_ha_lease
from poolkeeper.model.desired import Desired
from poolkeeper.model.observed import ChainHead, ChainWorker, Observed, ObservedPool, RelayStatus
from poolkeeper.notify import AlertEvent
from poolkeeper.observe.pruntime_info import PRuntimeInfoReader
from poolkeeper.observe.pubkeys import PubkeyMemory
from poolkeeper.plan import PlanPolicy
from poolkeeper.pruntime import PhactoryInfo
from poolkeeper.relay.external import ExternalRelayFactory
from poolkeeper.relay.supervisor import AnyRelayOptions
from poolkeeper.relay.worker import RelayOptions, Submit
from tests.unit.apply.fake_chain import FakeChain

PHRASE = "bottom drive obey lake curtain smoke basket hold race lonely fit walk"
PUBKEY = "ab" * 32
ENDPOINT = "http://10.0.0.1:8000"


@dataclass
class Chain(FakeChain):
    """``FakeChain`` (the writer) with a pool and a registered worker to read."""

    owner: str = ""
    pool_workers: tuple[str, ...] = ()
    pending_pool: set[str] = field(default_factory=set)
    """Extrinsic hashes a node's pool holds: a re-submission is refused as imported."""
    resubmitted: list[str] = field(default_factory=list)
    closed: bool = False

    async def read_state(
        self, pids: Sequence[int], addresses: Sequence[str], pubkeys: Sequence[str] = ()
    ) -> ChainState:
        state = await super().read_state(pids, addresses, pubkeys)
        worker = ChainWorker(pubkey=PUBKEY, operator=self.owner, initial_score=100)
        return ChainState(
            head=ChainHead(best_number=self.block, finalized_number=self.block - 2),
            cool_down_period=60,
            workers={PUBKEY: worker},
            pools={3: ObservedPool(pid=3, owner=self.owner, workers=self.pool_workers)},
            accounts=state.accounts,
            proxies=(),
        )

    async def resubmit(self, signed: SignedExtrinsic) -> str | None:
        self.resubmitted.append(signed.extrinsic_hash)
        if signed.extrinsic_hash in self.pending_pool:
            return "1013: Transaction Already Imported"
        return await super().resubmit(signed)

    async def transfers_from(
        self, senders: Sequence[str], *, since_ms: int, after_block: int | None
    ) -> TransferScan:
        return TransferScan((), (after_block or 0) + 1, self.block, 0)

    async def close(self) -> None:
        self.closed = True


class PRuntime:
    """The pRuntime port's client: a synced, registered worker."""

    def __init__(self, asked: list[str], url: str) -> None:
        self._asked, self._url = asked, url

    async def get_info(self) -> PhactoryInfo:
        self._asked.append(self._url)
        return PhactoryInfo(
            initialized=True,
            registered=True,
            headernum=101,
            blocknum=101,
            public_key=PUBKEY,
            score=100,
        )


class Transport:
    """A pRuntime transport handing out fake clients; remembers what was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def client(self, url: str) -> PRuntime:
        return PRuntime(self.asked, url)


@dataclass
class Relays:
    """The relay port: records the wanted relays instead of running them."""

    wanted: dict[str, tuple[str, AnyRelayOptions]] = field(default_factory=dict)
    stopped: bool = False

    def reconcile(self, wanted: Mapping[str, tuple[str, AnyRelayOptions]]) -> None:
        self.wanted = dict(wanted)

    def statuses(self) -> dict[str, RelayStatus]:
        return {name: RelayStatus.RUNNING for name in self.wanted}

    def details(self) -> dict[str, str]:
        return {}

    def note_observation(self, observed: Observed) -> None:
        return None

    async def stop_all(self) -> None:
        self.stopped = True


class NoRelayChainData(RelaySource):
    """Never read in these passes (no genesis to diagnose, no relay running)."""

    def __init__(self) -> None:
        pass


def inventory() -> Desired:
    return Desired.model_validate(
        {
            "accounts": [{"name": "owner", "role": "owner", "derivation": "owner"}],
            "pools": [{"name": "p", "pid": 3, "owner": "owner", "default_stake": "0 PHA"}],
            "workers": [{"name": "w1", "endpoint": ENDPOINT, "pool": "p"}],
        }
    )


@dataclass
class World:
    chain: Chain
    transport: Transport
    relays: Relays
    journal: Journal
    rec: Reconciler


def world(tmp_path: Path) -> World:
    desired = inventory()
    keys = KeyRing(desired, Mnemonic(PHRASE))
    owner = keys.address("owner")
    chain = Chain(owner=owner, balances={owner: 10**15})
    transport = Transport()
    relays = Relays()
    journal = Journal(tmp_path / "journal.sqlite")

    def make_relays(
        submit_for: Callable[[str], Submit | None], in_flight: Callable[[str], bool]
    ) -> RelayPort:
        return relays

    ports = ReconcilerPorts(
        chain=chain,
        source=NoRelayChainData(),
        pruntimes=PRuntimeInfoReader(transport),
        relays=make_relays,
        journal=journal,
        keys=keys,
        pubkeys=PubkeyMemory(tmp_path / "pubkeys.json"),
        pool_settings=PoolSettingsMemory(tmp_path / "pool_settings.json"),
        external_relays=ExternalRelayFactory(desired.settings, "ws://chain", tmp_path),
        clock=lambda: datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    return World(chain, transport, relays, journal, Reconciler(desired, ports))


async def test_a_pass_observes_through_the_ports_plans_and_executes_through_the_writer(
    tmp_path: Path,
) -> None:
    w = world(tmp_path)
    try:
        result = await w.rec.reconcile_once(PlanPolicy())
    finally:
        await w.rec.close()
    assert w.transport.asked == [ENDPOINT]
    assert result.observed.pruntimes[ENDPOINT].info is not None
    add = [a for a in result.plan.actions if a.kind is ActionKind.ADD_WORKER]
    assert [a.worker for a in add] == ["w1"], result.plan
    assert [r.action_id for r in result.results if r.ok] == [a.id for a in result.plan.actions]
    assert ("add_worker", {"pid": 3, "pubkey": "0x" + PUBKEY}) in [
        (f, {k: v for k, v in args.items() if k in ("pid", "pubkey")})
        for f, args in w.chain.executed
    ], w.chain.executed
    journal = Journal(tmp_path / "journal.sqlite")
    journaled = [i for entry in journal.entries() for i in entry.action_ids]
    journal.close()
    assert sorted(journaled) == sorted(a.id for a in result.plan.actions)
    # The relay decision of the planner, as options for the relay port.
    endpoint, options = w.relays.wanted["w1"]
    assert endpoint == ENDPOINT
    assert isinstance(options, RelayOptions) and not options.register  # on chain already
    assert w.relays.stopped and w.chain.closed
    assert result.conditions is not None


async def test_an_action_carried_by_a_pending_journaled_extrinsic_is_not_planned_again(
    tmp_path: Path,
) -> None:
    w = world(tmp_path)
    try:
        first = await w.rec.reconcile_once(PlanPolicy(), execute=False)
        [add] = [a for a in first.plan.actions if a.kind is ActionKind.ADD_WORKER]
        # An earlier run sent it: journaled, in a node's pool, not in a block yet.
        signed = await w.chain.sign(w.rec.keys.signer("owner"), [], nonce=0)
        w.journal.record_prepared(
            extrinsic_hash=signed.extrinsic_hash,
            signer=signed.signer,
            nonce=signed.nonce,
            data=signed.data,
            action_ids=[add.id],
            era_start=w.chain.block,
            era_period=64,
        )
        w.chain.pending_pool.add(signed.extrinsic_hash)
        result = await w.rec.reconcile_once(PlanPolicy())
    finally:
        await w.rec.close()
    assert add.id in [a.id for a in result.plan.actions], "the world has not changed yet"
    assert result.in_flight == [add.id]
    assert add.id not in [r.action_id for r in result.results]
    assert "add_worker" not in [f for f, _ in w.chain.executed]
    assert w.chain.resubmitted == [signed.extrinsic_hash], "its bytes offered again, unchanged"
    assert signed.extrinsic_hash not in w.chain.sent_hashes


class Notifier:
    def __init__(self) -> None:
        self.plans: list[Plan] = []

    async def notify(self, plan: Plan) -> list[AlertEvent]:
        self.plans.append(plan)
        return []

    async def aclose(self) -> None:
        pass


class NeverOwner:
    async def allow(self, reconciler: Reconciler) -> bool:
        return False

    def may_relay(self, worker: str) -> bool:
        return False

    def may_sign(self, signer: str | None) -> bool:
        return False


async def test_a_lost_lease_reaches_the_notifier_though_the_pass_neither_plans_nor_writes(
    tmp_path: Path,
) -> None:
    w = world(tmp_path)
    notifier = Notifier()
    w.rec.notifier = notifier
    w.rec.gate = NeverOwner()

    def fenced(conditions: Conditions, now: datetime) -> Conditions:
        return with_ha_lease(conditions, now, "all", "fenced", "renewal failed: timeout")

    try:
        standby = await w.rec.reconcile_once(PlanPolicy())
        w.rec.extra_conditions = fenced
        lost = await w.rec.reconcile_once(PlanPolicy())
    finally:
        await w.rec.close()
    assert not standby.results and not lost.results and not w.chain.executed
    assert len(notifier.plans) == 2, "a standby's executing passes reach the notifier too"
    assert not [a for a in notifier.plans[0].alerts if a.target.startswith("process/")]
    [alert] = [a for a in notifier.plans[1].alerts if a.target.startswith("process/")]
    assert alert.target == "process/HaLeaseHeld"
    assert alert.severity.value == "critical"
    assert "LeaseLost" in alert.message and "renewal failed: timeout" in alert.message
    assert [a.target for a in lost.plan.alerts] == [
        a.target for a in notifier.plans[1].alerts if not a.target.startswith("process/")
    ], "the plan itself is unchanged: only the notifier hears of process conditions"


@dataclass
class ShardGate:
    """A process holding several shards: the pass may write, but only for what
    ``relay``/``sign`` say (the shards owned at that moment)."""

    relay: bool
    sign: bool

    async def allow(self, reconciler: Reconciler) -> bool:
        return True

    def may_relay(self, worker: str) -> bool:
        return self.relay

    def may_sign(self, signer: str | None) -> bool:
        return self.sign


async def test_a_pass_relays_and_signs_only_for_the_shards_owned_at_that_moment(
    tmp_path: Path,
) -> None:
    w = world(tmp_path)
    try:
        w.rec.gate = ShardGate(relay=False, sign=False)
        none = await w.rec.reconcile_once(PlanPolicy())
        assert none.plan.actions and not none.results and not w.chain.executed
        assert w.relays.wanted == {}
        w.rec.gate = ShardGate(relay=True, sign=False)
        relays_only = await w.rec.reconcile_once(PlanPolicy())
        assert list(w.relays.wanted) == ["w1"] and not relays_only.results
        w.rec.gate = ShardGate(relay=True, sign=True)
        both = await w.rec.reconcile_once(PlanPolicy())
        assert [r.action_id for r in both.results if r.ok] == [a.id for a in both.plan.actions]
        # One shard's lease lost: its relays stop now, the others are kept as they are.
        kept = dict(w.relays.wanted)
        w.rec.keep_relays(lambda name: True)
        assert w.relays.wanted == kept and "w1" in kept
        w.rec.keep_relays(lambda name: name != "w1")
        assert w.relays.wanted == {}
    finally:
        await w.rec.close()


async def test_relay_options_are_shared_across_passes_until_a_worker_needs_others(
    tmp_path: Path,
) -> None:
    w = world(tmp_path)
    try:
        observed = await w.rec.observe()
        endpoint, first = w.rec.relay_plan(observed)["w1"]
        assert endpoint == ENDPOINT
        assert isinstance(first, RelayOptions) and not first.register  # on chain already
        again = w.rec.relay_plan(await w.rec.observe())["w1"][1]
        assert again is first, "the same value: the same object"
        # The worker left the chain: its relay must register it (a change not missed).
        gone = observed.model_copy(update={"chain_workers": {}})
        changed = w.rec.relay_plan(gone)["w1"][1]
        assert isinstance(changed, RelayOptions) and changed.register
        assert changed is not first and not first.register
        assert changed.operator == first.operator and changed.sync_blocks == first.sync_blocks
    finally:
        await w.rec.close()
