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
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from poolkeeper.apply.collector import TxCollector
from poolkeeper.apply.executor import ActionResult, AuditSink, Executor, Job
from poolkeeper.apply.journal import Journal
from poolkeeper.apply.pool_settings import PoolSettingsMemory
from poolkeeper.apply.top_up_ledger import TopUpLedger
from poolkeeper.chain._rpc import AsyncRpc
from poolkeeper.chain.ports import CallSpec, Signer
from poolkeeper.chain.relay_source import ParachainSource, RelaySource
from poolkeeper.chain.substrate import SubstrateChain
from poolkeeper.errors import PoolkeeperError, SecretError, TemporaryError
from poolkeeper.keys import DerivedKey, Mnemonic, derive_keys, own_keys
from poolkeeper.model.actions import ActionKind, Plan
from poolkeeper.model.conditions import (
    Conditions,
    derive_conditions,
    genesis_mismatch,
    with_loop_failure,
)
from poolkeeper.model.desired import AccountRole, Desired, WorkerState, external_relay_command
from poolkeeper.model.observed import Observed, PRuntimeInfo
from poolkeeper.model.ss58 import decode_address
from poolkeeper.notify import WebhookNotifier
from poolkeeper.observe.observer import observe
from poolkeeper.observe.pubkeys import PubkeyMemory
from poolkeeper.plan import PlanPolicy, plan_for, targeted_workers
from poolkeeper.pruntime import PRuntimeTransport
from poolkeeper.relay.external import ExternalRelayFactory
from poolkeeper.relay.supervisor import AnyRelayOptions, RelaySupervisor
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
_PROVIDER_BYTES = {"none": None, "ias": b"\x01\x01", "dcap": b"\x01\x02"}


class PassGate(Protocol):
    """Whether this process may sign and relay now (HA ownership, docs/ha.md)."""

    async def allow(self, reconciler: Reconciler) -> bool:
        """False: observe only (relays stopped, nothing executed)."""
        ...


class KeyRing:
    """Signers for the inventory's accounts, derived from the master secret once."""

    def __init__(
        self,
        desired: Desired,
        mnemonic: Mnemonic | None,
        *,
        base_dir: Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._mnemonic = mnemonic
        self._base_dir = base_dir
        self._environ = environ
        self._keys: dict[str, DerivedKey] = {}
        self._addresses: dict[str, str] = {}
        self._key_problems: dict[str, str] = {}
        self.load(desired)

    def load(self, desired: Desired) -> None:
        """(Re)derive for the accounts of ``desired`` (after an inventory reload)."""
        labels = [a.derivation for a in desired.accounts if a.derivation]
        prefix = desired.settings.ss58_prefix
        mnemonic = self._mnemonic
        keys = derive_keys(mnemonic, labels, prefix) if (mnemonic and labels) else {}
        self._keys = {}
        self._addresses = {}
        for account in desired.accounts:
            key = keys.get(account.derivation) if account.derivation else None
            if key is not None:
                self._keys[account.name] = key
            address = account.address or (key.address if key else None)
            if address:
                self._addresses[account.name] = address
        own = own_keys(desired, base_dir=self._base_dir, environ=self._environ)
        self._keys.update(own.keys)
        self._key_problems = own.problems

    def problems(self) -> dict[str, str]:
        """Accounts whose own key (``key:``) could not be loaded or does not match, and why."""
        return dict(self._key_problems)

    def signer(self, account: str) -> Signer:
        key = self._keys.get(account)
        if key is None and account in self._key_problems:
            raise SecretError(self._key_problems[account])
        if key is None:
            raise SecretError(
                f"account {account!r} cannot sign: it has no derivation label, "
                "or no master secret was provided"
            )
        return key

    def address_or_none(self, account: str) -> str | None:
        """The account's address when known (declared or derived)."""
        return self._addresses.get(account)

    def has(self, account: str) -> bool:
        """Whether the account's address is known (declared or derived)."""
        return account in self._addresses

    def address(self, account: str) -> str:
        try:
            return self._addresses[account]
        except KeyError:
            raise SecretError(
                f"account {account!r} has no address: run `poolkeeper accounts generate`"
            ) from None


class PRuntimeInfoReader:
    """``GetInfo`` through the shared transport, as model values."""

    def __init__(self, transport: PRuntimeTransport) -> None:
        self._transport = transport

    async def get_info(self, endpoint: str) -> PRuntimeInfo:
        info = await self._transport.client(endpoint).get_info()
        return PRuntimeInfo(
            initialized=info.initialized,
            registered=info.registered,
            headernum=info.headernum,
            para_headernum=info.para_headernum,
            blocknum=info.blocknum,
            public_key=info.public_key,
            ecdh_public_key=info.ecdh_public_key,
            genesis_block_hash=info.genesis_block_hash,
            score=info.score,
            version=info.version,
            git_revision=info.git_revision,
            dev_mode=info.dev_mode,
            pending_messages=info.pending_messages,
            genesis_block=info.system.genesis_block if info.system else None,
        )


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


class Reconciler:
    """Everything a pass needs, built once per process."""

    def __init__(
        self,
        desired: Desired,
        *,
        mnemonic: Mnemonic | None,
        state_dir: Path,
        chain_url: str | None = None,
        relay_idle_seconds: float = 1.0,
        progress: Callable[[str], None] | None = None,
        notifier: WebhookNotifier | None = None,
        inventory_dir: Path | None = None,
        audit: AuditSink | None = None,
        journal: Journal | None = None,
        gate: PassGate | None = None,
    ) -> None:
        self.desired = desired
        self.gate = gate
        """Asked before each executing pass (HA): without it this process always writes."""
        self._progress = progress
        url = chain_url or desired.settings.chain.endpoints[0]
        self.external_relays = ExternalRelayFactory(desired.settings, url, state_dir, inventory_dir)
        wait_final = desired.settings.chain.wait_for == "finalization"
        self.chain = SubstrateChain(url, wait_for_finalization=wait_final)
        self.rpc = AsyncRpc(url)
        self.relaychain_rpc: AsyncRpc | None = None
        self.source = self._relay_source(desired)
        self.transport = PRuntimeTransport(
            max_in_flight=desired.settings.pruntime_concurrency,
            timeout=desired.settings.pruntime_timeout_seconds,
        )
        self.journal = journal or Journal(state_dir / "journal.sqlite")
        self.pubkeys = PubkeyMemory(state_dir / "pubkeys.json")
        self.conditions: Conditions | None = None
        """The latest conditions (transition times are kept across passes)."""
        self._genesis_hashes: dict[int, str] = {}
        self.keys = KeyRing(desired, mnemonic, base_dir=inventory_dir)
        self.secret_loaded = mnemonic is not None
        self.desired = self._with_derived_addresses(desired)
        # Every command (plan, status, list too) sees the pids of pools created earlier.
        self._with_created_pools()
        self._pool_settings = PoolSettingsMemory(state_dir / "pool_settings.json")
        self.executor = Executor(
            self.chain, self.chain, self.journal, self.keys, progress=progress, audit=audit
        )
        self.top_ups = TopUpLedger(self.chain, self.journal, progress=progress)
        self.collector = TxCollector(self.executor)
        self.relays = RelaySupervisor(
            self.source, self.transport, self._submit_for, idle_seconds=relay_idle_seconds
        )
        self._relay_signer = self._pick_relay_signer()
        alerts = desired.settings.alerts
        if notifier is None and alerts.webhook_url:
            notifier = WebhookNotifier(
                alerts.webhook_url,
                debounce_seconds=alerts.debounce_seconds,
                state_file=state_dir / "alerts.json",
            )
        self.notifier = notifier
        """Receives every executing pass's plan; posts new alerts and recoveries."""
        self._pass_lock = asyncio.Lock()
        self._pending_desired: Desired | None = None
        self.extra_conditions: Callable[[Conditions, datetime], Conditions] | None = None
        """Adds process conditions known outside the pass (HA lease) to each derivation."""
        self.on_pass_start: Callable[[bool], None] | None = None
        """Told (``execute``) when a pass starts: passes of the loop and of control requests."""

    def _relay_source(self, desired: Desired) -> RelaySource:
        """The shared chain data of the relays: the chain alone, or a parachain with its
        relay chain (settings ``chain.relaychain_endpoints``)."""
        relaychain = desired.settings.chain.relaychain_endpoints
        if not relaychain:
            return RelaySource(self.rpc)
        self.relaychain_rpc = AsyncRpc(relaychain[0])
        return ParachainSource(self.rpc, self.relaychain_rpc)

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

    def _submit_for(self, worker: str) -> Submit | None:
        signer = self._relay_signer
        if signer is None:
            return None

        async def submit(job_id: str, call: CallSpec) -> bool:
            spec = self.desired.workers_by_name.get(worker)
            job = Job(job_id, call, signer, worker=worker, pool=spec.pool if spec else None)
            result = await self.collector.submit(job)
            return result.ok

        return submit

    def relay_plan(self, observed: Observed) -> dict[str, tuple[str, AnyRelayOptions]]:
        """The relays the inventory needs, with their options (external ones included)."""
        provider = _PROVIDER_BYTES[self.desired.settings.relay.attestation_provider]
        if self.external_relays.settings != self.desired.settings:
            self.external_relays = dataclasses.replace(
                self.external_relays, settings=self.desired.settings
            )
        wanted: dict[str, tuple[str, AnyRelayOptions]] = {}
        for worker in self.desired.workers:
            pool = self.desired.pools_by_name.get(worker.pool) if worker.pool else None
            if worker.state is WorkerState.REMOVED or (pool is not None and pool.draining):
                continue
            template = external_relay_command(self.desired.settings, worker)
            if template is not None:
                owner = self.keys.address_or_none(pool.owner) if pool else None
                options = self.external_relays.options(worker, template, owner)
                wanted[worker.name] = (worker.endpoint, options)
                continue
            operator: bytes | None = None
            if pool is not None:
                try:
                    operator = decode_address(self.keys.address(pool.owner))[1]
                except (SecretError, ValueError):
                    operator = None
            info = observed.pruntimes.get(worker.endpoint)
            if genesis_mismatch(info.info if info else None, observed):
                continue  # on another chain: feeding it this chain's blocks cannot work
            pubkey = info.info.public_key if info and info.info else None
            on_chain = pubkey is not None and pubkey.lower() in observed.chain_workers
            wanted[worker.name] = (
                worker.endpoint,
                RelayOptions(
                    sync_blocks=self.desired.settings.relay.sync_blocks,
                    operator=operator,
                    attestation_provider=provider,
                    register=worker.state in (WorkerState.COMPUTING, WorkerState.IDLE)
                    and not on_chain,
                ),
            )
        return wanted

    async def observe(self) -> Observed:
        observed = await observe(
            self.desired,
            self.chain,
            PRuntimeInfoReader(self.transport),
            relays=self.relays.statuses(),
            relay_details=self.relays.details(),
            topped_up_today=await self.top_ups.sent_today(self.desired),
            remembered=self.pubkeys.get(),
        )
        self.pubkeys.note(observed)
        genesis = await self._genesis_hashes_for(observed)
        if genesis:
            observed = observed.model_copy(update={"genesis_hashes": genesis})
        self.relays.note_observation(observed)
        relays, details = self.relays.statuses(), self.relays.details()
        if relays != observed.relays or details != observed.relay_details:
            observed = observed.model_copy(update={"relays": relays, "relay_details": details})
        return self._pool_settings.note(self.desired, observed)

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
        now = datetime.now(UTC)
        self.conditions = derive_conditions(
            self.desired, observed, self.conditions, now, loop_error=loop_error
        )
        if self.extra_conditions is not None:
            self.conditions = self.extra_conditions(self.conditions, now)
        return self.conditions

    def note_pass_failed(self, error: str) -> None:
        """LoopHealthy turns False (until a pass completes again)."""
        if self.conditions is not None:
            self.conditions = with_loop_failure(self.conditions, datetime.now(UTC), error)

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

    async def _reconcile_once(
        self, policy: PlanPolicy, *, execute: bool = True, only: Plan | None = None
    ) -> PassResult:
        """Observe, plan, keep relays, execute chain actions not already in flight.

        With ``only`` (a saved plan the operator approved), execute just those of its
        actions that the fresh plan still has unchanged: nothing the operator did not see."""
        started = time.monotonic()
        self._with_created_pools()
        observed = await self.observe()
        plan = plan_for(self.desired, observed, policy)
        result = PassResult(observed, plan, conditions=self.note_conditions(observed))
        if not execute:
            return result
        if self.gate is not None and not await self.gate.allow(self):
            self.relays.reconcile({})  # not the owner: no relay, no extrinsic
            result.duration_seconds = time.monotonic() - started
            return result
        wanted = self.relay_plan(observed)
        if policy.targets:  # --target: relays (and pRuntime initialisation) of targets only
            keep = targeted_workers(self.desired, policy.targets)
            wanted = {name: relay for name, relay in wanted.items() if name in keep}
        before = set(self.relays.statuses())
        self.relays.reconcile(wanted)
        result.started_relays = sorted(set(wanted) - before)
        in_flight = self.journal.pending_action_ids()
        chain_actions = [
            a for a in plan.actions if a.kind not in LOCAL_KINDS and a.id not in in_flight
        ]
        if only is not None:
            approved = {a.id: a for a in only.actions}
            chain_actions = [
                a
                for a in chain_actions
                if a.id in approved and not approved[a.id].effect_differences(a)
            ]
        if chain_actions:
            result.results = await self.executor.execute(chain_actions)
            self._record_top_ups(plan, result.results)
            self._record_created_pools(plan, result.results)
        if self.notifier is not None:
            await self.notifier.notify(plan)
        result.duration_seconds = time.monotonic() - started
        return result

    def _record_top_ups(self, plan: Plan, results: list[ActionResult]) -> None:
        by_id = {a.id: a for a in plan.actions}
        today = datetime.now(UTC).strftime("%Y-%m-%d")
        for r in results:
            action = by_id.get(r.action_id)
            if action and action.kind is ActionKind.TOP_UP and r.ok and action.destination:
                self.journal.record_top_up(
                    today, action.destination, action.amount or 0, r.extrinsic_hash or ""
                )

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
    ) -> None:
        """The reconcile loop: a pass per interval, or sooner when ``changed`` is set
        (inventory edited). ``reload`` returns a new Desired, or None to keep the current
        one (an invalid inventory changes nothing). Failed passes back off along
        ``settings.loop.backoff_seconds``; every pass re-observes everything."""
        failures = 0
        while not stop.is_set():
            if changed is not None and changed.is_set():
                changed.clear()
                fresh = reload() if reload else None
                if fresh is not None:
                    self.set_desired(fresh)
            interval = self.desired.settings.loop.interval_seconds
            try:
                result = await self.reconcile_once(policy)
            except TemporaryError as exc:
                delays = self.desired.settings.loop.backoff_seconds
                delay = delays[min(failures, len(delays) - 1)] * random.uniform(0.8, 1.2)
                failures += 1
                if on_error:
                    on_error(exc, delay)
                interval = delay
            else:
                failures = 0
                if on_pass:
                    on_pass(result)
            waiters = [asyncio.ensure_future(stop.wait())]
            if changed is not None:
                waiters.append(asyncio.ensure_future(changed.wait()))
            _, pending = await asyncio.wait(
                waiters, timeout=interval, return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()

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
        await self.rpc.close()
        if self.relaychain_rpc is not None:
            await self.relaychain_rpc.close()
        await self.transport.aclose()
        self.journal.close()


def settled(plan: Plan, remaining_seconds: float) -> bool:
    """Nothing left that this run can see through: no actions, and every wait is known to
    end only after the time that is left (a cool-down); sync and score waits keep going."""
    return not plan.actions and all(
        w.eta_seconds is not None and w.eta_seconds > remaining_seconds for w in plan.waits
    )
