"""SCALE primitives, Substrate hashers, headers and eras, without a metadata.

The hot paths of the simulator (storage keys, headers, extrinsic envelopes, state root)
are fixed formats; encoding them by hand keeps block production fast and lets
everything else (type-driven values) go through scalecodec with the served metadata.
This is the devnet's one SCALE helper: the compact integer and the sequential
``Reader`` here are used by the chain simulator, its pallets, its metadata reader and the
pRuntime simulator alike.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

import xxhash

T = TypeVar("T")


def blake2_256(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def blake2_128(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def twox64(data: bytes) -> bytes:
    return xxhash.xxh64(data, seed=0).intdigest().to_bytes(8, "little")


def twox128(data: bytes) -> bytes:
    return twox64_seeded(data, 0) + twox64_seeded(data, 1)


def twox256(data: bytes) -> bytes:
    return b"".join(twox64_seeded(data, seed) for seed in range(4))


def twox64_seeded(data: bytes, seed: int) -> bytes:
    return xxhash.xxh64(data, seed=seed).intdigest().to_bytes(8, "little")


HASHERS: dict[str, Callable[[bytes], bytes]] = {
    "Blake2_128": blake2_128,
    "Blake2_256": blake2_256,
    "Blake2_128Concat": lambda data: blake2_128(data) + data,
    "Twox128": twox128,
    "Twox256": twox256,
    "Twox64Concat": lambda data: twox64(data) + data,
    "Identity": lambda data: data,
}


def storage_prefix(pallet: str, item: str) -> bytes:
    return twox128(pallet.encode()) + twox128(item.encode())


class ScaleError(ValueError):
    """Bytes that are not the SCALE encoding expected."""


def encode_compact(value: int) -> bytes:
    if value < 0:
        raise ScaleError("compact of a negative number")
    if value < 1 << 6:
        return bytes([value << 2])
    if value < 1 << 14:
        return ((value << 2) | 1).to_bytes(2, "little")
    if value < 1 << 30:
        return ((value << 2) | 2).to_bytes(4, "little")
    raw = value.to_bytes((value.bit_length() + 7) // 8, "little")
    if len(raw) > 67:
        raise ScaleError("compact too large")
    return bytes([((len(raw) - 4) << 2) | 3]) + raw


def decode_compact(data: bytes | memoryview, offset: int = 0) -> tuple[int, int]:
    """(value, offset after it)."""
    if offset >= len(data):
        raise ScaleError("compact: out of data")
    mode = data[offset] & 3
    if mode == 0:
        return data[offset] >> 2, offset + 1
    if mode == 1:
        end = offset + 2
        if end > len(data):
            raise ScaleError("compact: out of data")
        return int.from_bytes(data[offset:end], "little") >> 2, end
    if mode == 2:
        end = offset + 4
        if end > len(data):
            raise ScaleError("compact: out of data")
        return int.from_bytes(data[offset:end], "little") >> 2, end
    size = (data[offset] >> 2) + 4
    end = offset + 1 + size
    if end > len(data):
        raise ScaleError("compact: out of data")
    return int.from_bytes(data[offset + 1 : end], "little"), end


def encode_bytes(data: bytes) -> bytes:
    return encode_compact(len(data)) + data


def decode_bytes(data: bytes, offset: int = 0) -> tuple[bytes, int]:
    length, start = decode_compact(data, offset)
    end = start + length
    if end > len(data):
        raise ScaleError("bytes: out of data")
    return data[start:end], end


class Reader:
    """Sequential SCALE decoder over a byte buffer; fails on truncation (``ScaleError``)."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes | memoryview, pos: int = 0) -> None:
        self.data = memoryview(data)
        self.pos = pos

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise ScaleError(f"unexpected end of input at {self.pos} (wanted {n} bytes)")
        chunk = bytes(self.data[self.pos : end])
        self.pos = end
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "little")

    def u64(self) -> int:
        return int.from_bytes(self.take(8), "little")

    def u128(self) -> int:
        return int.from_bytes(self.take(16), "little")

    def boolean(self) -> bool:
        byte = self.u8()
        if byte > 1:
            raise ScaleError(f"invalid bool byte {byte}")
        return byte == 1

    def compact(self) -> int:
        value, self.pos = decode_compact(self.data, self.pos)
        return value

    def bytes_(self) -> bytes:
        return self.take(self.compact())

    def vec(self, item: Callable[[Reader], T]) -> list[T]:
        count = self.compact()
        if count > len(self.data) - self.pos:
            raise ScaleError(f"vector length {count} exceeds the input")
        return [item(self) for _ in range(count)]

    def option(self, item: Callable[[Reader], T]) -> T | None:
        tag = self.u8()
        if tag == 0:
            return None
        if tag == 1:
            return item(self)
        raise ScaleError(f"invalid Option tag {tag}")

    def string(self) -> str:
        try:
            return self.bytes_().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ScaleError("invalid UTF-8 string") from exc

    def end(self) -> None:
        if self.pos != len(self.data):
            raise ScaleError(f"{len(self.data) - self.pos} trailing bytes")


def decode_all(data: bytes, item: Callable[[Reader], T]) -> T:
    """Decode ``data`` entirely as one ``item``."""
    reader = Reader(data)
    value = item(reader)
    reader.end()
    return value


def encode_vec(items: Iterable[bytes]) -> bytes:
    encoded = list(items)
    return encode_compact(len(encoded)) + b"".join(encoded)


def u32(value: int) -> bytes:
    return value.to_bytes(4, "little")


def u64(value: int) -> bytes:
    return value.to_bytes(8, "little")


def u128(value: int) -> bytes:
    return value.to_bytes(16, "little")


def hexstr(data: bytes) -> str:
    return "0x" + data.hex()


def unhex(text: str) -> bytes:
    """Bytes of a ``0x`` hex string; raises ScaleError if it is not one."""
    if not isinstance(text, str) or not text.startswith("0x"):
        raise ScaleError("expected a 0x-prefixed hex string")
    try:
        return bytes.fromhex(text[2:])
    except ValueError as exc:
        raise ScaleError("invalid hex") from exc


@dataclass
class Header:
    """The standard Substrate header; ``digest`` holds already-encoded DigestItems."""

    parent_hash: bytes
    number: int
    state_root: bytes
    extrinsics_root: bytes
    digest: list[bytes] = field(default_factory=list)

    def encode(self) -> bytes:
        return (
            self.parent_hash
            + encode_compact(self.number)
            + self.state_root
            + self.extrinsics_root
            + encode_vec(self.digest)
        )

    def hash(self) -> bytes:
        return blake2_256(self.encode())

    def to_json(self) -> dict[str, object]:
        return {
            "parentHash": hexstr(self.parent_hash),
            "number": hex(self.number),
            "stateRoot": hexstr(self.state_root),
            "extrinsicsRoot": hexstr(self.extrinsics_root),
            "digest": {"logs": [hexstr(item) for item in self.digest]},
        }


def extrinsics_root(extrinsics: Iterable[bytes]) -> bytes:
    """blake2_256 of SCALE(Vec<Bytes>) of the block's extrinsics (docs/devnet-wire.md)."""
    return blake2_256(encode_vec(encode_bytes(xt) for xt in extrinsics))


@dataclass(frozen=True)
class Era:
    """A transaction's mortality: immortal, or (period, phase)."""

    period: int = 0
    phase: int = 0

    @property
    def immortal(self) -> bool:
        return self.period == 0

    def birth(self, current: int) -> int:
        return (max(current, self.phase) - self.phase) // self.period * self.period + self.phase

    def death(self, current: int) -> int:
        return self.birth(current) + self.period


def decode_era(data: bytes, offset: int) -> tuple[Era, int]:
    if offset >= len(data):
        raise ScaleError("era: out of data")
    if data[offset] == 0:
        return Era(), offset + 1
    if offset + 2 > len(data):
        raise ScaleError("era: out of data")
    encoded = int.from_bytes(data[offset : offset + 2], "little")
    period = 2 << (encoded % (1 << 4))
    quantize = max(period >> 12, 1)
    phase = (encoded >> 4) * quantize
    if period < 4 or phase >= period:
        raise ScaleError("era: invalid")
    return Era(period, phase), offset + 2
