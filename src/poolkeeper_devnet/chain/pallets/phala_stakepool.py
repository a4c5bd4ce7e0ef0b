"""PhalaBasePool and PhalaStakePoolv2: stake pools, their workers and their stake.

Layout and rules follow Khala (PROTOCOL.md §3.2-3.3): ``PhalaBasePool.Pools`` holds
``PoolProxy::StakePool{basepool, payout_commission, cap, workers, cd_workers,
lock_account, owner_reward_account}``; a pool's free stake is its ``pool_account_id``'s
W-PHA; starting a worker moves the stake to ``lock_account`` and reclaiming moves it back.
Derived accounts are Khala's: the first 32 bytes of ``prefix ++ blake2_256(SCALE(pid u64,
key))`` with prefix ``spm/`` (session, key = worker), ``bp/`` (pool account), ``so/`` and
``sl/`` (owner reward and lock accounts, key = owner).

Not simulated: share NFTs, withdrawals and the withdraw queue, vaults, rewards, slashing
and contribution whitelists. ``contribute`` mints shares 1:1 with value (share price is
always 1 without rewards).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from poolkeeper_devnet.chain.pallets._common import PhalaPallet
from poolkeeper_devnet.chain.pallets._values import ensure_signed, key32, to_bytes, to_int
from poolkeeper_devnet.chain.pallets.assets import WPHA_ASSET_ID, Assets
from poolkeeper_devnet.chain.pallets.base import AccountHex, BlockContext, DispatchError
from poolkeeper_devnet.chain.pallets.phala_computation import READY, PhalaComputation
from poolkeeper_devnet.chain.pallets.phala_registry import PhalaRegistry

MAX_POOL_WORKERS = 200
MIN_CONTRIBUTION = 10**10


def derived_account(prefix: bytes, pid: int, key: AccountHex) -> AccountHex:
    """First 32 bytes of ``prefix ++ blake2_256(SCALE((pid u64, key)))``."""
    digest = hashlib.blake2b(pid.to_bytes(8, "little") + to_bytes(key), digest_size=32).digest()
    return "0x" + (prefix + digest)[:32].hex()


def session_account(pid: int, worker: AccountHex) -> AccountHex:
    return derived_account(b"spm/", pid, worker)


def pool_account(pid: int, owner: AccountHex) -> AccountHex:
    return derived_account(b"bp/", pid, owner)


def owner_reward_account(pid: int, owner: AccountHex) -> AccountHex:
    return derived_account(b"so/", pid, owner)


def lock_account(pid: int, owner: AccountHex) -> AccountHex:
    return derived_account(b"sl/", pid, owner)


def new_stake_pool_value(pid: int, owner: AccountHex, cid: int) -> dict[str, Any]:
    """The inner ``StakePool`` of a just-created pool, in value shape."""
    return {
        "basepool": {
            "pid": pid,
            "owner": owner,
            "total_shares": 0,
            "total_value": 0,
            "withdraw_queue": [],
            "value_subscribers": [],
            "cid": cid,
            "pool_account_id": pool_account(pid, owner),
        },
        "payout_commission": None,
        "cap": None,
        "workers": [],
        "cd_workers": [],
        "lock_account": lock_account(pid, owner),
        "owner_reward_account": owner_reward_account(pid, owner),
    }


class PhalaBasePool(PhalaPallet):
    name = "PhalaBasePool"

    def __init__(self) -> None:
        super().__init__()
        self.pools: dict[int, dict[str, Any]] = {}
        """pid → inner ``StakePool`` value (stored as ``{"StakePool": value}``)."""
        self.pool_count = 0
        self.collection_index = 0
        self.pool_collections: dict[int, int] = {}

    def genesis(self, config: Mapping[str, Any]) -> None:
        """``pools: [StakePool value]`` (as ``expand_phala_genesis`` builds them)."""
        for pool in config.get("pools", ()):
            pid, cid = int(pool["basepool"]["pid"]), int(pool["basepool"]["cid"])
            self.put_stake_pool(pid, pool)
            self.pool_collections[cid] = pid
            self.record_change("PoolCollections", (cid,), pid)
            self.pool_count = max(self.pool_count, pid + 1)
            self.collection_index = max(self.collection_index, cid + 1)
        self.record_change("PoolCount", (), self.pool_count)
        self.record_change("CollectionIndex", (), self.collection_index)

    def consume_new_pid(self) -> int:
        pid = self.pool_count
        self.pool_count += 1
        self.record_change("PoolCount", (), self.pool_count)
        return pid

    def consume_new_cid(self) -> int:
        cid = self.collection_index
        self.collection_index += 1
        self.record_change("CollectionIndex", (), self.collection_index)
        return cid

    def stake_pool(self, pid: int) -> dict[str, Any]:
        pool = self.pools.get(pid)
        if pool is None:
            raise DispatchError(self.name, "PoolDoesNotExist")
        return pool

    def put_stake_pool(self, pid: int, pool: dict[str, Any]) -> None:
        self.pools[pid] = pool
        self.record_change("Pools", (pid,), {"StakePool": pool})

    def create_collection(self, cid: int, pid: int) -> None:
        self.pool_collections[cid] = pid
        self.record_change("PoolCollections", (cid,), pid)


class PhalaStakePoolv2(PhalaPallet):
    name = "PhalaStakePoolv2"

    def __init__(self) -> None:
        super().__init__()
        self.worker_assignments: dict[AccountHex, int] = {}
        self.sub_account_preimages: dict[AccountHex, tuple[int, AccountHex]] = {}

    def genesis(self, config: Mapping[str, Any]) -> None:
        """``assignments: [{worker, pid}]``: workers bound to pools at block 0."""
        for entry in config.get("assignments", ()):
            worker, pid = key32(entry["worker"]), int(entry["pid"])
            self._assign(worker, pid)

    def _assign(self, worker: AccountHex, pid: int) -> AccountHex:
        session = session_account(pid, worker)
        self.worker_assignments[worker] = pid
        self.sub_account_preimages[session] = (pid, worker)
        self.record_change("WorkerAssignments", (worker,), pid)
        self.record_change("SubAccountPreimages", (session,), (pid, worker))
        return session

    # -- sibling pallets ----------------------------------------------------------------
    def _base(self, ctx: BlockContext) -> PhalaBasePool:
        base = ctx.pallet("PhalaBasePool")
        assert isinstance(base, PhalaBasePool)
        return base

    def _computation(self, ctx: BlockContext) -> PhalaComputation:
        computation = ctx.pallet("PhalaComputation")
        assert isinstance(computation, PhalaComputation)
        return computation

    def _assets(self, ctx: BlockContext) -> Assets:
        assets = ctx.pallet("Assets")
        assert isinstance(assets, Assets)
        return assets

    def _owned_pool(self, ctx: BlockContext, pid: int, who: AccountHex) -> dict[str, Any]:
        pool = self._base(ctx).stake_pool(pid)
        if pool["basepool"]["owner"] != who:
            raise DispatchError(self.name, "UnauthorizedPoolOwner")
        return pool

    def free_stake(self, ctx: BlockContext, pool: Mapping[str, Any]) -> int:
        return self._assets(ctx).balance(WPHA_ASSET_ID, pool["basepool"]["pool_account_id"])

    # -- calls --------------------------------------------------------------------------
    def call_create(
        self, ctx: BlockContext, signer: AccountHex | None, args: Mapping[str, Any]
    ) -> None:
        owner = ensure_signed(signer)
        base = self._base(ctx)
        pid, cid = base.consume_new_pid(), base.consume_new_cid()
        pool = new_stake_pool_value(pid, owner, cid)
        base.put_stake_pool(pid, pool)
        base.create_collection(cid, pid)
        ctx.emit(
            self.name,
            "PoolCreated",
            owner=owner,
            pid=pid,
            cid=cid,
            pool_account_id=pool["basepool"]["pool_account_id"],
        )

    def call_add_worker(
        self, ctx: BlockContext, signer: AccountHex | None, args: Mapping[str, Any]
    ) -> None:
        owner = ensure_signed(signer)
        pid, pubkey = to_int(args["pid"]), key32(args["pubkey"])
        registry = ctx.pallet("PhalaRegistry")
        assert isinstance(registry, PhalaRegistry)
        worker = registry.worker(pubkey)
        if worker is None:
            raise DispatchError(self.name, "WorkerNotRegistered")
        if worker["operator"] != owner:
            raise DispatchError(self.name, "UnauthorizedOperator")
        if worker["initial_score"] is None:
            raise DispatchError(self.name, "BenchmarkMissing")
        pool = self._owned_pool(ctx, pid, owner)
        if pubkey in pool["workers"]:
            raise DispatchError(self.name, "WorkerExists")
        if len(pool["workers"]) >= MAX_POOL_WORKERS:
            raise DispatchError(self.name, "WorkersExceedLimit")
        session = session_account(pid, pubkey)
        try:
            self._computation(ctx).bind(ctx, session, pubkey)
        except DispatchError:
            raise DispatchError(self.name, "FailedToBindSessionAndWorker") from None
        self._assign(pubkey, pid)
        self._base(ctx).put_stake_pool(pid, {**pool, "workers": [*pool["workers"], pubkey]})
        ctx.emit(self.name, "PoolWorkerAdded", pid=pid, worker=pubkey, session=session)

    def call_remove_worker(
        self, ctx: BlockContext, signer: AccountHex | None, args: Mapping[str, Any]
    ) -> None:
        who = ensure_signed(signer)
        pid, worker = to_int(args["pid"]), key32(args["worker"])
        self._owned_pool(ctx, pid, who)
        assigned = self.worker_assignments.get(worker)
        if assigned is None:
            raise DispatchError(self.name, "WorkerDoesNotExist")
        if assigned != pid:
            raise DispatchError(self.name, "WorkerInAnotherPool")
        session = session_account(pid, worker)
        computation = self._computation(ctx)
        state = computation.state_of(session)
        if state is None:
            raise DispatchError(self.name, "SessionDoesNotExist")
        if state != READY:
            raise DispatchError(self.name, "WorkerIsNotReady")
        computation.unbind_session(ctx, session, notify=False)
        self._remove_worker_from_pool(ctx, worker)

    def on_unbound(self, ctx: BlockContext, worker: AccountHex, force: bool) -> None:
        """PhalaComputation unbound ``worker`` (the operator called ``unbind``)."""
        if worker in self.worker_assignments:
            self._remove_worker_from_pool(ctx, worker)

    def _remove_worker_from_pool(self, ctx: BlockContext, worker: AccountHex) -> None:
        pid = self.worker_assignments.pop(worker)
        self.record_change("WorkerAssignments", (worker,), None)
        base = self._base(ctx)
        pool = base.pools.get(pid)
        if pool is not None:
            workers = [w for w in pool["workers"] if w != worker]
            base.put_stake_pool(pid, {**pool, "workers": workers})
            ctx.emit(self.name, "PoolWorkerRemoved", pid=pid, worker=worker)

    def call_set_cap(
        self, ctx: BlockContext, signer: AccountHex | None, args: Mapping[str, Any]
    ) -> None:
        who = ensure_signed(signer)
        pid, cap = to_int(args["pid"]), to_int(args["cap"])
        pool = self._owned_pool(ctx, pid, who)
        if pool["basepool"]["total_value"] > cap:
            raise DispatchError(self.name, "InadequateCapacity")
        self._base(ctx).put_stake_pool(pid, {**pool, "cap": cap})
        ctx.emit(self.name, "PoolCapacitySet", pid=pid, cap=cap)

    def call_set_payout_pref(
        self, ctx: BlockContext, signer: AccountHex | None, args: Mapping[str, Any]
    ) -> None:
        who = ensure_signed(signer)
        pid = to_int(args["pid"])
        commission = args.get("payout_commission")
        commission = None if commission is None else to_int(commission)
        pool = self._owned_pool(ctx, pid, who)
        self._base(ctx).put_stake_pool(pid, {**pool, "payout_commission": commission})
        ctx.emit(self.name, "PoolCommissionSet", pid=pid, commission=commission or 0)

    def call_contribute(
        self, ctx: BlockContext, signer: AccountHex | None, args: Mapping[str, Any]
    ) -> None:
        who = ensure_signed(signer)
        pid, amount = to_int(args["pid"]), to_int(args["amount"])
        as_vault = args.get("as_vault")
        base = self._base(ctx)
        if as_vault is not None:
            # The devnet has no vaults: any vault pid is a stake pool or nothing.
            base.stake_pool(to_int(as_vault))
            raise DispatchError(base.name, "PoolTypeNotMatch")
        pool = base.stake_pool(pid)
        if amount < MIN_CONTRIBUTION:
            raise DispatchError(self.name, "InsufficientContribution")
        assets = self._assets(ctx)
        if assets.balance(WPHA_ASSET_ID, who) < amount:
            raise DispatchError(self.name, "InsufficientBalance")
        basepool = pool["basepool"]
        if basepool["total_shares"] and not basepool["total_value"]:
            raise DispatchError(base.name, "PoolBankrupt")
        shares = (
            amount
            if not basepool["total_shares"]
            else amount * basepool["total_shares"] // basepool["total_value"]
        )
        total_value = basepool["total_value"] + amount
        if pool["cap"] is not None and total_value > pool["cap"]:
            raise DispatchError(self.name, "StakeExceedsCapacity")
        assets.transfer(ctx, WPHA_ASSET_ID, who, basepool["pool_account_id"], amount)
        basepool = {
            **basepool,
            "total_shares": basepool["total_shares"] + shares,
            "total_value": total_value,
        }
        base.put_stake_pool(pid, {**pool, "basepool": basepool})
        ctx.emit(
            self.name,
            "Contribution",
            pid=pid,
            user=who,
            amount=amount,
            shares=shares,
            as_vault=None,
        )

    def call_start_computing(
        self, ctx: BlockContext, signer: AccountHex | None, args: Mapping[str, Any]
    ) -> None:
        owner = ensure_signed(signer)
        self._start(ctx, owner, to_int(args["pid"]), key32(args["worker"]), to_int(args["stake"]))

    def _start(
        self, ctx: BlockContext, owner: AccountHex, pid: int, worker: AccountHex, stake: int
    ) -> None:
        pool = self._owned_pool(ctx, pid, owner)
        if self.free_stake(ctx, pool) < stake:
            raise DispatchError(self.name, "InsufficientFreeStake")
        if worker not in pool["workers"]:
            raise DispatchError(self.name, "WorkerDoesNotExist")
        self._computation(ctx).start_computing(ctx, session_account(pid, worker), stake)
        self._assets(ctx).transfer(
            ctx, WPHA_ASSET_ID, pool["basepool"]["pool_account_id"], pool["lock_account"], stake
        )
        ctx.emit(self.name, "WorkingStarted", pid=pid, worker=worker, amount=stake)

    def call_stop_computing(
        self, ctx: BlockContext, signer: AccountHex | None, args: Mapping[str, Any]
    ) -> None:
        owner = ensure_signed(signer)
        self._stop(ctx, owner, to_int(args["pid"]), key32(args["worker"]))

    def _stop(self, ctx: BlockContext, owner: AccountHex, pid: int, worker: AccountHex) -> None:
        pool = self._owned_pool(ctx, pid, owner)
        if worker not in pool["workers"]:
            raise DispatchError(self.name, "WorkerDoesNotExist")
        if worker in pool["cd_workers"]:
            raise DispatchError(self.name, "WorkerAlreadyStopped")
        self._computation(ctx).stop_computing(ctx, session_account(pid, worker))
        self._base(ctx).put_stake_pool(pid, {**pool, "cd_workers": [*pool["cd_workers"], worker]})

    def call_reclaim_pool_worker(
        self, ctx: BlockContext, signer: AccountHex | None, args: Mapping[str, Any]
    ) -> None:
        ensure_signed(signer)
        pid, worker = to_int(args["pid"]), key32(args["worker"])
        self._base(ctx).stake_pool(pid)
        self._reclaim(ctx, pid, worker, check_cooldown=True)

    def _reclaim(
        self, ctx: BlockContext, pid: int, worker: AccountHex, check_cooldown: bool
    ) -> int:
        """Release the worker's stake back to free stake; returns the amount released."""
        original, slashed = self._computation(ctx).reclaim(
            ctx, session_account(pid, worker), check_cooldown
        )
        returned = original - slashed
        base = self._base(ctx)
        pool = base.stake_pool(pid)
        self._assets(ctx).transfer(
            ctx, WPHA_ASSET_ID, pool["lock_account"], pool["basepool"]["pool_account_id"], returned
        )
        ctx.emit(self.name, "WorkerReclaimed", pid=pid, worker=worker)
        cd_workers = [w for w in pool["cd_workers"] if w != worker]
        base.put_stake_pool(pid, {**pool, "cd_workers": cd_workers})
        return returned

    def call_restart_computing(
        self, ctx: BlockContext, signer: AccountHex | None, args: Mapping[str, Any]
    ) -> None:
        owner = ensure_signed(signer)
        pid, worker, stake = to_int(args["pid"]), key32(args["worker"]), to_int(args["stake"])
        pool = self._base(ctx).stake_pool(pid)
        if pool["basepool"]["withdraw_queue"]:
            raise DispatchError(self.name, "WithdrawQueueNotEmpty")
        self._stop(ctx, owner, pid, worker)
        released = self._reclaim(ctx, pid, worker, check_cooldown=False)
        if stake <= released:
            raise DispatchError(self.name, "CannotRestartWithLessStake")
        self._start(ctx, owner, pid, worker, stake)
