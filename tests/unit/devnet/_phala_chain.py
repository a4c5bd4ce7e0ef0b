"""A miniature engine for unit tests of the Phala pallets: no RPC, no SCALE storage.

It does what the real engine promises the pallets (base.py): one context per block,
rollback of every pallet when a call fails, on_initialize/on_finalize hooks, worker
messages landing in PhalaMq.OutboundMessages, and a Balances pallet with the helper API.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sr25519

from poolkeeper_devnet.chain.pallets import (
    AccountHex,
    BlockContext,
    DispatchError,
    Pallet,
    SimpleBlockContext,
    TokenError,
)
from poolkeeper_devnet.chain.pallets._scale import signed_payload
from poolkeeper_devnet.chain.pallets.phala import PALLETS, merge_phala_genesis
from poolkeeper_devnet.chain.pallets.phala_mq import PhalaMq

PHA = 10**12
T0_MS = 1_700_000_000_000
BLOCK_MS = 6_000
PARA_ID = 2004


def account(name: str) -> AccountHex:
    return "0x" + hashlib.blake2b(name.encode(), digest_size=32).hexdigest()


class FakeBalances(Pallet):
    """Balances with the helper methods the engine's pallet offers (base.BalancesApi)."""

    name = "Balances"

    def __init__(self) -> None:
        super().__init__()
        self.accounts: dict[AccountHex, int] = {}

    def dispatch(
        self, ctx: BlockContext, signer: AccountHex | None, call: str, args: Mapping[str, Any]
    ) -> None:
        raise DispatchError(self.name, "CallNotSupported")

    def free(self, account: AccountHex) -> int:
        return self.accounts.get(account, 0)

    def transfer(self, src: AccountHex, dst: AccountHex, amount: int, keep_alive: bool) -> None:
        if self.free(src) < amount:
            raise TokenError("FundsUnavailable")  # as Khala's fungible-based pallet_balances
        self.withdraw(src, amount)
        self.deposit(dst, amount)

    def withdraw(self, account: AccountHex, amount: int) -> None:
        if self.free(account) < amount:
            raise DispatchError(self.name, "InsufficientBalance")
        self.accounts[account] = self.free(account) - amount

    def deposit(self, account: AccountHex, amount: int) -> None:
        self.accounts[account] = self.free(account) + amount


class ParachainInfo(Pallet):
    name = "ParachainInfo"

    def __init__(self) -> None:
        super().__init__()
        self.para_id = PARA_ID

    def dispatch(
        self, ctx: BlockContext, signer: AccountHex | None, call: str, args: Mapping[str, Any]
    ) -> None:
        raise DispatchError(self.name, "CallNotSupported")


class Context(SimpleBlockContext):
    def push_worker_message(self, sender: bytes, topic: bytes, payload: bytes) -> None:
        super().push_worker_message(sender, topic, payload)
        mq = self.pallets["PhalaMq"]
        assert isinstance(mq, PhalaMq)
        mq.push_outbound(sender, topic, payload)


@dataclass
class Worker:
    """A simulated worker identity that signs egress messages."""

    seed: bytes
    sequence: int = 0

    @property
    def keypair(self) -> tuple[bytes, bytes]:
        public, secret = sr25519.pair_from_seed(self.seed)
        return bytes(public), bytes(secret)

    @property
    def pubkey(self) -> AccountHex:
        return "0x" + self.keypair[0].hex()

    def signed_message(
        self, topic: str, payload: bytes, *, sequence: int | None = None
    ) -> dict[str, Any]:
        """A ``SignedMessage`` in the value shape scalecodec decodes it to."""
        seq = self.sequence if sequence is None else sequence
        message = {
            "sender": {"Worker": self.pubkey},
            "destination": topic,
            "payload": "0x" + payload.hex(),
        }
        signature = sr25519.sign(self.keypair, signed_payload(message, seq))
        return {"message": message, "sequence": seq, "signature": "0x" + bytes(signature).hex()}


def make_worker(name: str) -> Worker:
    return Worker(hashlib.blake2b(b"worker:" + name.encode(), digest_size=32).digest())


class Chain:
    def __init__(self, genesis: Mapping[str, Any] | None = None) -> None:
        self.pallets: dict[str, Pallet] = {cls.name: cls() for cls in PALLETS}
        self.pallets["Balances"] = self.balances = FakeBalances()
        self.pallets["ParachainInfo"] = ParachainInfo()
        sections = merge_phala_genesis(genesis or {})
        for pallet in self.pallets.values():
            pallet.genesis(sections.get(pallet.name, {}))
        self.genesis_changes = self.drain()
        self.past_events: list[Any] = []
        self.ctx = Context(number=1, timestamp_ms=T0_MS, pallets=self.pallets)
        for pallet in self.pallets.values():
            pallet.on_initialize(self.ctx)

    def pallet(self, name: str) -> Any:
        return self.pallets[name]

    def call(self, pallet: str, call: str, signer: AccountHex | None, **args: Any) -> None:
        snapshots = {name: p.snapshot() for name, p in self.pallets.items()}
        events, messages = len(self.ctx.events), len(self.ctx.worker_messages)
        try:
            self.pallets[pallet].dispatch(self.ctx, signer, call, args)
        except DispatchError:
            for name, p in self.pallets.items():
                p.restore(snapshots[name])
            del self.ctx.events[events:]
            del self.ctx.worker_messages[messages:]
            raise

    def error_of(self, pallet: str, call: str, signer: AccountHex | None, **args: Any) -> str:
        try:
            self.call(pallet, call, signer, **args)
        except DispatchError as exc:
            return f"{exc.pallet}.{exc.error}"
        raise AssertionError(f"{pallet}.{call} succeeded")

    def next_block(self, seconds: float = BLOCK_MS / 1000) -> None:
        for pallet in self.pallets.values():
            pallet.on_finalize(self.ctx)
        self.past_events += self.ctx.events
        self.ctx = Context(
            number=self.ctx.number + 1,
            timestamp_ms=self.ctx.timestamp_ms + int(seconds * 1000),
            pallets=self.pallets,
        )
        for pallet in self.pallets.values():
            pallet.on_initialize(self.ctx)

    def drain(self) -> list[tuple[str, str, tuple[Any, ...], Any]]:
        """Every pallet's storage changes since the last drain: (pallet, item, key, value)."""
        return [
            (name, item, key, value)
            for name, pallet in self.pallets.items()
            for item, key, value in pallet.take_storage_changes()
        ]

    def events(self, pallet: str | None = None) -> list[tuple[str, str, dict[str, Any]]]:
        return [
            (e.pallet, e.event, e.attributes)
            for e in self.ctx.events
            if pallet is None or e.pallet == pallet
        ]

    def event_names(self) -> list[str]:
        return [f"{e.pallet}.{e.event}" for e in self.ctx.events]

    # -- common flows ------------------------------------------------------------------
    def registration_info(
        self, worker: Worker, operator: AccountHex | None, **overrides: Any
    ) -> dict[str, Any]:
        info: dict[str, Any] = {
            "version": 1,
            "machine_id": "0x0102",
            "pubkey": worker.pubkey,
            "ecdh_pubkey": worker.pubkey,
            "genesis_block_hash": "0x" + "11" * 32,
            "features": [1, 4],
            "operator": operator,
            "para_id": PARA_ID,
            "max_consensus_version": 0,
        }
        info.update(overrides)
        return info

    def register(
        self, worker: Worker, operator: AccountHex | None, signer: AccountHex | None = None
    ) -> None:
        self.call(
            "PhalaRegistry",
            "register_worker_v2",
            signer or operator or account("relayer"),
            pruntime_info=self.registration_info(worker, operator),
            attestation=None,
        )

    def send(
        self, worker: Worker, topic: str, payload: bytes, signer: AccountHex | None = None
    ) -> None:
        self.call(
            "PhalaMq",
            "sync_offchain_message",
            signer or account("relayer"),
            signed_message=worker.signed_message(topic, payload),
        )
        worker.sequence += 1

    def bench(self, worker: Worker, score: int) -> None:
        duration = self.pallet("PhalaRegistry").benchmark_duration
        payload = b"\x00" + (0).to_bytes(8, "little") + (score * duration).to_bytes(8, "little")
        self.send(worker, "phala/registry/event", payload)

    def heartbeat(self, worker: Worker, iterations: int) -> None:
        payload = (
            b"\x01"
            + self.ctx.number.to_bytes(4, "little")
            + self.ctx.timestamp_ms.to_bytes(8, "little")
            + iterations.to_bytes(8, "little")
        )
        self.send(worker, "phala/mining/report", payload)

    def create_pool(self, owner: AccountHex) -> int:
        self.call("PhalaStakePoolv2", "create", owner)
        pid = self.events("PhalaStakePoolv2")[-1][2]["pid"]
        assert isinstance(pid, int)
        return pid

    def fund_pool(self, owner: AccountHex, pid: int, amount: int) -> None:
        self.balances.deposit(owner, amount + PHA)
        self.call("PhalaWrappedBalances", "wrap", owner, amount=amount)
        self.call("PhalaStakePoolv2", "contribute", owner, pid=pid, amount=amount, as_vault=None)
