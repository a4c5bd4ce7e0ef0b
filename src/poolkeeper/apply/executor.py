"""The executor: plan actions in, signed batched extrinsics out, a result per action back.

Per signer (a pool's operator, possibly acting as a proxy of the owner) actions are
packed into ``Utility.force_batch`` extrinsics of at most ``max_batch`` calls, wrapped
in ``Proxy.proxy`` where the pool is proxied. Batches of one signer carry consecutive
nonces and may be in flight together; signers run concurrently. Every extrinsic is
journaled before it is sent (see ``journal``), and a signer that cannot pay the fee
fails only its own actions, with a clear message, while other pools proceed.

Actions whose prerequisites are in the same plan run in later waves; an action whose
prerequisite failed is reported as skipped, never sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from poolkeeper._crash_points import crash_point
from poolkeeper.apply.audit import AuditCall, AuditEntry
from poolkeeper.apply.journal import Journal, JournalStatus
from poolkeeper.apply.settlement import Verdict, resolve_unsettled
from poolkeeper.chain.ports import (
    CallSpec,
    ChainEvent,
    ChainReader,
    ChainWriter,
    Outcome,
    SignedExtrinsic,
    Signer,
    TxStatus,
)
from poolkeeper.errors import TemporaryError
from poolkeeper.model.actions import Action, ActionKind

MAX_BATCH = 100


@dataclass(frozen=True)
class ActionResult:
    """What happened to one action."""

    action_id: str
    ok: bool
    error: str | None = None
    extrinsic_hash: str | None = None
    block_number: int | None = None
    events: tuple[ChainEvent, ...] = ()


class SignerSource(Protocol):
    """Resolves the account names of actions into signers and addresses."""

    def signer(self, account: str) -> Signer: ...

    def address(self, account: str) -> str: ...


class UnsupportedAction(ValueError):
    """The action is not carried out by a chain call (relays, derivation)."""


def call_for(action: Action, destination_address: str | None = None) -> CallSpec:
    """The runtime call that performs ``action``."""
    worker = f"0x{action.pubkey}" if action.pubkey else None
    match action.kind:
        case ActionKind.CREATE_POOL:
            return CallSpec("PhalaStakePoolv2", "create")
        case ActionKind.ADD_WORKER:
            return CallSpec("PhalaStakePoolv2", "add_worker", {"pid": action.pid, "pubkey": worker})
        case ActionKind.START_COMPUTING:
            return CallSpec(
                "PhalaStakePoolv2",
                "start_computing",
                {"pid": action.pid, "worker": worker, "stake": action.amount},
            )
        case ActionKind.RESTART_COMPUTING:
            return CallSpec(
                "PhalaStakePoolv2",
                "restart_computing",
                {"pid": action.pid, "worker": worker, "stake": action.amount},
            )
        case ActionKind.STOP_COMPUTING:
            return CallSpec(
                "PhalaStakePoolv2", "stop_computing", {"pid": action.pid, "worker": worker}
            )
        case ActionKind.RECLAIM_WORKER:
            return CallSpec(
                "PhalaStakePoolv2", "reclaim_pool_worker", {"pid": action.pid, "worker": worker}
            )
        case ActionKind.REMOVE_WORKER:
            return CallSpec(
                "PhalaStakePoolv2", "remove_worker", {"pid": action.pid, "worker": worker}
            )
        case ActionKind.SET_POOL_CAP:
            return CallSpec(
                "PhalaStakePoolv2", "set_cap", {"pid": action.pid, "cap": action.amount}
            )
        case ActionKind.SET_POOL_COMMISSION:
            return CallSpec(
                "PhalaStakePoolv2",
                "set_payout_pref",
                {"pid": action.pid, "payout_commission": action.amount},
            )
        case ActionKind.TOP_UP:
            dest = destination_address or action.destination
            return CallSpec(
                "Balances", "transfer_keep_alive", {"dest": {"Id": dest}, "value": action.amount}
            )
        case _:
            raise UnsupportedAction(f"{action.kind} is not a chain call")


@dataclass(frozen=True)
class Job:
    """One runtime call to make, with who signs it and what must succeed first."""

    id: str
    call: CallSpec
    signer: str
    proxy_for: str | None = None
    prerequisites: tuple[str, ...] = ()
    worker: str | None = None
    pool: str | None = None
    """Worker and pool names of the action, for the audit log."""


def job_for(action: Action) -> Job:
    """The job carrying out a chain action (``UnsupportedAction`` for local ones)."""
    if action.signer is None:
        raise UnsupportedAction(f"{action.id} has no signer: not a chain action")
    return Job(
        action.id,
        call_for(action),
        action.signer,
        action.proxy_for,
        action.prerequisites,
        worker=action.worker,
        pool=action.pool,
    )


@dataclass(frozen=True)
class _Group:
    signer: str
    proxy_for: str | None


ProgressHook = Callable[[str], None]
PreparedHook = Callable[[str, Sequence[str]], None]
"""Told (extrinsic hash, action ids) of every extrinsic just before it is journaled."""


class AuditSink(Protocol):
    """Receives one entry per settled extrinsic (``apply.audit.AuditLog``)."""

    def record(self, entry: AuditEntry) -> None: ...


@dataclass(frozen=True)
class _Sent:
    """What the audit log needs about an extrinsic beyond its outcome."""

    signer_name: str | None
    address: str
    nonce: int
    jobs: tuple[Job, ...] = ()
    estimated_fee: int | None = None


class Executor:
    """Carries out chain actions through the chain port, journaled."""

    def __init__(
        self,
        writer: ChainWriter,
        reader: ChainReader,
        journal: Journal,
        signers: SignerSource,
        *,
        max_batch: int = MAX_BATCH,
        progress: ProgressHook | None = None,
        audit: AuditSink | None = None,
        on_prepared: PreparedHook | None = None,
    ) -> None:
        if not 1 <= max_batch <= MAX_BATCH:
            raise ValueError(f"max_batch must be within 1..{MAX_BATCH}")
        self._writer = writer
        self._reader = reader
        self._journal = journal
        self._signers = signers
        self._max_batch = max_batch
        self._progress = progress or (lambda _msg: None)
        self._audit = audit
        self._on_prepared = on_prepared or (lambda _hash, _ids: None)
        self._nonces: dict[str, int] = {}
        self._nonce_locks: dict[str, asyncio.Lock] = {}
        self._in_flight: set[str] = set()
        """Hashes of extrinsics this process submitted and is waiting for."""

    async def recover(self) -> list[ActionResult]:
        """Resolve every journaled extrinsic whose outcome is unknown (after a crash, a
        lost connection, a node restart), by the one rule of ``settlement``.

        Included: settled as found. Proven dropped: settled as dropped (its actions may
        be planned again). Otherwise it stays pending, its bytes re-submitted, and its
        actions are not planned again (``Journal.pending_action_ids``); the next call
        decides again. Extrinsics this process is still waiting for are left to it.
        Returns a result per action of every extrinsic settled here."""
        results: list[ActionResult] = []
        for entry in self._journal.unsettled():
            if entry.extrinsic_hash in self._in_flight:
                continue
            resolution = await resolve_unsettled(entry, self._writer)
            if resolution.verdict is Verdict.PENDING:
                self._progress(f"extrinsic {entry.extrinsic_hash} pending: {resolution.reason}")
                continue
            assert resolution.outcome is not None
            if resolution.verdict is Verdict.DROPPED:
                self._progress(f"extrinsic {entry.extrinsic_hash} dropped: {resolution.reason}")
                self._forget_nonce(entry.signer)
            sent = _Sent(None, entry.signer, entry.nonce)
            results.extend(
                self._settle(entry.extrinsic_hash, entry.action_ids, resolution.outcome, sent)
            )
        return results

    async def execute(self, actions: Sequence[Action]) -> list[ActionResult]:
        """Carry out the chain actions of a plan; one result per action, in input order."""
        jobs: list[Job] = []
        local: dict[str, ActionResult] = {}
        for action in actions:
            try:
                jobs.append(job_for(action))
            except UnsupportedAction as exc:
                local[action.id] = ActionResult(action.id, False, str(exc))
        done = {r.action_id: r for r in await self.execute_jobs(jobs)}
        done.update(local)
        return [done[a.id] for a in actions]

    async def execute_jobs(self, jobs: Sequence[Job], *, quiet: bool = False) -> list[ActionResult]:
        """Run jobs in waves of satisfied prerequisites; one result per job, in input order.
        ``quiet`` keeps background work (relay egress) out of the progress report."""
        done: dict[str, ActionResult] = {}
        pending = list(jobs)
        while pending:
            pending_ids = {j.id for j in pending}
            wave = [j for j in pending if not any(p in pending_ids for p in j.prerequisites)]
            if not wave:
                for job in pending:
                    done[job.id] = ActionResult(job.id, False, "prerequisites form a cycle")
                break
            runnable: list[Job] = []
            for job in wave:
                failed = [p for p in job.prerequisites if p in done and not done[p].ok]
                if failed:
                    done[job.id] = ActionResult(
                        job.id, False, f"skipped: prerequisite {failed[0]} failed"
                    )
                else:
                    runnable.append(job)
            for result in await self._run_wave(runnable, quiet):
                done[result.action_id] = result
            wave_ids = {j.id for j in wave}
            pending = [j for j in pending if j.id not in wave_ids]
        return [done[j.id] for j in jobs]

    async def _run_wave(self, jobs: Sequence[Job], quiet: bool) -> list[ActionResult]:
        groups: dict[_Group, list[Job]] = {}
        for job in jobs:
            groups.setdefault(_Group(job.signer, job.proxy_for), []).append(job)
        by_signer: dict[str, list[tuple[_Group, list[Job]]]] = {}
        for group, members in groups.items():
            for start in range(0, len(members), self._max_batch):
                chunk = members[start : start + self._max_batch]
                by_signer.setdefault(group.signer, []).append((group, chunk))
        if not by_signer:
            return []
        signers = {name: self._signers.signer(name) for name in by_signer}
        try:
            # One read of every signer's balance per wave, not one per signer.
            state = await self._reader.read_state((), sorted({s.address for s in signers.values()}))
        except TemporaryError as exc:
            return [
                ActionResult(job.id, False, f"chain unavailable: {exc}")
                for chunks in by_signer.values()
                for _, chunk in chunks
                for job in chunk
            ]
        free = {a.address: a.free for a in state.accounts.values()}
        outcomes = await asyncio.gather(
            *(
                self._run_signer(
                    signers[name], name, chunks, free.get(signers[name].address, 0), quiet
                )
                for name, chunks in sorted(by_signer.items())
            )
        )
        return [r for rs in outcomes for r in rs]

    async def _run_signer(
        self,
        signer: Signer,
        signer_name: str,
        chunks: list[tuple[_Group, list[Job]]],
        free: int,
        quiet: bool,
    ) -> list[ActionResult]:
        calls_of = [[j.call for j in chunk] for _, chunk in chunks]
        try:
            fees = [
                await self._writer.estimate_fee(
                    signer, calls, proxy_for=self._proxy_address(group.proxy_for)
                )
                for (group, _), calls in zip(chunks, calls_of, strict=True)
            ]
        except TemporaryError as exc:
            return [
                ActionResult(a.id, False, f"chain unavailable: {exc}") for _, c in chunks for a in c
            ]
        if sum(fees) > free:
            message = (
                f"signer {signer_name} ({signer.address}) cannot pay the fees: needs "
                f"{sum(fees)} plancks, has {free} free"
            )
            return [ActionResult(a.id, False, message) for _, c in chunks for a in c]
        sent = [
            self._send_chunk(signer, group, chunk, calls, quiet, estimated_fee=fee)
            for (group, chunk), calls, fee in zip(chunks, calls_of, fees, strict=True)
        ]
        results = await asyncio.gather(*sent)
        return [r for rs in results for r in rs]

    async def _send_chunk(
        self,
        signer: Signer,
        group: _Group,
        chunk: list[Job],
        calls: list[CallSpec],
        quiet: bool,
        *,
        estimated_fee: int | None = None,
    ) -> list[ActionResult]:
        proxy = self._proxy_address(group.proxy_for)
        ids = [a.id for a in chunk]
        for attempt in range(2):
            signed = await self._signed(signer, calls, proxy)
            self._on_prepared(signed.extrinsic_hash, ids)
            self._journal.record_prepared(
                extrinsic_hash=signed.extrinsic_hash,
                signer=signed.signer,
                nonce=signed.nonce,
                data=signed.data,
                action_ids=ids,
                era_start=signed.era_start,
                era_period=signed.era_period,
            )
            if not quiet:
                self._progress(
                    f"{group.signer}: sending {len(calls)} call(s), nonce {signed.nonce}"
                )
            crash_point("before_submit")
            self._in_flight.add(signed.extrinsic_hash)
            outcome: Outcome | None
            try:
                outcome = await self._writer.send(signed)
                if outcome.status is TxStatus.DROPPED:
                    outcome = await self._proven_dropped(signed, outcome)
            except TemporaryError as exc:
                # Unknown whether it reached the node: leave it PREPARED for recover().
                self._forget_nonce(signer.address)
                return [
                    ActionResult(i, False, f"outcome unknown ({exc}); will be resolved")
                    for i in ids
                ]
            finally:
                self._in_flight.discard(signed.extrinsic_hash)
            if outcome is None:
                self._forget_nonce(signer.address)
                return [
                    ActionResult(i, False, "outcome unknown (still pending); will be resolved")
                    for i in ids
                ]
            crash_point("before_settle")
            sent = _Sent(group.signer, signer.address, signed.nonce, tuple(chunk), estimated_fee)
            if outcome.status is TxStatus.REJECTED and attempt == 0 and _nonce_problem(outcome):
                self._settle(signed.extrinsic_hash, ids, outcome, sent)
                self._forget_nonce(signer.address)
                continue
            if outcome.status in (TxStatus.REJECTED, TxStatus.DROPPED):
                self._forget_nonce(signer.address)
            return self._settle(signed.extrinsic_hash, ids, outcome, sent)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _proven_dropped(self, signed: SignedExtrinsic, outcome: Outcome) -> Outcome | None:
        """A waiter saw no inclusion before the era ended: the rule decides (it scans
        from the era start), so "dropped" is recorded only when proven."""
        entry = next(
            (e for e in self._journal.unsettled() if e.extrinsic_hash == signed.extrinsic_hash),
            None,
        )
        if entry is None:
            return outcome
        resolution = await resolve_unsettled(entry, self._writer, resend=False)
        return resolution.outcome

    async def _signed(
        self, signer: Signer, calls: list[CallSpec], proxy: str | None
    ) -> SignedExtrinsic:
        lock = self._nonce_locks.setdefault(signer.address, asyncio.Lock())
        async with lock:
            if signer.address not in self._nonces:
                self._nonces[signer.address] = await self._reader.account_nonce(signer.address)
            # After what the pool holds (system_accountNextIndex), what this process
            # signed, and every extrinsic of this signer the journal has pending (a node
            # restart may have emptied the pool): a pending nonce is never used again.
            journal_next = max(
                (e.nonce + 1 for e in self._journal.unsettled() if e.signer == signer.address),
                default=0,
            )
            nonce = max(self._nonces[signer.address], journal_next)
            signed = await self._writer.sign(signer, calls, proxy_for=proxy, nonce=nonce)
            self._nonces[signer.address] = nonce + 1
            return signed

    def _forget_nonce(self, address: str) -> None:
        self._nonces.pop(address, None)

    def forget_nonces(self, addresses: Iterable[str]) -> None:
        """Read these signers' nonces from the chain again before their next extrinsic
        (HA: another process may have signed for them since this one last did)."""
        for address in addresses:
            self._forget_nonce(address)

    def _settle(
        self,
        extrinsic_hash: str,
        ids: Sequence[str],
        outcome: Outcome,
        sent: _Sent | None = None,
    ) -> list[ActionResult]:
        status = JournalStatus(outcome.status.value)
        if outcome.status in (TxStatus.IN_BLOCK, TxStatus.FINALIZED) and len(outcome.items) == len(
            ids
        ):
            results = [
                ActionResult(
                    i, item.ok, item.error, extrinsic_hash, outcome.block_number, item.events
                )
                for i, item in zip(ids, outcome.items, strict=True)
            ]
        else:
            error = outcome.error or f"extrinsic {outcome.status.value}"
            results = [
                ActionResult(i, False, error, extrinsic_hash, outcome.block_number) for i in ids
            ]
        self._journal.settle(
            extrinsic_hash,
            status,
            block_number=outcome.block_number,
            block_hash=outcome.block_hash,
            error=outcome.error,
            results=[(r.action_id, r.ok, r.error) for r in results],
        )
        if self._audit is not None and sent is not None:
            self._audit_settled(self._audit, extrinsic_hash, outcome, sent, results)
        return results

    def _audit_settled(
        self,
        audit: AuditSink,
        extrinsic_hash: str,
        outcome: Outcome,
        sent: _Sent,
        results: list[ActionResult],
    ) -> None:
        jobs = {j.id: j for j in sent.jobs}
        calls = []
        for r in results:
            job = jobs.get(r.action_id)
            call = f"{job.call.pallet}.{job.call.function}" if job else None
            worker, pool = (job.worker, job.pool) if job else (None, None)
            calls.append(AuditCall(r.action_id, call, worker, pool, r.ok, r.error))
        included = outcome.status in (TxStatus.IN_BLOCK, TxStatus.FINALIZED, TxStatus.FAILED)
        fee, estimated = outcome.fee, False
        if fee is None and included and sent.estimated_fee is not None:
            fee, estimated = sent.estimated_fee, True
        entry = AuditEntry(
            extrinsic_hash=extrinsic_hash,
            signer_address=sent.address,
            signer_name=sent.signer_name,
            nonce=sent.nonce,
            status=outcome.status.value,
            calls=tuple(calls),
            block_number=outcome.block_number,
            block_hash=outcome.block_hash,
            fee=fee,
            fee_estimated=estimated,
            error=outcome.error,
        )
        try:
            audit.record(entry)
        except OSError as exc:
            # The journal already holds the outcome; a full disk must not fail the action.
            self._progress(f"audit log not written ({exc.strerror or exc})")

    def _proxy_address(self, account: str | None) -> str | None:
        return self._signers.address(account) if account else None


def _nonce_problem(outcome: Outcome) -> bool:
    text = (outcome.error or "").lower()
    return "outdated" in text or "stale" in text or "priority is too low" in text
