"""Deterministic sr25519 accounts from the one master mnemonic.

Every account poolkeeper signs with is a hard derivation of the operator's master
mnemonic, so the inventory holds only labels and public addresses and losing the
state directory loses no key. The scheme (documented in docs/accounts.md) is the
Substrate secret URI ``<mnemonic>//poolkeeper//<label>``, each ``//``-separated part
of the label a further hard junction; any Substrate wallet given that URI finds the
same account.

This module speaks to the sr25519 and BIP39 bindings directly instead of through
substrate-interface: only ``poolkeeper.chain`` may import that library.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, NoReturn

import bip39
import sr25519

from poolkeeper.errors import DerivationError
from poolkeeper.keys._redact import register_secret_bytes
from poolkeeper.keys._secret import Mnemonic
from poolkeeper.model.scale import compact
from poolkeeper.model.ss58 import KHALA_PREFIX, encode_address

ROOT_JUNCTION = "poolkeeper"
"""The first hard junction below the mnemonic; keeps poolkeeper's accounts apart from others."""

_JUNCTION_ID_LEN = 32
_U64_MAX = 2**64 - 1
_ASCII_DIGITS = re.compile(r"[0-9]+")


def derivation_junctions(label: str) -> tuple[str, ...]:
    """The hard junctions of an account label, below the mnemonic: ``("poolkeeper", *parts)``.

    Raises ``DerivationError`` for a label Substrate could not read back from a URI:
    empty, an empty part (``a////b``), a single ``/`` (a soft junction), or whitespace
    at either end of a part.
    """
    problem = derivation_label_problem(label)
    if problem:
        raise DerivationError(f"derivation label {label!r}: {problem}")
    return (ROOT_JUNCTION, *label.split("//"))


def derivation_label_problem(label: str) -> str | None:
    """Why ``label`` is not a usable derivation label, or ``None`` when it is."""
    if not label:
        return "is empty (write e.g. 'operator//pool-a')"
    for part in label.split("//"):
        if not part:
            return "has an empty junction (each '//' must separate two non-empty names)"
        if "/" in part:
            return "contains a single '/' (soft junctions are not used; separate with '//')"
        if part != part.strip() or any(c in part for c in "\r\n\t"):
            return "has whitespace around a junction name or a control character"
        if _ASCII_DIGITS.fullmatch(part) and int(part) > _U64_MAX:
            return f"numeric junction {part} does not fit in 64 bits"
    return None


def derivation_path(label: str) -> str:
    """The path part of the secret URI for ``label``: ``//poolkeeper//<label>``."""
    return "".join(f"//{j}" for j in derivation_junctions(label))


def junction_chain_code(junction: str) -> bytes:
    """The 32-byte chain code of one junction, encoded as Substrate's ``DeriveJunction`` does.

    A junction that is an unsigned decimal fitting in u64 is SCALE ``u64`` (8 bytes LE);
    anything else is a SCALE string (compact length + UTF-8). Encodings longer than 32
    bytes are replaced by their blake2b-256 hash; shorter ones are zero-padded.
    """
    if _ASCII_DIGITS.fullmatch(junction) and int(junction) <= _U64_MAX:
        encoded = int(junction).to_bytes(8, "little")
    else:
        raw = junction.encode("utf-8")
        encoded = compact(len(raw)) + raw
    if len(encoded) > _JUNCTION_ID_LEN:
        return hashlib.blake2b(encoded, digest_size=32).digest()
    return encoded.ljust(_JUNCTION_ID_LEN, b"\x00")


class DerivedKey:
    """An sr25519 keypair derived for one account. Signs; never shows its private half."""

    __slots__ = ("_private", "_public", "label", "ss58_prefix")
    _private: bytes
    _public: bytes
    label: str
    ss58_prefix: int

    def __init__(self, label: str, public: bytes, private: bytes, ss58_prefix: int) -> None:
        for name, value in (
            ("_private", private),
            ("_public", public),
            ("label", label),
            ("ss58_prefix", ss58_prefix),
        ):
            object.__setattr__(self, name, value)

    @property
    def public_key(self) -> bytes:
        """The 32-byte sr25519 public key (the account id)."""
        return self._public

    @property
    def address(self) -> str:
        """The SS58 address with this key's network prefix."""
        return encode_address(self._public, self.ss58_prefix)

    def sign(self, payload: bytes) -> bytes:
        """A 64-byte sr25519 signature of ``payload`` (signing context ``substrate``).

        Extrinsic payloads longer than 256 bytes must be hashed (blake2b-256) by the
        caller first, as Substrate requires; this signs exactly the bytes given.
        """
        return bytes(sr25519.sign((self._public, self._private), bytes(payload)))

    def verify(self, payload: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's signature of ``payload``."""
        return bool(sr25519.verify(bytes(signature), bytes(payload), self._public))

    def __repr__(self) -> str:
        return f"DerivedKey(label={self.label!r}, address={self.address!r})"

    __str__ = __repr__

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("DerivedKey is immutable")

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError("DerivedKey cannot be pickled or copied")

    def __reduce__(self) -> NoReturn:
        raise TypeError("DerivedKey cannot be pickled or copied")

    def __getstate__(self) -> NoReturn:
        raise TypeError("DerivedKey cannot be pickled or copied")


def _master_pair(mnemonic: Mnemonic) -> tuple[bytes, bytes]:
    mini_secret = bytes(bip39.bip39_to_mini_secret(mnemonic.reveal(), "", "en"))
    register_secret_bytes(mini_secret)
    public, private = (bytes(x) for x in sr25519.pair_from_seed(mini_secret))
    register_secret_bytes(private)
    return public, private


def _derive_from(master: tuple[bytes, bytes], label: str, ss58_prefix: int) -> DerivedKey:
    public, private = master
    for junction in derivation_junctions(label):
        _, public, private = (
            bytes(x)
            for x in sr25519.hard_derive_keypair(
                (junction_chain_code(junction), public, private), b""
            )
        )
    # The nonce half of an sr25519 private key is random per derivation: mask both halves.
    register_secret_bytes(private)
    register_secret_bytes(private[:32])
    return DerivedKey(label, public, private, ss58_prefix)


def derive_key(mnemonic: Mnemonic, label: str, ss58_prefix: int = KHALA_PREFIX) -> DerivedKey:
    """The key of the account with derivation ``label``: ``<mnemonic>//poolkeeper//<label>``."""
    derivation_junctions(label)
    return _derive_from(_master_pair(mnemonic), label, ss58_prefix)


def derive_keys(
    mnemonic: Mnemonic, labels: list[str] | tuple[str, ...], ss58_prefix: int = KHALA_PREFIX
) -> dict[str, DerivedKey]:
    """Keys for many labels, stretching the mnemonic (PBKDF2) only once."""
    for label in labels:
        derivation_junctions(label)
    master = _master_pair(mnemonic)
    return {label: _derive_from(master, label, ss58_prefix) for label in labels}


def derive_address(mnemonic: Mnemonic, label: str, ss58_prefix: int = KHALA_PREFIX) -> str:
    """The SS58 address of the account with derivation ``label``."""
    return derive_key(mnemonic, label, ss58_prefix).address
