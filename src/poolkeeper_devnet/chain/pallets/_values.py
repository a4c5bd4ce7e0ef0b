"""Conversions between scalecodec "value shape" and the Python values the Phala pallets keep.

The engine hands call arguments over in the shape scalecodec decodes them to, and that
shape is loose: ``Vec<u8>`` arrives as text when its bytes happen to be valid UTF-8 and as
``"0x.."`` hex otherwise, an AccountId may be hex or SS58, an enum is ``{"Variant": value}``
or a bare ``"Variant"``. These helpers accept every such form, so pallet code can state
what it needs (bytes, a 32-byte key, an int) without caring how it arrived.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scalecodec.utils.ss58 import ss58_decode

from poolkeeper_devnet.chain.pallets.base import AccountHex, BadOrigin, DispatchError


def to_bytes(value: Any) -> bytes:
    """Bytes from bytes, a list of ints, ``"0x.."`` hex or text (scalecodec's ``Bytes`` rule)."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, list | tuple):
        return bytes(value)
    if isinstance(value, str):
        if value[:2] == "0x":
            return bytes.fromhex(value[2:])
        return value.encode()
    raise ValueError(f"not a byte string: {type(value).__name__}")


def key32(value: Any) -> AccountHex:
    """A 32-byte AccountId or sr25519 ``Public`` as ``"0x"`` + 64 lowercase hex digits."""
    if isinstance(value, Mapping) and len(value) == 1 and "Id" in value:
        value = value["Id"]  # MultiAddress::Id
    if isinstance(value, str) and value[:2] != "0x":
        value = "0x" + ss58_decode(value)
    raw = to_bytes(value)
    if len(raw) != 32:
        raise ValueError(f"expected 32 bytes, got {len(raw)}")
    return "0x" + raw.hex()


def to_hex(raw: bytes) -> str:
    return "0x" + raw.hex()


def variant(value: Any) -> tuple[str, Any]:
    """``("Variant", inner)`` from ``{"Variant": inner}`` or ``"Variant"`` (inner None)."""
    if isinstance(value, str):
        return value, None
    if isinstance(value, Mapping) and len(value) == 1:
        ((name, inner),) = value.items()
        return str(name), inner
    raise ValueError(f"not an enum value: {value!r}")


def to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("bool is not an integer argument")
    return int(value)


def ensure_signed(signer: AccountHex | None) -> AccountHex:
    """The signing account, or ``BadOrigin`` for Root/unsigned origins."""
    if signer is None:
        raise BadOrigin()
    return signer


def ensure_root(signer: AccountHex | None) -> None:
    if signer is not None:
        raise BadOrigin()


class CallNotSupported(DispatchError):
    """A call the real pallet has but the devnet does not simulate."""

    def __init__(self, pallet: str, call: str) -> None:
        super().__init__(pallet, "CallNotSupported")
        self.call = call


def now_seconds(timestamp_ms: int) -> int:
    return timestamp_ms // 1000
