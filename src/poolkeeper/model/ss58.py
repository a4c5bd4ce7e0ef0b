"""SS58 addresses: decode, check and encode without an I/O library.

The inventory holds public addresses only; a typo in one must be caught when the
inventory loads (bad checksum, wrong network prefix), long before a transaction.
"""

from __future__ import annotations

import hashlib

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {c: i for i, c in enumerate(_ALPHABET)}
_PREFIX = b"SS58PRE"

KHALA_PREFIX = 30
PHALA_PREFIX = 30
SUBSTRATE_GENERIC_PREFIX = 42


class AddressError(ValueError):
    """An SS58 address that is malformed, has a bad checksum or the wrong prefix."""


def _b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        if char not in _INDEX:
            raise AddressError(f"character {char!r} is not base58")
        number = number * 58 + _INDEX[char]
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    leading = len(text) - len(text.lstrip("1"))
    return b"\x00" * leading + raw


def _b58encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = []
    while number:
        number, rem = divmod(number, 58)
        out.append(_ALPHABET[rem])
    leading = len(data) - len(data.lstrip(b"\x00"))
    return "1" * leading + "".join(reversed(out))


def _checksum(payload: bytes) -> bytes:
    return hashlib.blake2b(_PREFIX + payload, digest_size=64).digest()[:2]


def decode_address(address: str) -> tuple[int, bytes]:
    """Return ``(network_prefix, 32-byte account id)`` or raise ``AddressError``."""
    if not address:
        raise AddressError("address is empty")
    data = _b58decode(address)
    if len(data) < 3:
        raise AddressError("address is too short")
    first = data[0]
    if first < 64:
        prefix, offset = first, 1
    elif first < 128:
        second = data[1]
        prefix = ((first & 0b0011_1111) << 2) | (second >> 6) | ((second & 0b0011_1111) << 8)
        offset = 2
    else:
        raise AddressError("address has a reserved prefix byte")
    body = data[offset:]
    if len(body) != 34:
        raise AddressError(
            f"address decodes to {len(body) - 2} account bytes, expected 32 (not an account)"
        )
    account, check = body[:32], body[32:]
    if _checksum(data[: offset + 32]) != check:
        raise AddressError("address checksum does not match (a typo?)")
    return prefix, account


def encode_address(account_id: bytes, prefix: int = KHALA_PREFIX) -> str:
    """Encode a 32-byte account id as an SS58 address with the given network prefix."""
    if len(account_id) != 32:
        raise AddressError(f"account id must be 32 bytes, got {len(account_id)}")
    if prefix < 64:
        head = bytes([prefix])
    elif prefix < 16384:
        head = bytes(
            [((prefix & 0b1111_1100) >> 2) | 0b0100_0000, (prefix >> 8) | ((prefix & 0b11) << 6)]
        )
    else:
        raise AddressError(f"prefix {prefix} is out of range")
    payload = head + account_id
    return _b58encode(payload + _checksum(payload))


def check_address(address: str, expected_prefix: int) -> bytes:
    """Decode ``address`` and insist on ``expected_prefix``; return the account id."""
    prefix, account = decode_address(address)
    if prefix != expected_prefix:
        raise AddressError(
            f"address is for network prefix {prefix}, expected {expected_prefix} "
            f"(re-encode it for this network)"
        )
    return account
