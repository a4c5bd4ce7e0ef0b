"""Workers: the next steps of each worker toward its declared state.

A worker's place on the road is derived from observations (pRuntime info and the
chain's registry, binding, session and assignment) every pass. From there the
planner emits the actions whose preconditions hold now, chaining those that become
possible within the same pass through ``prerequisites`` (reclaim → remove → add →
start), and a ``Wait`` for the first step that needs the world to move (sync,
initial score, cool-down, pool creation). Forward steps (register, add, start) need
a reachable, synced pRuntime; backward steps (stop, reclaim, remove) only need the
chain. See docs/planner.md for every rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from poolkeeper.model.actions import ActionKind, EtaBasis
from poolkeeper.model.amounts import format_pha
from poolkeeper.model.conditions import genesis_mismatch
from poolkeeper.model.desired import AccountRole, WorkerSpec, WorkerState
from poolkeeper.model.durations import format_duration
from poolkeeper.model.observed import ChainWorker, PRuntimeInfo, RelayStatus, SessionState
from poolkeeper.model.phase import is_synced
from poolkeeper.plan._context import Context, PoolRun, make_action, normalise_pubkey
from poolkeeper.plan._etas import INCLUSION_BLOCKS, blocks_to_seconds, score_eta, sync_eta

_ACTIVE_RELAY = frozenset({RelayStatus.RUNNING, RelayStatus.BACKING_OFF, RelayStatus.STALLED})


@dataclass
class _Worker:
    """One worker during a pass: its joins and the chain of actions planned so far."""

    ctx: Context
    target: str
    name: str | None
    """Inventory name; None for a worker found on chain only."""
    pool: PoolRun | None
    """The pool the inventory puts it in."""
    pubkey: str | None
    chain: ChainWorker | None
    reachable: bool
    synced: bool
    group: str | None
    """Pool name its waits and alerts are grouped under."""
    endpoint: str | None = None
    last: str | None = None
    ids: list[str] = field(default_factory=list)

    def session(self) -> SessionState | None:
        if self.chain is None or self.chain.pool_pid is None:
            return None
        return self.chain.session_state

    def act(
        self,
        kind: ActionKind,
        reason: str,
        run: PoolRun | None,
        *,
        after: tuple[str, ...] = (),
        **fields: object,
    ) -> None:
        """Plan ``kind`` after this worker's previous action (and ``after``)."""
        prerequisites: tuple[str, ...] = (self.last or "", *after)
        if run is not None:
            fields.setdefault("pool", run.spec.name)
            if kind not in (ActionKind.START_RELAY, ActionKind.STOP_RELAY):
                prerequisites += run.prerequisites
                fields.setdefault("pid", run.pid)
                fields.setdefault("signer", run.spec.signer)
                if run.spec.proxied:
                    fields.setdefault("proxy_for", run.spec.owner)
        action = make_action(
            kind,
            self.target,
            reason,
            prerequisites=prerequisites,
            worker=self.name,
            pubkey=self.pubkey,
            **fields,
        )
        self.ctx.add_action(action)
        self.last = action.id

    def wait(
        self,
        awaiting: str,
        reason: str,
        eta_seconds: int | None = None,
        pool: PoolRun | None = None,
        basis: EtaBasis = EtaBasis.CHAIN,
    ) -> None:
        group = pool.spec.name if pool is not None else self.group
        self.ctx.wait(self.target, awaiting, reason, group, eta_seconds, basis=basis)

    def alert(self, message: str, *, critical: bool = False) -> None:
        self.ctx.alert(self.target, message, self.group, critical=critical)


def plan_worker(ctx: Context, spec: WorkerSpec) -> None:
    """Plan one inventory worker."""
    pool = ctx.pools.get(spec.pool) if spec.pool else None
    target = f"worker/{spec.name}"
    group = spec.pool
    observation = ctx.observed.pruntimes.get(spec.endpoint)
    info = observation.info if observation is not None else None
    reported = normalise_pubkey(info.public_key) if info and info.public_key else None
    pinned = normalise_pubkey(spec.pubkey) if spec.pubkey else None
    if pinned and reported and pinned != reported:
        ctx.alert(
            target,
            f"pRuntime at {spec.endpoint} reports public key {reported}, the inventory pins "
            f"{pinned}: nothing is planned for this worker until they agree",
            group,
            critical=True,
        )
        if pinned:
            ctx.claimed_pubkeys.add(pinned)
        ctx.claimed_pubkeys.add(reported)
        return
    pubkey = pinned or reported
    if pubkey is None:
        ctx.unresolved_workers += 1
    else:
        ctx.claimed_pubkeys.add(pubkey)
    worker = _Worker(
        ctx=ctx,
        target=target,
        name=spec.name,
        pool=pool,
        pubkey=pubkey,
        chain=ctx.observed.chain_workers.get(pubkey) if pubkey else None,
        reachable=info is not None,
        synced=is_synced(observation, ctx.observed.head),
        group=group,
        endpoint=spec.endpoint,
    )
    relay = ctx.observed.relays.get(spec.name)
    draining = pool is not None and pool.spec.draining
    if spec.state is WorkerState.REMOVED or draining:
        why = "pool draining" if draining else "declared removed"
        _plan_removed(worker, relay, observation.error if observation else None, why)
        return
    if not worker.reachable:
        error = (observation.error if observation else None) or "not observed"
        worker.alert(f"pRuntime unreachable: {error}")
    elif wrong_genesis := genesis_mismatch(info, ctx.observed):
        worker.alert(wrong_genesis, critical=True)
    elif not worker.synced:
        assert info is not None
        _relay_and_sync(worker, relay, info)
    if not _chain_checks(worker):
        return
    if spec.state is WorkerState.SYNC_ONLY:
        bound = _bound_pool(worker)
        if bound is not None:
            _leave(worker, bound, remove=False, why="declared sync_only")
        return
    assert pool is not None, "the loader requires a pool for computing and idle workers"
    _toward_pool(worker, spec, pool)


def _relay_and_sync(worker: _Worker, relay: RelayStatus | None, info: PRuntimeInfo) -> None:
    ctx = worker.ctx
    finalized = ctx.observed.head.finalized_number
    eta: int | None = None
    if not info.initialized:
        why = "pRuntime is not initialized: the relay initializes and syncs it"
        waiting = "pRuntime not initialized yet; ETA once it syncs at a measured rate"
    else:
        behind = max(0, finalized - info.blocknum)
        why = f"pRuntime is {behind} blocks behind the finalized head: the relay syncs it"
        waiting = f"at block {info.blocknum}, finalized head {finalized} ({behind} blocks behind)"
        rate = ctx.observed.sync_rates.get(worker.endpoint) if worker.endpoint else None
        eta = sync_eta(behind, rate, ctx.observed.block_time_ms)
        if rate is None:
            waiting += "; ETA once a sync rate is measured (next observation)"
        elif eta is None:
            waiting += f"; syncing at {rate:.1f} blocks/s, not gaining on the head: no ETA"
        else:
            waiting += f"; syncing at {rate:.1f} blocks/s"
    if relay is None or relay is RelayStatus.STOPPED:
        worker.act(ActionKind.START_RELAY, why, worker.pool)
    elif relay is RelayStatus.STALLED:
        worker.alert("relay is stalled: the pRuntime is not receiving blocks")
    elif relay is RelayStatus.BACKING_OFF:
        waiting += "; the relay is backing off after errors"
    worker.wait("sync", waiting, eta, basis=EtaBasis.ESTIMATE)


def _bound_pool(worker: _Worker) -> PoolRun | None:
    chain = worker.chain
    if chain is None or chain.pool_pid is None:
        return None
    return worker.ctx.pools_by_pid.get(chain.pool_pid)


def _chain_checks(worker: _Worker) -> bool:
    """Foreign pool or foreign operator: alert, and no transaction for this worker."""
    chain = worker.chain
    if chain is None:
        return True
    ctx = worker.ctx
    if chain.pool_pid is not None and chain.pool_pid not in ctx.pools_by_pid:
        worker.alert(
            f"assigned on chain to pool {chain.pool_pid}, which is not in the inventory: "
            "no transaction is planned for it",
            critical=True,
        )
        return False
    if chain.operator is None:
        return True
    expected = {
        run.owner_address
        for run in (_bound_pool(worker), worker.pool)
        if run is not None and run.owner_address is not None
    }
    if expected and chain.operator not in expected:
        worker.alert(
            f"registered on chain under operator {chain.operator}, not this pool's owner: "
            "no transaction is planned for it",
            critical=True,
        )
        return False
    return True


def _cool_down_left(worker: _Worker) -> int:
    chain = worker.chain
    assert chain is not None
    start = chain.cool_down_start or 0
    return start + worker.ctx.observed.cool_down_period - worker.ctx.now_seconds


def _leave(worker: _Worker, pool: PoolRun, *, remove: bool, why: str) -> bool:
    """Walk computing → cool-down → Ready (→ unbound when ``remove``). True when done now."""
    if pool.blocked:
        return False
    state = worker.session()
    period = worker.ctx.observed.cool_down_period
    if state in (SessionState.WORKER_IDLE, SessionState.WORKER_UNRESPONSIVE):
        worker.act(ActionKind.STOP_COMPUTING, f"{why}: stop computing", pool)
        worker.wait(
            "cool-down",
            f"after stop_computing the stake stays locked for {format_duration(period)}; "
            "then reclaim",
            period,
            pool,
        )
        return False
    if state is SessionState.WORKER_COOLING_DOWN:
        left = _cool_down_left(worker)
        if left > 0:
            worker.wait("cool-down", f"{why}: reclaim once the cool-down ends", left, pool)
            return False
        worker.act(ActionKind.RECLAIM_WORKER, f"{why}: cool-down is over, reclaim the stake", pool)
        state = SessionState.READY
    if state is SessionState.READY and remove:
        worker.act(ActionKind.REMOVE_WORKER, f"{why}: remove from pool {pool.spec.name}", pool)
        return True
    return state is None or not remove


def _plan_removed(
    worker: _Worker, relay: RelayStatus | None, error: str | None, why: str = "declared removed"
) -> None:
    if worker.pubkey is None and not worker.reachable:
        worker.alert(
            f"cannot check the chain: pRuntime unreachable ({error or 'not observed'}) and "
            "no pubkey pinned: pin `pubkey`, or delete the worker from the inventory once "
            "it is out of its pool"
        )
    if not _chain_checks(worker):
        return
    bound = _bound_pool(worker)
    if bound is not None and not _leave(worker, bound, remove=True, why=why):
        return
    if relay in _ACTIVE_RELAY:
        worker.act(ActionKind.STOP_RELAY, f"{why}: stop its relay", worker.pool)


def _toward_pool(worker: _Worker, spec: WorkerSpec, pool: PoolRun) -> None:
    """computing or idle in ``pool``: leave another pool first, then go forward."""
    bound = _bound_pool(worker)
    if bound is not None and bound is not pool:
        moved = _leave(worker, bound, remove=True, why=f"moving to pool {pool.spec.name}")
        if not moved:
            return
        state: SessionState | None = None
    else:
        state = worker.session()
    computing = spec.state is WorkerState.COMPUTING
    if state is SessionState.WORKER_UNRESPONSIVE and computing:
        worker.alert(
            "unresponsive on chain: heartbeats are missing (relay or egress problem); "
            "no transaction is planned",
            critical=True,
        )
        return
    if state in (SessionState.WORKER_IDLE, SessionState.WORKER_UNRESPONSIVE):
        if computing:
            _adjust_stake(worker, spec, pool)
        else:
            _leave(worker, pool, remove=False, why="declared idle")
        return
    if state is SessionState.WORKER_COOLING_DOWN:
        why = "to compute again" if computing else "declared idle"
        if not _leave(worker, pool, remove=False, why=why):
            return
        state = SessionState.READY
    if state is None and not _join(worker, pool):
        return
    if computing:
        _start(worker, spec, pool)


def _join(worker: _Worker, pool: PoolRun) -> bool:
    """Register, wait for the score, add to ``pool``. True when it is in the pool now."""
    if not worker.synced:
        return False
    chain = worker.chain
    if chain is None:
        worker.act(
            ActionKind.REGISTER_WORKER,
            "synced and not registered on chain",
            None,
            pool=pool.spec.name,
            signer=_registration_signer(worker.ctx, pool),
            after=pool.prerequisites,
        )
        _score_wait(worker, "the benchmark sets the initial score after registration", None)
        return False
    if chain.initial_score is None:
        _score_wait(worker, "registered; the benchmark has not set the score yet", chain)
        return False
    if pool.pid is None:
        ctx = worker.ctx
        creating = f"create_pool:{pool.target}" in {a.id for a in ctx.actions}
        eta = blocks_to_seconds(INCLUSION_BLOCKS, ctx.observed.block_time_ms) if creating else None
        why = "created by this plan" if creating else "nothing in this plan creates it"
        worker.wait(
            "pool creation",
            f"pool {pool.spec.name} does not exist on chain yet ({why})",
            eta,
            basis=EtaBasis.ESTIMATE,
        )
        return False
    if pool.blocked:
        return False
    if chain.operator is not None and pool.owner_address not in (None, chain.operator):
        worker.alert(
            f"registered under operator {chain.operator}; pool {pool.spec.name} is owned by "
            f"{pool.owner_address}: re-register it under that owner first",
            critical=True,
        )
        return False
    if pool.slots <= 0:
        worker.alert(f"pool {pool.spec.name} is full (200 workers): cannot add it")
        return False
    pool.slots -= 1
    worker.act(ActionKind.ADD_WORKER, f"scored and not in a pool: add to pid {pool.pid}", pool)
    return True


def _score_wait(worker: _Worker, reason: str, chain: ChainWorker | None) -> None:
    """The initial score: benchmark blocks at the measured block time after registration."""
    observed = worker.ctx.observed
    eta = score_eta(
        registered_at=chain.registered_at if chain is not None else None,
        now_seconds=worker.ctx.now_seconds,
        benchmark_duration=observed.benchmark_duration,
        block_time_ms=observed.block_time_ms,
        registering_now=chain is None,
    )
    if eta is None:
        missing = (
            "benchmark duration"
            if observed.benchmark_duration is None
            else "block time"
            if observed.block_time_ms is None
            else "registration time"
        )
        reason += f"; ETA unknown: no {missing} from the chain"
    elif eta == 0:
        reason += "; overdue: the score message should be on chain by now (check egress)"
    else:
        reason += f" (benchmark {observed.benchmark_duration} blocks)"
    worker.wait("initial score", reason, eta, basis=EtaBasis.ESTIMATE)


def _registration_signer(ctx: Context, pool: PoolRun) -> str:
    """The relay signer pays for registration when there is one; else the pool's signer."""
    for account in sorted(ctx.desired.accounts, key=lambda a: a.name):
        if account.role is AccountRole.RELAY_SIGNER:
            return account.name
    return pool.spec.signer


def _stake_of(worker: _Worker, spec: WorkerSpec) -> int | None:
    stake = worker.ctx.desired.stake_of(spec)
    if stake is None:
        worker.alert("no stake declared: set stake on the worker or default_stake on its pool")
    return stake


def _start(worker: _Worker, spec: WorkerSpec, pool: PoolRun) -> None:
    """From Ready (now or after this pass's earlier steps) to computing with its stake."""
    if not worker.synced or pool.blocked:
        return
    stake = _stake_of(worker, spec)
    if stake is None:
        return
    if pool.free_stake < stake:
        worker.alert(
            f"pool {pool.spec.name} free stake {format_pha(pool.free_stake)} < stake "
            f"{format_pha(stake)}: contribute to the pool to start it"
        )
        return
    pool.free_stake -= stake
    worker.act(
        ActionKind.START_COMPUTING,
        f"in pool and Ready: start computing with {format_pha(stake)}",
        pool,
        amount=stake,
    )


def _adjust_stake(worker: _Worker, spec: WorkerSpec, pool: PoolRun) -> None:
    chain = worker.chain
    assert chain is not None
    stake = _stake_of(worker, spec)
    current = chain.stake or 0
    if stake is None or stake == current or pool.blocked:
        return
    if stake > current:
        extra = stake - current
        if pool.free_stake < extra:
            worker.alert(
                f"pool {pool.spec.name} free stake {format_pha(pool.free_stake)} < the "
                f"{format_pha(extra)} needed to raise the stake to {format_pha(stake)}"
            )
            return
        pool.free_stake -= extra
        worker.act(
            ActionKind.RESTART_COMPUTING,
            f"stake {format_pha(current)} → {format_pha(stake)}",
            pool,
            amount=stake,
        )
        return
    if worker.ctx.policy.prune:
        _leave(
            worker,
            pool,
            remove=False,
            why=(
                f"stake {format_pha(current)} → {format_pha(stake)} (lowering a stake needs "
                "stop, cool-down, reclaim and a new start; allowed by --prune)"
            ),
        )
        return
    worker.ctx.report_drift(
        worker.target,
        f"stake on chain {format_pha(current)} > inventory {format_pha(stake)}: lowering it "
        "needs stop_computing, a cool-down and a new start; plan with --prune to allow it",
        worker.group,
    )


def plan_unknown_workers(ctx: Context) -> None:
    """Workers on chain in our pools that no inventory worker resolved to."""
    on_chain: dict[int, set[str]] = {}
    for pid, observed in ctx.observed.pools.items():
        if pid in ctx.pools_by_pid:
            on_chain.setdefault(pid, set()).update(normalise_pubkey(k) for k in observed.workers)
    for pubkey, chain in ctx.observed.chain_workers.items():
        if chain.pool_pid is not None and chain.pool_pid in ctx.pools_by_pid:
            on_chain.setdefault(chain.pool_pid, set()).add(normalise_pubkey(pubkey))
    for pid in sorted(on_chain):
        pool = ctx.pools_by_pid[pid]
        for pubkey in sorted(on_chain[pid] - ctx.claimed_pubkeys):
            _plan_unknown(ctx, pool, pubkey)


def _plan_unknown(ctx: Context, pool: PoolRun, pubkey: str) -> None:
    target = f"worker/{pubkey}"
    where = f"in pool {pool.spec.name} (pid {pool.pid}) on chain but not in the inventory"
    if not ctx.policy.prune:
        ctx.report_drift(
            target,
            f"{where}: declare it (state removed to take it out) or plan with --prune",
            pool.spec.name,
        )
        return
    chain = ctx.observed.chain_workers.get(pubkey)
    if ctx.unresolved_workers:
        ctx.report_drift(
            target,
            f"{where}; not pruned: {ctx.unresolved_workers} inventory worker(s) have an "
            "unknown public key and this may be one of them",
            pool.spec.name,
        )
        return
    if chain is None or chain.pool_pid != pool.pid:
        ctx.report_drift(target, f"{where}; not pruned: no chain details for it", pool.spec.name)
        return
    worker = _Worker(
        ctx=ctx,
        target=target,
        name=None,
        pool=pool,
        pubkey=pubkey,
        chain=chain,
        reachable=False,
        synced=False,
        group=pool.spec.name,
    )
    if _chain_checks(worker):
        _leave(worker, pool, remove=True, why="not in the inventory (--prune)")
