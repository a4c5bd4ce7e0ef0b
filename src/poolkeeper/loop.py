"""The reconcile loop: observe → plan → act, again and again, until the world matches.

Both one-shot ``apply`` and the long-running ``run`` are built from ``reconcile_once``:
each pass observes everything afresh (nothing is remembered between passes except
what the chain, the pRuntimes and the journal say), plans with the pure planner,
keeps the set of running relays equal to what the inventory needs, and executes the
chain actions through the journaled executor. Actions still in flight from an earlier
pass (journal) are never planned twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from poolkeeper._loop_runner import bounded, describe_error, run_passes
from poolkeeper.apply.collector import TxCollector
from poolkeeper.apply.executor import ActionResult, AuditSink, Executor, Job
from poolkeeper.apply.fee_history import FeeHistory
from poolkeeper.apply.journal import Journal
from poolkeeper.apply.pool_settings import PoolSettingsMemory
from poolkeeper.apply.top_up_ledger import TopUpLedger, TransferSource
from poolkeeper.chain.ports import CallSpec, ChainReader, ChainWriter
from poolkeeper.chain.relay_source import ParachainSource, RelaySource
from poolkeeper.errors import PoolkeeperError
from poolkeeper.health import LoopHealth
from poolkeeper.keys import KeyRing
from poolkeeper.model.actions import Action, ActionKind, EtaBasis, Plan
from poolkeeper.model.conditions import (
    Conditions,
    derive_conditions,
    process_alerts,
    with_loop_failure,
)
from poolkeeper.model.desired import AccountRole, Desired
from poolkeeper.model.observed import Observed, RelayStatus
from poolkeeper.model.shards import pool_shards
from poolkeeper.notify import AlertEvent
from poolkeeper.observe.observer import PRuntimeInfoSource, observe
from poolkeeper.observe.pubkeys import PubkeyMemory
from poolkeeper.observe.sync_rates import SyncRateMemory
from poolkeeper.plan import PlanPolicy, plan_for, targeted_workers, wanted_relays
from poolkeeper.relay.external import ExternalRelayFactory
from poolkeeper.relay.supervisor import AnyRelayOptions
from poolkeeper.relay.worker import RelayOptions, Submit

LOCAL_KINDS = frozenset(
    {
        ActionKind.START_RELAY,
        ActionKind.STOP_RELAY,
        ActionKind.DERIVE_ACCOUNT,
        # Registration needs the worker's attestation: its relay fetches it and submits.
        ActionKind.REGISTER_WORKER,
    }
)


class PassGate(Protocol):
    """Whether this process may sign and relay now (HA ownership, docs/ha.md)."""

    async def allow(self, reconciler: Reconciler) -> bool:
        """False: observe only (relays stopped, nothing executed)."""
        ...

    def may_relay(self, worker: str) -> bool:
        """Whether ``worker``'s relay may run now (HA: its shard is owned now); asked
        right before the relays are set, with no await in between."""
        ...

    def may_sign(self, signer: str | None) -> bool:
        """Whether account ``signer`` may sign now (HA: its shard is owned now)."""
        ...


class ChainPort(ChainReader, ChainWriter, TransferSource, Protocol):
    """The chain as the reconciler uses it: reads, writes, transfers (``SubstrateChain``)."""

    async def close(self) -> None: ...


class RelayPort(Protocol):
    """Keeps the running relays equal to a wanted set (``RelaySupervisor``)."""

    def reconcile(self, wanted: Mapping[str, tuple[str, AnyRelayOptions]]) -> None: ...

    def statuses(self) -> dict[str, RelayStatus]: ...

    def details(self) -> dict[str, str]: ...

    def note_observation(self, observed: Observed) -> None: ...

    async def stop_all(self) -> None: ...


RelayFactory = Callable[[Callable[[str], Submit | None], Callable[[str], bool]], RelayPort]
"""Builds the relay port from the reconciler's ``submit_for`` (worker → how its relay
submits extrinsics) and ``in_flight`` (job id → carried by a pending extrinsic)."""


class Notifier(Protocol):
    """Receives every executing pass's plan; posts new alerts and recoveries."""

    async def notify(self, plan: Plan) -> list[AlertEvent]: ...

    async def aclose(self) -> None: ...


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ReconcilerPorts:
    """Everything a ``Reconciler`` talks to. ``poolkeeper.app.build_ports`` makes the real
    ones; unit tests pass fakes."""

    chain: ChainPort
    source: RelaySource
    """The relays' chain data (also the headers the genesis diagnosis reads)."""
    pruntimes: PRuntimeInfoSource
    """``GetInfo`` per pRuntime endpoint (the observer's)."""
    relays: RelayFactory
    journal: Journal
    keys: KeyRing
    pubkeys: PubkeyMemory
    pool_settings: PoolSettingsMemory
    external_relays: ExternalRelayFactory
    notifier: Notifier | None = None
    audit: AuditSink | None = None
    gate: PassGate | None = None
    """Asked before each executing pass (HA ownership); None: this process always writes."""
    clock: Callable[[], datetime] = _utc_now
    closers: Sequence[Callable[[], Awaitable[None]]] = ()
    """Closed last by ``Reconciler.close`` (connections only the factory knows of)."""
    sync_rates: SyncRateMemory = field(default_factory=lambda: SyncRateMemory(None))
    """Measures each pRuntime's sync rate between observations (sync waits' ETAs)."""
    fee_history: FeeHistory = field(default_factory=lambda: FeeHistory(None))
    """Fees paid per signer from the audit log (funding runway)."""


@dataclass
class PassResult:
    """What one reconcile pass saw, planned and did."""

    observed: Observed
    plan: Plan
    results: list[ActionResult] = field(default_factory=list)
    started_relays: list[str] = field(default_factory=list)
    conditions: Conditions | None = None
    """Every worker's and the process's conditions after this pass's observation."""
    duration_seconds: float = 0.0
    resolved: list[ActionResult] = field(default_factory=list)
    """Actions of journaled extrinsics whose outcome this pass settled (included, or
    proven dropped: then planned again in this very pass)."""
    in_flight: list[str] = field(default_factory=list)
    """Planned actions not sent because an extrinsic carrying them is still pending."""


class Reconciler:
    """Everything a pass needs, given its ports once per process (``poolkeeper.app``
    builds the real ones)."""

    def __init__(
        self,
        desired: Desired,
        ports: ReconcilerPorts,
        *,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self._progress = progress
        self._ports = ports
        self._clock = ports.clock
        self.external_relays = ports.external_relays
        self.chain = ports.chain
        self.source = ports.source
        self.pruntimes = ports.pruntimes
        self.journal = ports.journal
        self.pubkeys = ports.pubkeys
        self.gate = ports.gate
        """Asked before each executing pass (HA): without it this process always writes."""
        self.conditions: Conditions | None = None
        """The latest conditions (transition times are kept across passes)."""
        self._genesis_hashes: dict[int, str] = {}
        self.keys = ports.keys
        self.secret_loaded = ports.keys.secret_loaded
        self.desired = self._with_derived_addresses(desired)
        # Every command (plan, status, list too) sees the pids of pools created earlier.
        self._with_created_pools()
        self._pool_settings = ports.pool_settings
        self._top_ups_sent: dict[str, Action] = {}
        self.executor = Executor(
            self.chain,
            self.chain,
            self.journal,
            self.keys,
            progress=progress,
            audit=ports.audit,
            on_prepared=self._top_up_prepared,
        )
        self.top_ups = TopUpLedger(self.chain, self.journal, progress=progress)
        self.collector = TxCollector(self.executor)
        self.relays = ports.relays(self._submit_for, self._carried_by_pending)
        self._relay_signer = self._pick_relay_signer()
        self._shard_relay_signers: tuple[Desired | None, dict[str, str]] = (None, {})
        self._relays_wanted: dict[str, tuple[str, AnyRelayOptions]] = {}
        self._relay_options: dict[tuple[object, ...], RelayOptions] = {}
        """The in-process relays' options of the last relay plan, by value (shared)."""
        """The relays the last executing pass set (``keep_relays`` keeps some of them)."""
        self.notifier = ports.notifier
        """Receives every executing pass's plan; posts new alerts and recoveries."""
        self._pass_lock = asyncio.Lock()
        self._pending_desired: Desired | None = None
        self.extra_conditions: Callable[[Conditions, datetime], Conditions] | None = None
        """Adds process conditions known outside the pass (HA lease) to each derivation."""
        self.on_pass_start: Callable[[bool], None] | None = None
        """Told (``execute``) when a pass starts: passes of the loop and of control requests."""
        self.health = LoopHealth()
        """How ``run_forever``'s passes are going (the LoopHealthy condition)."""

    def _with_derived_addresses(self, desired: Desired) -> Desired:
        """Accounts declared by derivation label get their address in memory (the
        planner's derive step); ``accounts generate`` writes them into the inventory."""
        accounts = []
        for account in desired.accounts:
            filled = account
            if account.address is None and account.derivation and self.keys.has(account.name):
                filled = account.model_copy(update={"address": self.keys.address(account.name)})
            accounts.append(filled)
        return desired.model_copy(update={"accounts": tuple(accounts)})

    def _pick_relay_signer(self) -> str | None:
        for account in self.desired.accounts:
            if account.role is AccountRole.RELAY_SIGNER and (account.derivation or account.key):
                return account.name
        for pool in self.desired.pools:
            return pool.signer
        return None

    def keep_relays(self, keep: Callable[[str], bool]) -> None:
        """Stop now the running relays ``keep`` refuses, the others untouched (HA: one
        shard's lease lost while this process keeps its other shards)."""
        self._relays_wanted = {n: r for n, r in self._relays_wanted.items() if keep(n)}
        self.relays.reconcile(self._relays_wanted)

    def _relay_signer_for(self, worker: str) -> str | None:
        """The account signing ``worker``'s relay extrinsics: its shard's relay signer
        (``settings.shards``) when poolkeeper holds its key, else the process's one."""
        desired = self.desired
        if not desired.settings.shards:
            return self._relay_signer
        if self._shard_relay_signers[0] is not desired:
            keyed = {a.name for a in desired.accounts if a.derivation or a.key}
            signers = {s.name: s.relay_signer for s in desired.settings.shards}
            by_pool = {
                pool: signer
                for pool, shard in pool_shards(
                    desired.settings.shards, desired.pools, desired.workers
                ).items()
                if (signer := signers.get(shard)) is not None and signer in keyed
            }
            self._shard_relay_signers = (desired, by_pool)
        spec = desired.workers_by_name.get(worker)
        found = (
            self._shard_relay_signers[1].get(spec.pool)
            if spec is not None and spec.pool is not None
            else None
        )
        return found or self._relay_signer

    def _submit_for(self, worker: str) -> Submit | None:
        signer = self._relay_signer_for(worker)
        if signer is None:
            return None

        async def submit(job_id: str, call: CallSpec) -> bool:
            if self._carried_by_pending(job_id):
                return True  # asked again here: no await since the relay's own check
            spec = self.desired.workers_by_name.get(worker)
            job = Job(job_id, call, signer, worker=worker, pool=spec.pool if spec else None)
            result = await self.collector.submit(job)
            return result.ok

        return submit

    def _carried_by_pending(self, job_id: str) -> bool:
        """Whether a journaled extrinsic that may still be included carries this job (its
        bytes are re-sent by the journal's rule): sending it again would execute it twice,
        or for egress fail ``PhalaMq.BadSequence``. Once proven dropped it is not pending."""
        return job_id in self.journal.pending_action_ids()

    def relay_plan(self, observed: Observed) -> dict[str, tuple[str, AnyRelayOptions]]:
        """The relays the inventory needs, with their options (external ones included):
        the planner's ``wanted_relays``, as options of in-process or external relays."""
        if self.external_relays.settings != self.desired.settings:
            self.external_relays = dataclasses.replace(
                self.external_relays, settings=self.desired.settings
            )
        wanted: dict[str, tuple[str, AnyRelayOptions]] = {}
        spec = self.desired.workers_by_name
        shared = self._relay_options
        kept: dict[tuple[object, ...], RelayOptions] = {}
        for name, relay in wanted_relays(self.desired, observed, self.keys.addresses()).items():
            options: AnyRelayOptions
            if relay.external_command is not None:
                options = self.external_relays.options(
                    spec[name], relay.external_command, relay.owner_address
                )
            else:
                # One options object per distinct value, kept across passes: 10,000
                # workers of a few pools hold a handful, not 10,000 built every pass
                # (the relays never modify their options).
                key = (
                    relay.sync_blocks,
                    relay.operator,
                    relay.attestation_provider,
                    relay.register,
                )
                found = kept.get(key) or shared.get(key)
                if found is None:
                    found = RelayOptions(
                        sync_blocks=relay.sync_blocks,
                        operator=relay.operator,
                        attestation_provider=relay.attestation_provider,
                        register=relay.register,
                    )
                kept[key] = options = found
            wanted[name] = (relay.endpoint, options)
        self._relay_options = kept
        return wanted

    async def observe(self) -> Observed:
        observed = await observe(
            self.desired,
            self.chain,
            self.pruntimes,
            relays=self.relays.statuses(),
            relay_details=self.relays.details(),
            topped_up_today=await self.top_ups.sent_today(self.desired),
            remembered=self.pubkeys.get(),
        )
        self.pubkeys.note(observed)
        observed = self._ports.sync_rates.note(observed)
        genesis = await self._genesis_hashes_for(observed)
        if genesis:
            observed = observed.model_copy(update={"genesis_hashes": genesis})
        self.relays.note_observation(observed)
        relays, details = self.relays.statuses(), self.relays.details()
        if relays != observed.relays or details != observed.relay_details:
            observed = observed.model_copy(update={"relays": relays, "relay_details": details})
        observed = self._pool_settings.note(self.desired, observed)
        window = self.desired.settings.runway.window_days
        return self._ports.fee_history.note(observed, window)

    async def _genesis_hashes_for(self, observed: Observed) -> dict[int, str]:
        """The header chain's hash at each genesis number the pRuntimes report (cached:
        finalized history does not change)."""
        numbers = {
            p.info.genesis_block
            for p in observed.pruntimes.values()
            if p.info is not None
            and p.info.initialized
            and p.info.genesis_block_hash
            and p.info.genesis_block is not None
        }
        headers = (
            self.source.relaychain if isinstance(self.source, ParachainSource) else self.source
        )
        for number in sorted(numbers - set(self._genesis_hashes))[:16]:
            try:
                self._genesis_hashes[number] = await headers.block_hash(number)
            except (PoolkeeperError, LookupError, ValueError):
                continue  # not known: no genesis diagnosis this pass
        return {n: self._genesis_hashes[n] for n in numbers if n in self._genesis_hashes}

    def note_conditions(self, observed: Observed, *, loop_error: str | None = None) -> Conditions:
        """Derive the conditions after ``observed``, keeping transition times."""
        now = self._clock()
        self.conditions = derive_conditions(
            self.desired, observed, self.conditions, now, loop_error=loop_error
        )
        if self.extra_conditions is not None:
            self.conditions = self.extra_conditions(self.conditions, now)
        return self.conditions

    def note_pass_failed(self, error: str) -> None:
        """LoopHealthy turns False (until a pass completes again)."""
        if self.conditions is not None:
            self.conditions = with_loop_failure(self.conditions, self._clock(), error)

    def _with_created_pools(self) -> None:
        """Pools created earlier (journal) get their pid, so they are never created twice."""
        created = self.journal.created_pools()
        pools = tuple(
            p.model_copy(update={"pid": created[p.name]})
            if p.pid is None and p.name in created
            else p
            for p in self.desired.pools
        )
        if pools != self.desired.pools:
            self.desired = self.desired.model_copy(update={"pools": pools})

    def _record_created_pools(self, plan: Plan, results: list[ActionResult]) -> None:
        by_id = {a.id: a for a in plan.actions}
        for r in results:
            action = by_id.get(r.action_id)
            if action is None or action.kind is not ActionKind.CREATE_POOL or not r.ok:
                continue
            for event in r.events:
                if (event.pallet, event.name) == ("PhalaStakePoolv2", "PoolCreated"):
                    pid = int(event.attributes["pid"])
                    self.journal.record_created_pool(action.pool or "", pid, r.extrinsic_hash or "")
                    if self._progress:
                        self._progress(
                            f"pool {action.pool} created with pid {pid}: write `pid: {pid}` "
                            "into its inventory entry"
                        )

    async def reconcile_once(
        self, policy: PlanPolicy, *, execute: bool = True, only: Plan | None = None
    ) -> PassResult:
        """One pass at a time (the loop's and the control API's requests alike: one writer);
        an inventory reloaded meanwhile is adopted before the next pass starts."""
        async with self._pass_lock:
            if self._pending_desired is not None:
                self._adopt(self._pending_desired)
                self._pending_desired = None
            if self.on_pass_start is not None:
                self.on_pass_start(execute)
            return await self._reconcile_once(policy, execute=execute, only=only)

    async def reconcile_within_deadline(
        self, policy: PlanPolicy, *, execute: bool = True, only: Plan | None = None
    ) -> PassResult:
        """``reconcile_once`` with the deadline of ``run_forever``'s passes
        (``settings.loop.pass_timeout_seconds``), for front ends that drive passes
        themselves (the standalone TUI): past it the pass is cancelled and
        ``PassDeadlineExceeded`` names where it hung. A failed pass turns LoopHealthy
        False (``conditions``), as in ``run_forever``."""
        settings = self.desired.settings.loop
        try:
            return await bounded(
                lambda: self.reconcile_once(policy, execute=execute, only=only),
                timeout=settings.pass_timeout_seconds,
                settle_seconds=settings.pass_timeout_seconds,
                stop=asyncio.Event(),  # never set: only the deadline ends it
                shutdown_grace=0.0,
            )
        except Exception as exc:
            self.note_pass_failed(describe_error(exc))
            raise

    async def _reconcile_once(
        self, policy: PlanPolicy, *, execute: bool = True, only: Plan | None = None
    ) -> PassResult:
        """Observe, plan, keep relays, execute chain actions not already in flight.

        With ``only`` (a saved plan the operator approved), execute just those of its
        actions that the fresh plan still has unchanged: nothing the operator did not see."""
        started = time.monotonic()
        self._with_created_pools()
        # Under HA only the shard's owner writes: a standby (or a fenced former owner)
        # neither re-sends journaled extrinsics nor relays nor signs.
        writer = execute and (self.gate is None or await self.gate.allow(self))
        # Every executing pass first decides what became of unsettled extrinsics (one
        # rule, apply.settlement): never planned twice, never left unknown forever.
        resolved = await self.executor.recover() if writer else []
        self._record_top_ups_resolved(resolved)
        observed = await self.observe()
        plan = plan_for(self.desired, observed, policy)
        result = PassResult(
            observed, plan, conditions=self.note_conditions(observed), resolved=resolved
        )
        if not execute:
            return result
        if not writer:
            self.relays.reconcile({})  # not the owner: no relay, no extrinsic
            self._relays_wanted = {}
            await self._notify(plan, result.conditions)
            result.duration_seconds = time.monotonic() - started
            return result
        wanted = self.relay_plan(observed)
        if policy.targets:  # --target: relays (and pRuntime initialisation) of targets only
            keep = targeted_workers(self.desired, policy.targets)
            wanted = {name: relay for name, relay in wanted.items() if name in keep}
        gate = self.gate
        if gate is not None:  # a pass writes only for the shards owned at this moment
            wanted = {name: relay for name, relay in wanted.items() if gate.may_relay(name)}
        before = set(self.relays.statuses())
        self.relays.reconcile(wanted)
        self._relays_wanted = wanted
        result.started_relays = sorted(set(wanted) - before)
        in_flight = self.journal.pending_action_ids()
        result.in_flight = sorted(a.id for a in plan.actions if a.id in in_flight)
        chain_actions = [
            a
            for a in plan.actions
            if a.kind not in LOCAL_KINDS
            and a.id not in in_flight
            and (gate is None or gate.may_sign(a.signer))
        ]
        if only is not None:
            approved = {a.id: a for a in only.actions}
            chain_actions = [
                a
                for a in chain_actions
                if a.id in approved and not approved[a.id].effect_differences(a)
            ]
        if chain_actions:
            self._top_ups_sent = {a.id: a for a in chain_actions if a.kind is ActionKind.TOP_UP}
            try:
                result.results = await self.executor.execute(chain_actions)
            finally:
                self._top_ups_sent = {}
            self._record_top_ups(plan, result.results)
            self._record_created_pools(plan, result.results)
        await self._notify(plan, result.conditions)
        result.duration_seconds = time.monotonic() - started
        return result

    async def _notify(self, plan: Plan, conditions: Conditions | None) -> None:
        """The plan's alerts and the process conditions that need a human (a chain
        stalled, a lost HA lease: no plan carries those) go to the notifier."""
        if self.notifier is None:
            return
        extra = process_alerts(conditions)
        await self.notifier.notify(
            plan.model_copy(update={"alerts": plan.alerts + extra}) if extra else plan
        )

    def _top_up_prepared(self, extrinsic_hash: str, action_ids: Sequence[str]) -> None:
        """A top-up counts against the day's cap from the moment it is signed, before it
        is journaled or sent: a crash can never leave a sent transfer uncounted."""
        today = self._clock().strftime("%Y-%m-%d")
        for action_id in action_ids:
            action = self._top_ups_sent.get(action_id)
            if action is not None and action.destination:
                self.journal.record_top_up(
                    today, action.destination, action.amount or 0, extrinsic_hash
                )

    def _record_top_ups(self, plan: Plan, results: list[ActionResult]) -> None:
        """Forget top-ups whose transfer failed inside an included batch (extrinsics that
        were rejected, dropped or failed as a whole are left out by the journal)."""
        by_id = {a.id: a for a in plan.actions}
        for r in results:
            action = by_id.get(r.action_id)
            if (
                action
                and action.kind is ActionKind.TOP_UP
                and not r.ok
                and r.block_number is not None
                and action.destination
                and r.extrinsic_hash
            ):
                self.journal.cancel_top_up(r.extrinsic_hash, action.destination)

    def _record_top_ups_resolved(self, resolved: list[ActionResult]) -> None:
        """The same for top-ups whose extrinsic the journal's rule found failing."""
        addresses = {f"account/{a.name}": a.address for a in self.desired.accounts}
        for r in resolved:
            kind, _, target = r.action_id.partition(":")
            destination = addresses.get(target)
            if kind != ActionKind.TOP_UP.value or r.ok or destination is None:
                continue
            if r.block_number is not None and r.extrinsic_hash:
                self.journal.cancel_top_up(r.extrinsic_hash, destination)

    async def converge(
        self,
        policy: PlanPolicy,
        *,
        timeout: float,
        interval: float = 2.0,
        on_pass: Callable[[PassResult], None] | None = None,
        until: Callable[[PassResult], bool] | None = None,
    ) -> PassResult:
        """Reconcile until ``settled`` (or ``until``) says so, or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        last: PassResult | None = None
        while True:
            last = await self.reconcile_once(policy)
            if on_pass:
                on_pass(last)
            remaining = deadline - time.monotonic()
            done = until(last) if until else settled(last.plan, remaining)
            if done or remaining <= 0:
                return last
            await asyncio.sleep(interval)

    async def run_forever(
        self,
        policy: PlanPolicy,
        stop: asyncio.Event,
        *,
        reload: Callable[[], Desired | None] | None = None,
        changed: asyncio.Event | None = None,
        on_pass: Callable[[PassResult], None] | None = None,
        on_error: Callable[[Exception, float], None] | None = None,
        shutdown_grace: float = 30.0,
    ) -> None:
        """The reconcile loop: a pass per interval, or sooner when ``changed`` is set
        (inventory edited). ``reload`` returns a new Desired, or None to keep the current
        one (an invalid inventory changes nothing). Every pass re-observes everything and
        has a deadline (``settings.loop.pass_timeout_seconds``); any failure is logged,
        recorded in ``self.health`` and backed off along ``settings.loop.backoff_seconds``.
        Only ``stop`` ends it (the pass under way gets ``shutdown_grace`` seconds)."""

        def before_pass() -> None:
            if changed is not None and changed.is_set():
                changed.clear()
                fresh = reload() if reload else None
                if fresh is not None:
                    self.set_desired(fresh)

        await run_passes(
            lambda: self.reconcile_once(policy),
            stop,
            health=self.health,
            settings=lambda: self.desired.settings.loop,
            before_pass=before_pass,
            changed=changed,
            on_pass=on_pass,
            on_error=on_error,
            shutdown_grace=shutdown_grace,
        )

    def set_desired(self, desired: Desired) -> None:
        """Adopt a reloaded inventory (derived addresses and created pools re-applied);
        during a pass, from the next pass on (a pass sees one inventory throughout)."""
        if self._pass_lock.locked():
            self._pending_desired = desired
            return
        self._adopt(desired)

    def _adopt(self, desired: Desired) -> None:
        self.keys.load(desired)
        self.desired = self._with_derived_addresses(desired)

    async def recover(self) -> list[ActionResult]:
        """Settle journaled extrinsics left unsettled by a crash, before planning."""
        return await self.executor.recover()

    async def close(self) -> None:
        if self.notifier is not None:
            await self.notifier.aclose()
        await self.relays.stop_all()
        await self.collector.close()
        await self.chain.close()
        for close in self._ports.closers:
            await close()
        self.journal.close()


def settled(plan: Plan, remaining_seconds: float) -> bool:
    """Nothing left that this run can see through: no actions, and every wait is known to
    end only after the time that is left (a cool-down: an ETA from the chain); sync and
    score waits keep going (their ETAs are estimates)."""
    return not plan.actions and all(
        w.eta_seconds is not None
        and w.eta_basis is not EtaBasis.ESTIMATE
        and w.eta_seconds > remaining_seconds
        for w in plan.waits
    )
