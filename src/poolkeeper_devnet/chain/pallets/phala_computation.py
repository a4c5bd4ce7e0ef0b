"""PhalaComputation: computing sessions, stakes, cool-down and liveness of workers.

The session state machine is Khala's (PROTOCOL.md §3.4): ``bind`` creates a Ready session,
``start_computing`` moves it to WorkerIdle, missing heartbeats to WorkerUnresponsive and
back, ``stop_computing`` to WorkerCoolingDown, and ``reclaim`` after ``CoolDownPeriod``
seconds back to Ready. The stake pool drives these through the methods below; the only
call of its own a pool manager uses is ``unbind``.

Devnet substitutes, configured in genesis:
- Liveness. Every ``heartbeat_interval`` blocks while any worker computes, a
  ``HeartbeatChallenge`` goes out. Its ``online_target`` is all 0xff (every computing worker
  must answer) unless ``expected_heartbeats`` is set: then it selects about that many
  workers, those with ``blake2_256(pubkey ++ seed) ≤ online_target`` (little-endian), as
  Khala samples them. A selected worker that sends no ``HeartbeatV2`` within
  ``unresponsive_after`` blocks of the challenge becomes WorkerUnresponsive (event +
  ``EnterUnresponsive`` message); its next heartbeat brings it back to WorkerIdle
  (``ExitUnresponsive``). Khala's gatekeeper decides this instead.
- Stake bounds, a simplified tokenomic: ``p ≥ min_init_p`` else ``BenchmarkTooLow``;
  ``stake ≥ min_stake_k · √p`` else ``InsufficientStake``; ``ve = re · score(confidence) ·
  stake`` (in PHA, U64F64 bits) must be ``≤ v_max`` else ``TooMuchStake``. Khala adds a
  rig cost to ``ve``; the devnet does not. No rewards and no slashing.
Time is ``Timestamp.Now / 1000`` seconds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from fractions import Fraction
from math import isqrt
from typing import Any

from poolkeeper_devnet.chain.pallets import _scale
from poolkeeper_devnet.chain.pallets._common import PhalaPallet
from poolkeeper_devnet.chain.pallets._values import (
    ensure_signed,
    key32,
    now_seconds,
    to_bytes,
)
from poolkeeper_devnet.chain.pallets.base import AccountHex, BlockContext, DispatchError
from poolkeeper_devnet.chain.pallets.phala_registry import PhalaRegistry

PHA = 10**12
FIXED_ONE = 1 << 64  # U64F64
SYSTEM_TOPIC = b"phala/system/worker"
COMPUTATION_SENDER = b"phala/computation"
ONLINE_TARGET_MAX = 2**256 - 1
KHALA_COOL_DOWN_PERIOD = 604800

READY = "Ready"
IDLE = "WorkerIdle"
UNRESPONSIVE = "WorkerUnresponsive"
COOLING_DOWN = "WorkerCoolingDown"
COMPUTING_STATES = (IDLE, UNRESPONSIVE)

_CONFIDENCE_SCORES = {
    1: Fraction(1),
    2: Fraction(1),
    3: Fraction(1),
    4: Fraction(8, 10),
    5: Fraction(7, 10),
}


def blake2_256(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def new_session_value(now: int) -> dict[str, Any]:
    """A fresh Ready ``SessionInfo`` in value shape, as ``bind`` creates it."""
    return {
        "state": READY,
        "ve": 0,
        "v": 0,
        "v_updated_at": now,
        "benchmark": {
            "p_init": 0,
            "p_instant": 0,
            "iterations": 0,
            "working_start_time": now,
            "challenge_time_last": 0,
        },
        "cool_down_start": 0,
        "stats": {"total_reward": 0},
    }


class PhalaComputation(PhalaPallet):
    name = "PhalaComputation"

    def __init__(self) -> None:
        super().__init__()
        self.sessions: dict[AccountHex, dict[str, Any]] = {}
        self.session_bindings: dict[AccountHex, AccountHex] = {}
        self.worker_bindings: dict[AccountHex, AccountHex] = {}
        self.stakes: dict[AccountHex, int] = {}
        self.cool_down_period = KHALA_COOL_DOWN_PERIOD
        self.next_session_id = 0
        self.online_workers = 0
        self.heartbeat_interval = 10
        self.unresponsive_after = 40
        self.min_init_p = 50
        self.min_stake_k = 1 * PHA
        self.re = Fraction(3, 2)
        self.v_max = 30_000 * FIXED_ONE
        self.expected_heartbeats: int | None = None
        self.computing: dict[AccountHex, None] = {}
        """The workers in WorkerIdle or WorkerUnresponsive (an ordered set; not chain storage)."""
        self.owed: dict[AccountHex, int] = {}
        """Worker → block of the oldest challenge it was selected for and has not answered."""

    def genesis(self, config: Mapping[str, Any]) -> None:
        """Keys: ``cool_down_period`` (s), ``heartbeat_interval`` and ``unresponsive_after``
        (blocks), ``expected_heartbeats`` (per challenge; absent: every computing worker),
        ``min_init_p``, ``min_stake_k`` (plancks), ``v_max`` (PHA), ``re`` (number), and
        ``sessions: [{session, worker, stake?}]`` bound at block 0 (Ready, or WorkerIdle with
        ``stake``)."""
        self.cool_down_period = int(config.get("cool_down_period", self.cool_down_period))
        self.record_change("CoolDownPeriod", (), self.cool_down_period)
        self.heartbeat_interval = max(
            1, int(config.get("heartbeat_interval", self.heartbeat_interval))
        )
        self.unresponsive_after = int(config.get("unresponsive_after", self.unresponsive_after))
        self.min_init_p = int(config.get("min_init_p", self.min_init_p))
        self.min_stake_k = int(config.get("min_stake_k", self.min_stake_k))
        if "re" in config:
            self.re = Fraction(str(config["re"]))
        if config.get("expected_heartbeats") is not None:
            self.expected_heartbeats = max(1, int(config["expected_heartbeats"]))
        if "v_max" in config:
            self.v_max = int(config["v_max"]) * FIXED_ONE
        started = 0
        for spec in config.get("sessions", ()):
            session, worker = key32(spec["session"]), key32(spec["worker"])
            value = new_session_value(0)
            stake = spec.get("stake")
            if stake is not None:
                ve = self._ve(int(stake), int(spec.get("confidence_level", 128)))
                value = {**value, "state": IDLE, "ve": ve, "v": ve}
                value["benchmark"] = {**value["benchmark"], "p_init": int(spec.get("p_init", 0))}
                self.stakes[session] = int(stake)
                self.record_change("Stakes", (session,), int(stake))
                self.computing[worker] = None
                started += 1
            self.sessions[session] = value
            self.session_bindings[session] = worker
            self.worker_bindings[worker] = session
            self.record_change("Sessions", (session,), value)
            self.record_change("SessionBindings", (session,), worker)
            self.record_change("WorkerBindings", (worker,), session)
        self.online_workers = started
        self.next_session_id = started
        self.record_change("OnlineWorkers", (), started)
        self.record_change("NextSessionId", (), started)

    # -- helpers ------------------------------------------------------------------------
    def _registry(self, ctx: BlockContext) -> PhalaRegistry:
        registry = ctx.pallet("PhalaRegistry")
        assert isinstance(registry, PhalaRegistry)
        return registry

    def _put_session(self, session: AccountHex, value: dict[str, Any]) -> None:
        self.sessions[session] = value
        self.record_change("Sessions", (session,), value)

    def _push(self, ctx: BlockContext, payload: bytes) -> None:
        ctx.push_worker_message(COMPUTATION_SENDER, SYSTEM_TOPIC, payload)

    def _set_online(self, delta: int) -> None:
        self.online_workers += delta
        self.record_change("OnlineWorkers", (), self.online_workers)

    def minimal_stake(self, p: int) -> int:
        """``min_stake_k · √p`` in plancks, rounded down."""
        return isqrt(self.min_stake_k * self.min_stake_k * p)

    def _ve(self, stake: int, confidence_level: int) -> int:
        score = _CONFIDENCE_SCORES.get(confidence_level, Fraction(1))
        tweaked_re = (self.re - 1) * score + 1
        return int(tweaked_re * stake * FIXED_ONE / PHA)

    def state_of(self, session: AccountHex) -> str | None:
        value = self.sessions.get(session)
        return None if value is None else str(value["state"])

    # -- operations used by the stake pool ----------------------------------------------
    def bind(self, ctx: BlockContext, session: AccountHex, pubkey: AccountHex) -> None:
        worker = self._registry(ctx).worker(pubkey)
        if worker is None:
            raise DispatchError(self.name, "WorkerNotRegistered")
        if worker["initial_score"] is None:
            raise DispatchError(self.name, "BenchmarkMissing")
        if session in self.session_bindings:
            raise DispatchError(self.name, "DuplicateBoundSession")
        if pubkey in self.worker_bindings:
            raise DispatchError(self.name, "DuplicateBoundWorker")
        existing = self.sessions.get(session)
        if existing is not None and existing["state"] != READY:
            raise DispatchError(self.name, "WorkerNotReady")
        self.session_bindings[session] = pubkey
        self.worker_bindings[pubkey] = session
        self.record_change("SessionBindings", (session,), pubkey)
        self.record_change("WorkerBindings", (pubkey,), session)
        self._put_session(session, new_session_value(now_seconds(ctx.timestamp_ms)))
        ctx.emit(self.name, "SessionBound", session=session, worker=pubkey)

    def unbind_session(self, ctx: BlockContext, session: AccountHex, notify: bool) -> None:
        worker = self.session_bindings.get(session)
        if worker is None:
            raise DispatchError(self.name, "SessionNotBound")
        force = self.sessions[session]["state"] in COMPUTING_STATES
        if force:
            self.stop_computing(ctx, session)
        del self.session_bindings[session]
        del self.worker_bindings[worker]
        self.record_change("SessionBindings", (session,), None)
        self.record_change("WorkerBindings", (worker,), None)
        ctx.emit(self.name, "SessionUnbound", session=session, worker=worker)
        if notify:
            pool = ctx.pallet("PhalaStakePoolv2")
            on_unbound = getattr(pool, "on_unbound", None)
            if on_unbound is not None:
                on_unbound(ctx, worker, force)

    def start_computing(self, ctx: BlockContext, session: AccountHex, stake: int) -> None:
        worker = self.session_bindings.get(session)
        if worker is None:
            raise DispatchError(self.name, "SessionNotFound")
        info = self.sessions[session]
        if info["state"] != READY:
            raise DispatchError(self.name, "WorkerNotReady")
        if session in self.stakes:
            raise DispatchError(self.name, "InternalErrorCannotStartWithExistingStake")
        registered = self._registry(ctx).worker(worker)
        assert registered is not None
        p = registered["initial_score"]
        if p is None:
            raise DispatchError(self.name, "BenchmarkMissing")
        if p < self.min_init_p:
            raise DispatchError(self.name, "BenchmarkTooLow")
        if stake < self.minimal_stake(p):
            raise DispatchError(self.name, "InsufficientStake")
        ve = self._ve(stake, int(registered["confidence_level"]))
        if ve > self.v_max:
            raise DispatchError(self.name, "TooMuchStake")
        now = now_seconds(ctx.timestamp_ms)
        self.stakes[session] = stake
        self.record_change("Stakes", (session,), stake)
        self._put_session(
            session,
            {
                **info,
                "state": IDLE,
                "ve": ve,
                "v": ve,
                "v_updated_at": now,
                "benchmark": {**info["benchmark"], "p_init": p},
            },
        )
        self._set_online(+1)
        session_id = self.next_session_id
        self.next_session_id += 1
        self.record_change("NextSessionId", (), self.next_session_id)
        self.computing[worker] = None
        self.owed.pop(worker, None)
        self._push(ctx, _scale.started(to_bytes(worker), session_id, ve, p))
        ctx.emit(self.name, "WorkerStarted", session=session, init_v=ve, init_p=p)

    def stop_computing(self, ctx: BlockContext, session: AccountHex) -> None:
        worker = self.session_bindings.get(session)
        if worker is None:
            raise DispatchError(self.name, "SessionNotBound")
        info = self.sessions.get(session)
        if info is None:
            raise DispatchError(self.name, "SessionNotFound")
        if info["state"] not in COMPUTING_STATES:
            raise DispatchError(self.name, "WorkerNotComputing")
        self._put_session(
            session,
            {**info, "state": COOLING_DOWN, "cool_down_start": now_seconds(ctx.timestamp_ms)},
        )
        self._set_online(-1)
        self.computing.pop(worker, None)
        self.owed.pop(worker, None)
        self._push(ctx, _scale.stopped(to_bytes(worker)))
        ctx.emit(self.name, "WorkerStopped", session=session)

    def reclaim(
        self, ctx: BlockContext, session: AccountHex, check_cooldown: bool
    ) -> tuple[int, int]:
        """Back to Ready after the cool-down; returns (original stake, slashed = 0)."""
        info = self.sessions.get(session)
        if info is None:
            raise DispatchError(self.name, "SessionNotFound")
        ready = info["state"] == COOLING_DOWN and (
            not check_cooldown
            or now_seconds(ctx.timestamp_ms) - int(info["cool_down_start"]) >= self.cool_down_period
        )
        if not ready:
            raise DispatchError(self.name, "CoolDownNotReady")
        self._put_session(session, {**info, "state": READY, "cool_down_start": 0})
        original = self.stakes.pop(session, 0)
        self.record_change("Stakes", (session,), None)
        ctx.emit(self.name, "WorkerReclaimed", session=session, original_stake=original, slashed=0)
        return original, 0

    # -- calls --------------------------------------------------------------------------
    def call_unbind(
        self, ctx: BlockContext, signer: AccountHex | None, args: Mapping[str, Any]
    ) -> None:
        who = ensure_signed(signer)
        session = key32(args["session"])
        worker = self.session_bindings.get(session)
        if worker is None:
            raise DispatchError(self.name, "SessionNotBound")
        registered = self._registry(ctx).worker(worker)
        if registered is None:
            raise DispatchError(self.name, "WorkerNotRegistered")
        if registered["operator"] != who:
            raise DispatchError(self.name, "BadSender")
        self.unbind_session(ctx, session, notify=True)

    def call_set_cool_down_expiration(
        self, ctx: BlockContext, signer: AccountHex | None, args: Mapping[str, Any]
    ) -> None:
        if signer is not None:
            raise DispatchError("System", "BadOrigin")
        self.cool_down_period = int(args["period"])
        self.record_change("CoolDownPeriod", (), self.cool_down_period)
        ctx.emit(self.name, "CoolDownExpirationChanged", period=self.cool_down_period)

    # -- liveness -----------------------------------------------------------------------
    def online_target(self) -> int:
        """All ones, or ``expected_heartbeats / computing workers`` of the hash space."""
        count = len(self.computing)
        if self.expected_heartbeats is None or count <= self.expected_heartbeats:
            return ONLINE_TARGET_MAX
        return ONLINE_TARGET_MAX * self.expected_heartbeats // count

    def _challenge(self, ctx: BlockContext) -> None:
        seed = blake2_256(b"poolkeeper-devnet-heartbeat" + ctx.number.to_bytes(4, "little"))
        target = self.online_target()
        self._push(ctx, _scale.heartbeat_challenge(seed, target.to_bytes(32, "little")))
        for worker in self.computing:
            if worker in self.owed:
                continue
            if target == ONLINE_TARGET_MAX or (
                int.from_bytes(blake2_256(to_bytes(worker) + seed), "little") <= target
            ):
                self.owed[worker] = ctx.number

    def on_finalize(self, ctx: BlockContext) -> None:
        if not self.computing:
            return
        if ctx.number % self.heartbeat_interval == 0:
            self._challenge(ctx)
        deadline = ctx.number - self.unresponsive_after
        for worker, since in self.owed.items():
            if since > deadline:
                continue
            session = self.worker_bindings.get(worker)
            if session is None:
                continue
            info = self.sessions[session]
            if info["state"] != IDLE:
                continue
            self._put_session(session, {**info, "state": UNRESPONSIVE})
            ctx.emit(self.name, "WorkerEnterUnresponsive", session=session)
            self._push(ctx, _scale.enter_unresponsive(to_bytes(worker)))

    def on_worker_message(
        self, ctx: BlockContext, sender_pubkey: AccountHex, topic: bytes, payload: bytes
    ) -> None:
        """``HeartbeatV2``: update the benchmark, mark the worker alive, maybe recover it."""
        _block, challenge_time_ms, iterations = _scale.decode_heartbeat(payload)
        session = self.worker_bindings.get(sender_pubkey)
        if session is None:
            raise DispatchError(self.name, "WorkerNotBound")
        info = self.sessions[session]
        bench = dict(info["benchmark"])
        challenge_time = challenge_time_ms // 1000
        if challenge_time > bench["challenge_time_last"]:
            elapsed = challenge_time - max(
                bench["challenge_time_last"], bench["working_start_time"]
            )
            if bench["iterations"] and elapsed > 0 and iterations >= bench["iterations"]:
                p_instant = (iterations - bench["iterations"]) * 6 // elapsed
                bench["p_instant"] = min(p_instant, 2**32 - 1)
            bench["iterations"] = iterations
            bench["challenge_time_last"] = challenge_time
        updated = {**info, "benchmark": bench}
        recovered = info["state"] == UNRESPONSIVE
        if recovered:
            updated["state"] = IDLE
        self._put_session(session, updated)
        ctx.emit(self.name, "BenchmarkUpdated", session=session, p_instant=bench["p_instant"])
        self.owed.pop(sender_pubkey, None)
        if recovered:
            ctx.emit(self.name, "WorkerExitUnresponsive", session=session)
            self._push(ctx, _scale.exit_unresponsive(to_bytes(sender_pubkey)))
