"""The Phala pallets of the devnet chain, and their genesis.

``PALLETS`` (alias ``PHALA_PALLETS``) is what the engine loads (see ``pallets/__init__``).

Genesis. Each pallet reads its own section of the genesis file, but pools with workers
span five pallets (registry, computation, base pool, stake pool, assets), so a genesis
file may instead carry one top-level ``phala`` section that ``expand_phala_genesis`` turns
into the per-pallet sections (the genesis loader calls ``merge_phala_genesis``)::

    phala:
      benchmark_duration: 5          # blocks (PhalaRegistry)
      none_attestation_enabled: true
      cool_down_period: 60           # seconds (PhalaComputation; Khala: 604800)
      heartbeat_interval: 10         # blocks between heartbeat challenges
      unresponsive_after: 40         # blocks without heartbeat → WorkerUnresponsive
      expected_heartbeats: 20        # workers sampled per challenge (absent: all)
      workers:                       # registered at block 0, in no pool
        - {pubkey: "0x..", operator: "0x..", initial_score: 1000}
      pools:                         # pid: optional, default = position in this list
        - owner: "0x.."
          free_stake: 100000 PHA            # W-PHA in the pool account (plancks or "N PHA")
          workers:                          # registered, benchmarked, bound, Ready
            - {pubkey: "0x..", initial_score: 1000}
            - {pubkey: "0x..", stake: 5000 PHA}   # already computing (WorkerIdle)
          worker_count: 200                 # plus this many generated workers

A generated worker's identity is sr25519 from seed ``generated_worker_seed(pid, i)``, so a
simulated pRuntime can take it over. Workers in a pool have the pool owner as operator.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import sr25519

from poolkeeper_devnet.chain.pallets._values import key32, to_hex
from poolkeeper_devnet.chain.pallets.assets import WPHA_ASSET_ID, Assets, PhalaWrappedBalances
from poolkeeper_devnet.chain.pallets.base import AccountHex, Pallet
from poolkeeper_devnet.chain.pallets.phala_computation import PhalaComputation
from poolkeeper_devnet.chain.pallets.phala_mq import PhalaMq
from poolkeeper_devnet.chain.pallets.phala_registry import PhalaRegistry
from poolkeeper_devnet.chain.pallets.phala_stakepool import (
    PhalaBasePool,
    PhalaStakePoolv2,
    new_stake_pool_value,
    session_account,
)

PALLETS: list[type[Pallet]] = [
    PhalaMq,
    PhalaRegistry,
    PhalaComputation,
    PhalaBasePool,
    PhalaStakePoolv2,
    Assets,
    PhalaWrappedBalances,
]
PHALA_PALLETS = PALLETS

PHA = 10**12
DEFAULT_INITIAL_SCORE = 1000
_REGISTRY_KEYS = (
    "benchmark_duration",
    "none_attestation_enabled",
    "para_id",
    "genesis_block_hash_allowlist",
)
_COMPUTATION_KEYS = (
    "cool_down_period",
    "heartbeat_interval",
    "unresponsive_after",
    "expected_heartbeats",
    "min_init_p",
    "min_stake_k",
    "v_max",
    "re",
)


def amount(value: Any) -> int:
    """Plancks from an int or a ``"<number> PHA"`` string."""
    if isinstance(value, str):
        text = value.strip().replace("_", "")
        if text.upper().endswith("PHA"):
            return int(Decimal(text[:-3].strip()) * PHA)
        return int(text)
    return int(value)


def generated_worker_seed(pid: int, index: int) -> bytes:
    """The identity seed of the ``index``-th generated worker of pool ``pid``."""
    material = (
        b"poolkeeper-devnet-worker:" + pid.to_bytes(8, "little") + index.to_bytes(4, "little")
    )
    return hashlib.blake2b(material, digest_size=32).digest()


def _generated_pubkey(pid: int, index: int) -> AccountHex:
    public, _secret = sr25519.pair_from_seed(generated_worker_seed(pid, index))
    return to_hex(bytes(public))


def expand_phala_genesis(spec: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The per-pallet genesis sections described by one ``phala`` section (see module doc)."""
    registry: dict[str, Any] = {k: spec[k] for k in _REGISTRY_KEYS if k in spec}
    computation: dict[str, Any] = {k: spec[k] for k in _COMPUTATION_KEYS if k in spec}
    registered: list[dict[str, Any]] = [dict(w) for w in spec.get("workers", ())]
    sessions: list[dict[str, Any]] = []
    pools: list[dict[str, Any]] = []
    assignments: list[dict[str, Any]] = []
    asset_accounts: list[dict[str, Any]] = []
    pids: set[int] = set()
    for position, pool_spec in enumerate(spec.get("pools", ())):
        pid = int(pool_spec.get("pid", position))
        if pid in pids:
            raise ValueError(f"pool pid {pid} given twice")
        pids.add(pid)
        owner = key32(pool_spec["owner"])
        pool = new_stake_pool_value(pid, owner, pid)
        workers: list[Mapping[str, Any]] = list(pool_spec.get("workers", ()))
        workers += [
            {"pubkey": _generated_pubkey(pid, i)}
            for i in range(int(pool_spec.get("worker_count", 0)))
        ]
        if len(workers) > 200:
            raise ValueError(f"pool {pid}: more than MaxPoolWorkers (200) workers")
        pubkeys: list[AccountHex] = []
        locked = 0
        for worker in workers:
            pubkey = key32(worker["pubkey"])
            score = int(worker.get("initial_score", DEFAULT_INITIAL_SCORE))
            registered.append(
                {
                    "pubkey": pubkey,
                    "ecdh_pubkey": worker.get("ecdh_pubkey", pubkey),
                    "operator": owner,
                    "initial_score": score,
                }
            )
            session: dict[str, Any] = {"session": session_account(pid, pubkey), "worker": pubkey}
            if worker.get("stake") is not None:
                session["stake"] = amount(worker["stake"])
                session["p_init"] = score
                locked += session["stake"]
            sessions.append(session)
            assignments.append({"worker": pubkey, "pid": pid})
            pubkeys.append(pubkey)
        free_stake = amount(pool_spec.get("free_stake", 0))
        pool["workers"] = pubkeys
        pool["basepool"]["total_value"] = free_stake + locked
        pool["basepool"]["total_shares"] = free_stake + locked
        pools.append(pool)
        if free_stake:
            asset_accounts.append(
                {
                    "asset_id": WPHA_ASSET_ID,
                    "account": pool["basepool"]["pool_account_id"],
                    "balance": free_stake,
                }
            )
        if locked:
            asset_accounts.append(
                {"asset_id": WPHA_ASSET_ID, "account": pool["lock_account"], "balance": locked}
            )
    registry["workers"] = registered
    computation["sessions"] = sessions
    return {
        "PhalaRegistry": registry,
        "PhalaComputation": computation,
        "PhalaBasePool": {"pools": pools},
        "PhalaStakePoolv2": {"assignments": assignments},
        "Assets": {"accounts": asset_accounts},
    }


def merge_phala_genesis(genesis: Mapping[str, Any]) -> dict[str, Any]:
    """``genesis`` with its ``phala`` section expanded into the per-pallet sections."""
    merged: dict[str, Any] = {k: v for k, v in genesis.items() if k != "phala"}
    if "phala" not in genesis:
        return merged
    for pallet, section in expand_phala_genesis(genesis["phala"] or {}).items():
        existing = dict(merged.get(pallet) or {})
        for key, value in section.items():
            if isinstance(value, list) and isinstance(existing.get(key), list):
                existing[key] = [*existing[key], *value]
            else:
                existing.setdefault(key, value)
        merged[pallet] = existing
    return merged


__all__ = [
    "PALLETS",
    "PHALA_PALLETS",
    "expand_phala_genesis",
    "generated_worker_seed",
    "merge_phala_genesis",
]
