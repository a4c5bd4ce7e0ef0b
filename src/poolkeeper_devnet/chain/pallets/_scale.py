"""A tiny hand-written SCALE codec for the Phala messages the pallets exchange with workers.

These payloads (``SystemEvent``, ``RegistryEvent``, ``MiningReportEvent``, ``Message``,
``WorkerRegistrationInfoV2``) are not types of the served metadata, and they are few and
fixed (docs/devnet-wire.md), so a handful of explicit functions is clearer and much faster
than building ad-hoc scalecodec type strings for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from poolkeeper_devnet.chain.pallets._values import to_bytes, variant
from poolkeeper_devnet.codec import Reader
from poolkeeper_devnet.codec import encode_compact as compact

ORIGIN_VARIANTS = {
    "Pallet": 0,
    "Contract": 1,
    "Worker": 2,
    "AccountId": 3,
    "MultiLocation": 4,
    "Gatekeeper": 5,
    "Cluster": 6,
}
_BYTES_ORIGINS = {"Pallet", "MultiLocation"}


def u32(n: int) -> bytes:
    return n.to_bytes(4, "little")


def u64(n: int) -> bytes:
    return n.to_bytes(8, "little")


def u128(n: int) -> bytes:
    return n.to_bytes(16, "little")


def vec_bytes(raw: bytes) -> bytes:
    return compact(len(raw)) + raw


def fixed32(value: Any) -> bytes:
    raw = to_bytes(value)
    if len(raw) != 32:
        raise ValueError(f"expected 32 bytes, got {len(raw)}")
    return raw


def encode_origin(value: Any) -> bytes:
    """SCALE ``MessageOrigin`` from its value shape, e.g. ``{"Worker": "0x.."}``."""
    name, inner = variant(value)
    if name not in ORIGIN_VARIANTS:
        raise ValueError(f"unknown MessageOrigin variant {name}")
    head = bytes([ORIGIN_VARIANTS[name]])
    if name == "Gatekeeper":
        return head
    if name in _BYTES_ORIGINS:
        return head + vec_bytes(to_bytes(inner))
    return head + fixed32(inner)


def encode_message(message: Mapping[str, Any]) -> bytes:
    """SCALE ``Message{sender, destination, payload}`` from its value shape."""
    return (
        encode_origin(message["sender"])
        + vec_bytes(to_bytes(message["destination"]))
        + vec_bytes(to_bytes(message["payload"]))
    )


def signed_payload(message: Mapping[str, Any], sequence: int) -> bytes:
    """What a worker signs: ``SCALE(message) ++ SCALE(sequence u64)``."""
    return encode_message(message) + u64(sequence)


# SystemEvent payloads on topic phala/system/worker (chain -> worker).
def worker_event(pubkey: bytes, event_index: int, body: bytes = b"") -> bytes:
    return b"\x00" + pubkey + bytes([event_index]) + body


def registered(pubkey: bytes, ecdh_pubkey: bytes) -> bytes:
    return worker_event(pubkey, 0, pubkey + ecdh_pubkey)


def bench_start(pubkey: bytes, duration: int) -> bytes:
    return worker_event(pubkey, 1, u32(duration))


def bench_score(pubkey: bytes, score: int) -> bytes:
    return worker_event(pubkey, 2, u32(score))


def started(pubkey: bytes, session_id: int, init_v: int, init_p: int) -> bytes:
    return worker_event(pubkey, 3, u32(session_id) + u128(init_v) + u32(init_p))


def stopped(pubkey: bytes) -> bytes:
    return worker_event(pubkey, 4)


def enter_unresponsive(pubkey: bytes) -> bytes:
    return worker_event(pubkey, 5)


def exit_unresponsive(pubkey: bytes) -> bytes:
    return worker_event(pubkey, 6)


def heartbeat_challenge(seed: bytes, online_target: bytes) -> bytes:
    return b"\x01" + seed + online_target


# Worker -> chain payloads.
def decode_bench_report(payload: bytes) -> tuple[int, int]:
    """``RegistryEvent::BenchReport{start_time u64, iterations u64}`` → (start_time, iterations)."""
    reader = Reader(payload)
    if reader.u8() != 0:
        raise ValueError("not a BenchReport")
    start_time, iterations = reader.u64(), reader.u64()
    reader.end()
    return start_time, iterations


def decode_heartbeat(payload: bytes) -> tuple[int, int, int]:
    """``MiningReportEvent::HeartbeatV2{challenge_block u32, challenge_time u64, iterations u64}``.

    Variant 0 (the retired ``Heartbeat``) has the same fields and is accepted too.
    """
    reader = Reader(payload)
    if reader.u8() not in (0, 1):
        raise ValueError("not a heartbeat")
    block, challenge_time, iterations = reader.u32(), reader.u64(), reader.u64()
    reader.end()
    return block, challenge_time, iterations


def encode_registration_info(info: Mapping[str, Any]) -> bytes:
    """SCALE ``WorkerRegistrationInfoV2`` (what an attestation report commits to)."""
    features = info.get("features") or []
    operator = info.get("operator")
    return (
        u32(int(info["version"]))
        + vec_bytes(to_bytes(info["machine_id"]))
        + fixed32(info["pubkey"])
        + fixed32(info["ecdh_pubkey"])
        + fixed32(info["genesis_block_hash"])
        + compact(len(features))
        + b"".join(u32(int(f)) for f in features)
        + (b"\x00" if operator is None else b"\x01" + fixed32(operator))
        + u32(int(info["para_id"]))
        + u32(int(info["max_consensus_version"]))
    )


def encode_endpoint_payload(payload: Mapping[str, Any]) -> bytes:
    """SCALE ``WorkerEndpointPayload{pubkey, versioned_endpoints V1(..), signing_time}``."""
    name, endpoints = variant(payload["versioned_endpoints"])
    if name != "V1":
        raise ValueError(f"unknown endpoint version {name}")
    body = compact(len(endpoints)) + b"".join(vec_bytes(str(e).encode()) for e in endpoints)
    return fixed32(payload["pubkey"]) + b"\x00" + body + u64(int(payload["signing_time"]))
