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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from poolkeeper.apply.collector import TxCollector
from poolkeeper.apply.executor import ActionResult, Executor, Job
from poolkeeper.apply.journal import Journal
from poolkeeper.chain._rpc import AsyncRpc
from poolkeeper.chain.ports import CallSpec, Signer
from poolkeeper.chain.relay_source import ParachainSource, RelaySource
from poolkeeper.chain.substrate import SubstrateChain
from poolkeeper.errors import SecretError, TemporaryError
from poolkeeper.keys import DerivedKey, Mnemonic, derive_keys
from poolkeeper.model.actions import Action, ActionKind, Plan
from poolkeeper.model.desired import AccountRole, Desired, WorkerState, external_relay_command
from poolkeeper.model.observed import Observed, PRuntimeInfo
from poolkeeper.model.ss58 import decode_address
from poolkeeper.notify import WebhookNotifier
from poolkeeper.observe.observer import observe
from poolkeeper.plan import PlanPolicy, plan_for
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


class KeyRing:
    """Signers for the inventory's accounts, derived from the master secret once."""

    def __init__(self, desired: Desired, mnemonic: Mnemonic | None) -> None:
        self._mnemonic = mnemonic
        self._keys: dict[str, DerivedKey] = {}
        self._addresses: dict[str, str] = {}
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

    def signer(self, account: str) -> Signer:
        key = self._keys.get(account)
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
        )


@dataclass
class PassResult:
    """What one reconcile pass saw, planned and did."""

    observed: Observed
    plan: Plan
    results: list[ActionResult] = field(default_factory=list)
    started_relays: list[str] = field(default_factory=list)
    resolved: list[ActionResult] = field(default_factory=list)
    """Actions of journaled extrinsics whose outcome this pass settled (included, or
    proven dropped: then planned again in this very pass)."""
    in_flight: list[str] = field(default_factory=list)
    """Planned actions not sent because an extrinsic carrying them is still pending."""


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
    ) -> None:
        self.desired = desired
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
        self.journal = Journal(state_dir / "journal.sqlite")
        self.keys = KeyRing(desired, mnemonic)
        self.desired = self._with_derived_addresses(desired)
        self._top_ups_sent: dict[str, Action] = {}
        self.executor = Executor(
            self.chain,
            self.chain,
            self.journal,
            self.keys,
            progress=progress,
            on_prepared=self._top_up_prepared,
        )
        self.collector = TxCollector(self.executor)
        self.relays = RelaySupervisor(
            self.source,
            self.transport,
            self._submit_for,
            idle_seconds=relay_idle_seconds,
            in_flight=self._carried_by_pending,
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
            if account.role is AccountRole.RELAY_SIGNER and account.derivation:
                return account.name
        for pool in self.desired.pools:
            return pool.signer
        return None

    def _submit_for(self, worker: str) -> Submit | None:
        signer = self._relay_signer
        if signer is None:
            return None

        async def submit(job_id: str, call: CallSpec) -> bool:
            if self._carried_by_pending(job_id):
                return True  # asked again here: no await since the relay's own check
            result = await self.collector.submit(Job(job_id, call, signer))
            return result.ok

        return submit

    def _carried_by_pending(self, job_id: str) -> bool:
        """Whether a journaled extrinsic that may still be included carries this job (its
        bytes are re-sent by the journal's rule): sending it again would execute it twice,
        or for egress fail ``PhalaMq.BadSequence``. Once proven dropped it is not pending."""
        return job_id in self.journal.pending_action_ids()

    def relay_plan(self, observed: Observed) -> dict[str, tuple[str, AnyRelayOptions]]:
        """The relays the inventory needs, with their options (external ones included)."""
        provider = _PROVIDER_BYTES[self.desired.settings.relay.attestation_provider]
        if self.external_relays.settings != self.desired.settings:
            self.external_relays = dataclasses.replace(
                self.external_relays, settings=self.desired.settings
            )
        wanted: dict[str, tuple[str, AnyRelayOptions]] = {}
        for worker in self.desired.workers:
            if worker.state is WorkerState.REMOVED:
                continue
            pool = self.desired.pools_by_name.get(worker.pool) if worker.pool else None
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
        today = datetime.now(UTC).strftime("%Y-%m-%d")
        observed = await observe(
            self.desired,
            self.chain,
            PRuntimeInfoReader(self.transport),
            relays=self.relays.statuses(),
            relay_details=self.relays.details(),
            topped_up_today=self.journal.topped_up_on(today),
        )
        self.relays.note_observation(observed)
        relays, details = self.relays.statuses(), self.relays.details()
        if relays != observed.relays or details != observed.relay_details:
            observed = observed.model_copy(update={"relays": relays, "relay_details": details})
        return observed

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
        """Observe, plan, keep relays, execute chain actions not already in flight.

        With ``only`` (a saved plan the operator approved), execute just those of its
        actions that the fresh plan still has unchanged: nothing the operator did not see."""
        self._with_created_pools()
        # Every executing pass first decides what became of unsettled extrinsics (one
        # rule, apply.settlement): never planned twice, never left unknown forever.
        resolved = await self.executor.recover() if execute else []
        self._record_top_ups_resolved(resolved)
        observed = await self.observe()
        plan = plan_for(self.desired, observed, policy)
        result = PassResult(observed, plan, resolved=resolved)
        if not execute:
            return result
        wanted = self.relay_plan(observed)
        before = set(self.relays.statuses())
        self.relays.reconcile(wanted)
        result.started_relays = sorted(set(wanted) - before)
        in_flight = self.journal.pending_action_ids()
        result.in_flight = sorted(a.id for a in plan.actions if a.id in in_flight)
        chain_actions = [
            a for a in plan.actions if a.kind not in LOCAL_KINDS and a.id not in in_flight
        ]
        if only is not None:
            approved = {a.id: a for a in only.actions}
            chain_actions = [a for a in chain_actions if approved.get(a.id) == a]
        if chain_actions:
            self._top_ups_sent = {a.id: a for a in chain_actions if a.kind is ActionKind.TOP_UP}
            try:
                result.results = await self.executor.execute(chain_actions)
            finally:
                self._top_ups_sent = {}
            self._record_top_ups(plan, result.results)
            self._record_created_pools(plan, result.results)
        if self.notifier is not None:
            await self.notifier.notify(plan)
        return result

    def _top_up_prepared(self, extrinsic_hash: str, action_ids: Sequence[str]) -> None:
        """A top-up counts against the day's cap from the moment it is signed, before it
        is journaled or sent: a crash can never leave a sent transfer uncounted."""
        today = datetime.now(UTC).strftime("%Y-%m-%d")
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
        """Adopt a reloaded inventory (derived addresses and created pools re-applied)."""
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
