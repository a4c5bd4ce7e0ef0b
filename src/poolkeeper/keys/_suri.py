"""Signing keys from an existing secret: a Substrate secret URI, a mnemonic or a raw seed.

Operators coming from other tools (PRB's ``SetPoolOperator``) already have operator and
proxy keys that are not derived from poolkeeper's master secret. This module turns such
a secret into the same signing type derived accounts use (``DerivedKey``), following
Substrate's ``Pair::from_string`` rules, so the executor signs with either alike.

Accepted forms (the secret is never echoed in an error):

- ``<mnemonic>[//hard][/soft][///password]`` (BIP39 English);
- ``//Alice`` style: the Substrate development phrase with junctions;
- ``0x`` + 64 hex digits: a 32-byte mini secret seed, junctions allowed after it;
- 128 hex digits with or without ``0x``: a 64-byte expanded sr25519 secret key in
  ed25519 byte order, as PRB's ``account_type: SecretKey`` takes it.
"""

from __future__ import annotations

import re

import bip39
import sr25519

from poolkeeper.errors import SecretError
from poolkeeper.keys._derive import DerivedKey, junction_chain_code
from poolkeeper.keys._redact import register_secret_bytes
from poolkeeper.keys._secret import Secret

DEV_PHRASE = "bottom drive obey lake curtain smoke basket hold race lonely fit walk"
"""Substrate's development phrase: the phrase of ``//Alice`` and friends."""

_SURI = re.compile(r"^(?P<phrase>[^/]*)(?P<path>(?://?[^/]+)*)(?:///(?P<password>.*))?$", re.S)
_JUNCTION = re.compile(r"//?[^/]+")
_HEX = re.compile(r"[0-9a-fA-F]*")


def key_from_secret(secret: Secret, *, origin: str, label: str, ss58_prefix: int) -> DerivedKey:
    """The sr25519 key ``secret`` stands for; ``origin`` names the source in errors."""
    text = secret.reveal().strip()
    expanded = _expanded_secret_key(text)
    if expanded is not None:
        try:
            public, private = (bytes(x) for x in sr25519.pair_from_ed25519_secret_key(expanded))
        except Exception:  # the binding raises its own error types; never show the value
            raise SecretError(f"{origin}: not a valid 64-byte sr25519 secret key") from None
        register_secret_bytes(private)
        return DerivedKey(label, public, private, ss58_prefix)
    match = _SURI.match(text)
    if match is None:
        raise SecretError(f"{origin}: not a secret URI, a mnemonic or a 0x seed")
    phrase = match["phrase"].strip() or DEV_PHRASE
    password = match["password"]
    public, private = _root_pair(phrase, password, origin)
    for part in _JUNCTION.findall(match["path"] or ""):
        hard = part.startswith("//")
        code = junction_chain_code(part[2:] if hard else part[1:])
        derive = sr25519.hard_derive_keypair if hard else sr25519.derive_keypair
        _, public, private = (bytes(x) for x in derive((code, public, private), b""))
        register_secret_bytes(private)
    return DerivedKey(label, public, private, ss58_prefix)


def _expanded_secret_key(text: str) -> bytes | None:
    raw = text.removeprefix("0x")
    if len(raw) == 128 and _HEX.fullmatch(raw):
        value = bytes.fromhex(raw)
        register_secret_bytes(value)
        return value
    return None


def _root_pair(phrase: str, password: str | None, origin: str) -> tuple[bytes, bytes]:
    if phrase.startswith("0x"):
        raw = phrase[2:]
        if len(raw) != 64 or not _HEX.fullmatch(raw):
            raise SecretError(
                f"{origin}: a 0x seed must be 32 bytes (64 hex digits), or a 64-byte secret "
                f"key (128 hex digits)"
            )
        if password is not None:
            raise SecretError(f"{origin}: a hex seed takes no ///password")
        seed = bytes.fromhex(raw)
    else:
        words = " ".join(phrase.split())
        if not bip39.bip39_validate(words):
            raise SecretError(
                f"{origin}: not a valid BIP39 English mnemonic ({len(words.split())} words), "
                f"nor a 0x seed or a secret URI"
            )
        seed = bytes(bip39.bip39_to_mini_secret(words, password or "", "en"))
    register_secret_bytes(seed)
    public, private = (bytes(x) for x in sr25519.pair_from_seed(seed))
    register_secret_bytes(private)
    return public, private
