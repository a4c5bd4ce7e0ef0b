"""A tiny in-memory chain that produces what a pRuntime consumes, per docs/devnet-wire.md.

Tests and benchmarks of the pRuntime simulator need valid genesis info, header batches
with GRANDPA justifications, and storage changes whose roots match the headers, without
starting the chain simulator. ``MiniChain`` builds exactly those bytes and can place
chain→worker messages (Registered, BenchStart, Started, HeartbeatChallenge...) into
``PhalaMq.OutboundMessages`` and advance ``PhalaMq.OffchainIngress``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import nacl.signing
import xxhash

from poolkeeper_devnet.pruntime._scale import (
    accumulate,
    blake2_256,
    compact,
    enc_bytes,
    enc_option,
    enc_vec,
    encode_header,
    leaf,
    root_of,
    storage_prefix,
    u32,
    u64,
    u128,
)
from poolkeeper_devnet.pruntime._worker import (
    GRANDPA_AUTHORITIES_KEY,
    GRANDPA_SET_ID_KEY,
    INGRESS_PREFIX,
    OUTBOUND_KEY,
    PARA_ID_KEY,
    TIMESTAMP_KEY,
    WORKER_TOPIC,
    worker_origin,
)

GRANDPA_SEED = blake2_256(b"poolkeeper-devnet-grandpa-0")
BLOCK_MS = 12_000
_MOD = 1 << 256
_EMPTY_EXTRINSICS_ROOT = blake2_256(compact(0))


def ingress_key(pubkey: bytes) -> bytes:
    """``PhalaMq.OffchainIngress(Worker(pubkey))`` (Twox64Concat)."""
    origin = worker_origin(pubkey)
    return INGRESS_PREFIX + xxhash.xxh64_intdigest(origin, 0).to_bytes(8, "little") + origin


def system_message(sender: bytes, payload: bytes) -> bytes:
    """SCALE ``Message{Pallet(sender), b"phala/system/worker", payload}``."""
    return b"\x00" + enc_bytes(sender) + enc_bytes(WORKER_TOPIC) + enc_bytes(payload)


def worker_event(pubkey: bytes, event: bytes) -> bytes:
    """``SystemEvent::WorkerEvent{pubkey, event}`` inside a registry message."""
    return system_message(b"phala/registry", b"\x00" + pubkey + event)


def registered(pubkey: bytes, ecdh_pubkey: bytes) -> bytes:
    return worker_event(pubkey, b"\x00" + pubkey + ecdh_pubkey)


def bench_start(pubkey: bytes, duration: int) -> bytes:
    return worker_event(pubkey, b"\x01" + u32(duration))


def started(pubkey: bytes, session_id: int = 1) -> bytes:
    return worker_event(pubkey, b"\x03" + u32(session_id) + u128(0) + u32(0))


def stopped(pubkey: bytes) -> bytes:
    return worker_event(pubkey, b"\x04")


def heartbeat_challenge(seed: bytes, online_target: bytes = b"\xff" * 32) -> bytes:
    """``SystemEvent::HeartbeatChallenge`` from the computation pallet."""
    return system_message(b"phala/computation", b"\x01" + seed + online_target)


class MiniChain:
    """A solo chain with one GRANDPA authority; block n's changes lead to header n's root."""

    def __init__(
        self,
        *,
        para_id: int = 2035,
        start_ms: int = 1_700_000_000_000,
        extra_genesis: Mapping[bytes, bytes] | None = None,
    ) -> None:
        self.signer = nacl.signing.SigningKey(GRANDPA_SEED)
        self.authority = bytes(self.signer.verify_key)
        self.authorities = enc_vec([self.authority + u64(1)])
        self.state: dict[bytes, bytes] = {
            GRANDPA_AUTHORITIES_KEY: b"\x01" + self.authorities,
            GRANDPA_SET_ID_KEY: u64(0),
            PARA_ID_KEY: u32(para_id),
            TIMESTAMP_KEY: u64(start_ms),
            storage_prefix("System", "Number"): u32(0),
        }
        self.state.update(extra_genesis or {})
        self.genesis_pairs = dict(self.state)
        self.acc = accumulate(self.state.items())
        self.headers: list[bytes] = [
            encode_header(b"\0" * 32, 0, root_of(self.acc), _EMPTY_EXTRINSICS_ROOT)
        ]
        self.changes: list[list[tuple[bytes, bytes | None]]] = [[]]

    @property
    def height(self) -> int:
        return len(self.headers) - 1

    def hash(self, number: int) -> bytes:
        return blake2_256(self.headers[number])

    def genesis_info(self) -> bytes:
        """SCALE ``GenesisBlockInfo`` with the read proof of the GRANDPA keys."""
        proof = [
            enc_bytes(k) + enc_option(enc_bytes(self.genesis_pairs[k]))
            for k in (GRANDPA_AUTHORITIES_KEY, GRANDPA_SET_ID_KEY)
        ]
        return self.headers[0] + self.authorities + u64(0) + enc_vec(enc_bytes(p) for p in proof)

    def genesis_state(self) -> bytes:
        """SCALE ``Vec<(Bytes, Bytes)>`` of the whole genesis storage."""
        return enc_vec(enc_bytes(k) + enc_bytes(v) for k, v in sorted(self.genesis_pairs.items()))

    def add_block(
        self,
        messages: Iterable[bytes] = (),
        changes: Mapping[bytes, bytes | None] | None = None,
    ) -> int:
        """Append a block carrying ``messages`` in OutboundMessages; returns its number."""
        number = len(self.headers)
        block: dict[bytes, bytes | None] = {
            TIMESTAMP_KEY: u64(int.from_bytes(self.state[TIMESTAMP_KEY], "little") + BLOCK_MS),
            storage_prefix("System", "Number"): u32(number),
        }
        encoded = list(messages)
        if encoded:
            block[OUTBOUND_KEY] = enc_vec(encoded)
        elif OUTBOUND_KEY in self.state:
            block[OUTBOUND_KEY] = None
        block.update(changes or {})
        for key, value in block.items():
            old = self.state.get(key)
            if old is not None:
                self.acc -= leaf(key, old)
                del self.state[key]
            if value is not None:
                self.acc += leaf(key, value)
                self.state[key] = value
        self.acc %= _MOD
        header = encode_header(
            self.hash(number - 1), number, root_of(self.acc), _EMPTY_EXTRINSICS_ROOT
        )
        self.headers.append(header)
        self.changes.append(list(block.items()))
        return number

    def justification(self, number: int, *, signer: nacl.signing.SigningKey | None = None) -> bytes:
        """A GRANDPA justification of block ``number`` signed by the authority (round 1)."""
        target = self.hash(number)
        round_, set_id = 1, 0
        message = b"\x01" + target + u32(number) + u64(round_) + u64(set_id)
        signature = (signer or self.signer).sign(message).signature
        precommit = target + u32(number) + signature + self.authority
        return u64(round_) + target + u32(number) + enc_vec([precommit]) + compact(0)

    def headers_to_sync(
        self, first: int, last: int, *, justification: bytes | bool | None = True
    ) -> bytes:
        """SCALE ``Vec<HeaderToSync>`` for ``first..=last``; the last one justified."""
        items = []
        for number in range(first, last + 1):
            proof: bytes | None = None
            if number == last and justification is not False and justification is not None:
                proof = self.justification(number) if justification is True else justification
            items.append(
                self.headers[number] + enc_option(None if proof is None else enc_bytes(proof))
            )
        return enc_vec(items)

    def blocks(self, first: int, last: int) -> bytes:
        """SCALE ``Vec<BlockHeaderWithChanges>`` for ``first..=last``."""
        items = []
        for number in range(first, last + 1):
            changes = enc_vec(
                enc_bytes(k) + enc_option(None if v is None else enc_bytes(v))
                for k, v in self.changes[number]
            )
            items.append(self.headers[number] + changes + compact(0))
        return enc_vec(items)
