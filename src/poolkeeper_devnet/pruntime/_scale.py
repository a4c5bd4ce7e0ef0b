"""The few SCALE shapes a pRuntime reads and writes, by hand, plus devnet hashing.

A pRuntime decodes headers, justifications, storage changes and chain messages on
every call; a hand-written reader over ``memoryview`` (the devnet's one ``Reader``, in
``devnet.chain._codec``) is simple and fast, and keeps the raw slice of each header so
its hash is the hash of the bytes the relay sent.
Layouts are the ones in PROTOCOL.md §1.4 and docs/devnet-wire.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# The devnet's one SCALE helper and its hashers, re-exported for the simulator's modules.
from poolkeeper_devnet.codec import (
    Reader,
    ScaleError,
    blake2_256,
    decode_all,
    storage_prefix,
    twox64,
    twox128,
    u32,
    u64,
    u128,
)
from poolkeeper_devnet.codec import encode_bytes as enc_bytes
from poolkeeper_devnet.codec import encode_compact as compact
from poolkeeper_devnet.codec import encode_vec as enc_vec

__all__ = [
    "Header",
    "ProofError",
    "Reader",
    "ScaleError",
    "accumulate",
    "blake2_256",
    "compact",
    "decode_all",
    "enc_bytes",
    "enc_option",
    "enc_str",
    "enc_vec",
    "encode_header",
    "leaf",
    "read_header",
    "read_proof_pairs",
    "root_of",
    "storage_prefix",
    "twox64",
    "twox128",
    "u32",
    "u64",
    "u128",
    "verify_read_proof",
]


def enc_option(encoded: bytes | None) -> bytes:
    """SCALE ``Option<T>`` from an already-encoded value."""
    return b"\x00" if encoded is None else b"\x01" + encoded


def enc_str(text: str) -> bytes:
    """SCALE ``String``."""
    return enc_bytes(text.encode("utf-8"))


# --- headers ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Header:
    """A Substrate header; ``raw`` is its exact encoding, so ``hash`` matches the chain's."""

    parent_hash: bytes
    number: int
    state_root: bytes
    extrinsics_root: bytes
    raw: bytes

    @property
    def hash(self) -> bytes:
        return blake2_256(self.raw)


def _skip_digest_item(reader: Reader) -> None:
    tag = reader.u8()
    if tag == 0:  # Other(Vec<u8>)
        reader.bytes_()
    elif tag in (4, 5, 6):  # Consensus / Seal / PreRuntime (engine id, Vec<u8>)
        reader.take(4)
        reader.bytes_()
    elif tag == 8:  # RuntimeEnvironmentUpdated
        return
    else:
        raise ScaleError(f"unknown DigestItem variant {tag}")


def read_header(reader: Reader) -> Header:
    """``Header{parent_hash, number Compact<u32>, state_root, extrinsics_root, digest}``."""
    start = reader.pos
    parent_hash = reader.take(32)
    number = reader.compact()
    state_root = reader.take(32)
    extrinsics_root = reader.take(32)
    for _ in range(reader.compact()):
        _skip_digest_item(reader)
    raw = bytes(reader.data[start : reader.pos])
    return Header(parent_hash, number, state_root, extrinsics_root, raw)


def encode_header(
    parent_hash: bytes, number: int, state_root: bytes, extrinsics_root: bytes
) -> bytes:
    """A header with an empty digest."""
    return parent_hash + compact(number) + state_root + extrinsics_root + compact(0)


# --- devnet state root (docs/devnet-wire.md) --------------------------------------

STATE_ROOT_DOMAIN = b"poolkeeper-devnet-state-v1"
_MOD = 1 << 256


def leaf(key: bytes, value: bytes) -> int:
    """One storage pair's contribution to the multiset accumulator."""
    return int.from_bytes(blake2_256(enc_bytes(key) + enc_bytes(value)), "little")


def accumulate(pairs: Iterable[tuple[bytes, bytes]]) -> int:
    """The accumulator of a whole storage."""
    return sum(leaf(k, v) for k, v in pairs) % _MOD


def root_of(acc: int) -> bytes:
    """The devnet state root of an accumulator value."""
    return blake2_256(STATE_ROOT_DOMAIN + (acc % _MOD).to_bytes(32, "little"))


# --- devnet read proofs (docs/devnet-wire.md) ---------------------------------------

PROOF_REST_TAG = b"poolkeeper-devnet-proof-rest-v1:"


class ProofError(ValueError):
    """A read proof that does not decode or does not lead to the expected state root."""


def read_proof_pairs(proof: Iterable[bytes]) -> tuple[dict[bytes, bytes | None], int | None]:
    """The proved ``key → value`` pairs of a devnet read proof, and its rest accumulator
    (``None`` when the proof has no rest item)."""
    pairs: dict[bytes, bytes | None] = {}
    rest: int | None = None
    for item in proof:
        if item.startswith(PROOF_REST_TAG) and len(item) == len(PROOF_REST_TAG) + 32:
            if rest is not None:
                raise ProofError("two rest items")
            rest = int.from_bytes(item[len(PROOF_REST_TAG) :], "little")
            continue
        try:
            key, value = decode_all(item, lambda r: (r.bytes_(), r.option(Reader.bytes_)))
        except ScaleError as exc:
            raise ProofError(f"undecodable proof item: {exc}") from exc
        if key in pairs:
            raise ProofError(f"key 0x{key.hex()} proved twice")
        pairs[key] = value
    return pairs, rest


def verify_read_proof(proof: Iterable[bytes], state_root: bytes) -> dict[bytes, bytes | None]:
    """The proved pairs, once ``root_of(rest + Σ leaf(present pairs)) == state_root``."""
    pairs, rest = read_proof_pairs(proof)
    if rest is None:
        raise ProofError("the proof has no rest item")
    acc = rest + sum(leaf(k, v) for k, v in pairs.items() if v is not None)
    if root_of(acc) != state_root:
        raise ProofError("the proof does not lead to the state root")
    return pairs
