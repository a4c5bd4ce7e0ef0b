"""An in-memory stand-in for the chain port, for unit tests of the executor only.

The executor's real proof runs against the devnet chain simulator and chopsticks
over the network (tests/functional, tests/realnode); this fake only lets us force
the awkward cases (rejections, lost connections, crashes) deterministically.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from poolkeeper.chain.ports import (
    CallSpec,
    ChainState,
    ItemResult,
    NonceAt,
    Outcome,
    SignedExtrinsic,
    Signer,
    TxStatus,
)
from poolkeeper.errors import ChainUnavailable
from poolkeeper.model.observed import ChainHead, ObservedAccount


@dataclass
class FakeSigner:
    name: str

    @property
    def address(self) -> str:
        return f"addr-{self.name}"

    @property
    def public_key(self) -> bytes:
        return hashlib.blake2b(self.name.encode(), digest_size=32).digest()

    def sign(self, payload: bytes) -> bytes:
        return hashlib.blake2b(payload + self.public_key, digest_size=64).digest()


@dataclass
class FakeSigners:
    def signer(self, account: str) -> FakeSigner:
        return FakeSigner(account)

    def address(self, account: str) -> str:
        return f"addr-{account}"


@dataclass
class FakeChain:
    """Counts every call it executes; refuses a nonce twice, like a node."""

    balances: dict[str, int] = field(default_factory=dict)
    nonces: dict[str, int] = field(default_factory=dict)
    fee: int = 10
    failing_calls: set[tuple[str, object]] = field(default_factory=set)
    """(function, worker) pairs whose dispatch fails with WorkerIsNotReady."""
    executed: list[tuple[str, dict[str, object]]] = field(default_factory=list)
    included: dict[str, Outcome] = field(default_factory=dict)
    sent_hashes: list[str] = field(default_factory=list)
    drop_connection_after_include: int = 0
    """Raise ChainUnavailable after including this many more extrinsics (a lost reply)."""
    block: int = 100

    async def read_state(
        self, pids: Sequence[int], addresses: Sequence[str], pubkeys: Sequence[str] = ()
    ) -> ChainState:
        return ChainState(
            head=ChainHead(best_number=self.block, finalized_number=self.block - 2),
            cool_down_period=60,
            workers={},
            pools={},
            accounts={
                a: ObservedAccount(
                    address=a, free=self.balances.get(a, 0), nonce=self.nonces.get(a, 0)
                )
                for a in addresses
            },
            proxies=(),
        )

    async def account_nonce(self, address: str) -> int:
        return self.nonces.get(address, 0)

    async def sign(
        self,
        signer: Signer,
        calls: Sequence[CallSpec],
        *,
        proxy_for: str | None = None,
        nonce: int | None = None,
    ) -> SignedExtrinsic:
        assert nonce is not None
        body = json.dumps(
            {
                "signer": signer.address,
                "nonce": nonce,
                "proxy": proxy_for,
                "calls": [[c.pallet, c.function, dict(c.args)] for c in calls],
            },
            sort_keys=True,
        ).encode()
        return SignedExtrinsic(
            extrinsic_hash="0x" + hashlib.blake2b(body, digest_size=32).hexdigest(),
            data=body,
            signer=signer.address,
            nonce=nonce,
            call_count=len(calls),
            era_start=self.block,
            era_period=64,
        )

    async def send(self, signed: SignedExtrinsic) -> Outcome:
        self.sent_hashes.append(signed.extrinsic_hash)
        if signed.extrinsic_hash in self.included:
            return Outcome(status=TxStatus.REJECTED, error="1013: Transaction Already Imported")
        body = json.loads(signed.data)
        expected = self.nonces.get(body["signer"], 0)
        if body["nonce"] < expected:
            return Outcome(
                status=TxStatus.REJECTED, error="1010: Invalid Transaction: Transaction is outdated"
            )
        if self.balances.get(body["signer"], 0) < self.fee:
            return Outcome(status=TxStatus.REJECTED, error="1010: Inability to pay some fees")
        self.nonces[body["signer"]] = body["nonce"] + 1
        self.balances[body["signer"]] -= self.fee
        items = []
        for _pallet, function, args in body["calls"]:
            if (function, args.get("worker") or args.get("pubkey")) in self.failing_calls:
                items.append(ItemResult(False, "PhalaStakePoolv2.WorkerIsNotReady"))
            else:
                self.executed.append((function, args))
                items.append(ItemResult(True))
        self.block += 1
        outcome = Outcome(
            status=TxStatus.IN_BLOCK,
            block_number=self.block,
            block_hash=f"0x{self.block:064x}",
            items=tuple(items),
            fee=self.fee,
        )
        self.included[signed.extrinsic_hash] = outcome
        if self.drop_connection_after_include:
            self.drop_connection_after_include -= 1
            if self.drop_connection_after_include == 0:
                raise ChainUnavailable("connection closed while waiting for inclusion")
        return outcome

    async def estimate_fee(
        self, signer: Signer, calls: Sequence[CallSpec], *, proxy_for: str | None = None
    ) -> int:
        return self.fee

    async def find_extrinsic(self, extrinsic_hash: str, since_block: int) -> Outcome | None:
        return self.included.get(extrinsic_hash)

    async def chain_nonce(self, address: str) -> NonceAt:
        return NonceAt(self.nonces.get(address, 0), self.block)

    async def resubmit(self, signed: SignedExtrinsic) -> str | None:
        """This fake has no pool: a taken extrinsic is included at once."""
        outcome = await self.send(signed)
        return outcome.error if outcome.status is TxStatus.REJECTED else None
