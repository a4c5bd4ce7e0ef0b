"""The few SCALE encodings the relay needs, written out by hand for speed.

Relays encode headers and storage changes for thousands of blocks; going through
scalecodec's generic objects for these fixed shapes would dominate catch-up time.
The compact integer itself is ``poolkeeper.model.scale``'s (re-exported here).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import xxhash

from poolkeeper.model.scale import compact as compact  # noqa: PLC0414 (re-exported)
from poolkeeper.model.scale import read_compact as read_compact  # noqa: PLC0414


def bytes_(data: bytes) -> bytes:
    """SCALE ``Vec<u8>``."""
    return compact(len(data)) + data


def option_bytes(data: bytes | None) -> bytes:
    return b"\x00" if data is None else b"\x01" + bytes_(data)


def vec(items: Sequence[bytes]) -> bytes:
    """SCALE ``Vec<T>`` of already-encoded items."""
    return compact(len(items)) + b"".join(items)


def unhex(text: str) -> bytes:
    return bytes.fromhex(text[2:] if text.startswith("0x") else text)


def header_from_rpc(header: dict[str, Any]) -> bytes:
    """SCALE ``Header`` from a ``chain_getHeader`` JSON result."""
    logs = header.get("digest", {}).get("logs", [])
    return (
        unhex(header["parentHash"])
        + compact(int(header["number"], 16))
        + unhex(header["stateRoot"])
        + unhex(header["extrinsicsRoot"])
        + vec([unhex(log) for log in logs])
    )


def storage_changes(main: Iterable[Sequence[str | None]], child: Iterable[Any]) -> bytes:
    """SCALE ``StorageChanges{main Vec<(Bytes, Option<Bytes>)>, child Vec<(Bytes, Vec<..>)>}``."""
    main_items = [
        bytes_(unhex(str(k))) + option_bytes(None if v is None else unhex(str(v))) for k, v in main
    ]
    child_items = [
        bytes_(unhex(str(ck)))
        + vec(
            [
                bytes_(unhex(str(k))) + option_bytes(None if v is None else unhex(str(v)))
                for k, v in kvs
            ]
        )
        for ck, kvs in child
    ]
    return vec(main_items) + vec(child_items)


def twox128(data: bytes) -> bytes:
    return xxhash.xxh64_digest(data, seed=0)[::-1] + xxhash.xxh64_digest(data, seed=1)[::-1]


def plain_storage_key(pallet: str, item: str) -> str:
    return "0x" + (twox128(pallet.encode()) + twox128(item.encode())).hex()


def read_bytes(data: bytes, offset: int = 0) -> tuple[bytes, int]:
    """Decode a SCALE ``Vec<u8>`` at ``offset``; return ``(bytes, new offset)``."""
    length, start = read_compact(data, offset)
    end = start + length
    if end > len(data):
        raise ValueError(f"Vec<u8> of {length} bytes runs past the input")
    return data[start:end], end


def header_number(header: bytes) -> int:
    """The ``number`` of a SCALE ``Header`` (it follows the 32-byte parent hash)."""
    return read_compact(header, 32)[0]


def twox64_concat_u32(value: int) -> bytes:
    encoded = value.to_bytes(4, "little")
    return xxhash.xxh64_digest(encoded, seed=0)[::-1] + encoded


def paras_heads_key(para_id: int) -> str:
    """The relay chain's ``Paras.Heads(para_id)`` storage key (Twox64Concat u32)."""
    return plain_storage_key("Paras", "Heads") + twox64_concat_u32(para_id).hex()


def relay_parent_number(validation_data: bytes) -> int:
    """``relay_parent_number`` of a SCALE ``PersistedValidationData{parent_head Bytes,
    relay_parent_number u32, relay_parent_storage_root H256, max_pov_size u32}``."""
    _, offset = read_bytes(validation_data)
    if offset + 4 > len(validation_data):
        raise ValueError("PersistedValidationData too short")
    return int.from_bytes(validation_data[offset : offset + 4], "little")
