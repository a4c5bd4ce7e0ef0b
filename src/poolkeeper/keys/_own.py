"""The accounts that sign with their own key (``key: {env|file}``), loaded together.

An account brought from another tool keeps its existing key instead of one derived from
the master secret. Loading them in one place lets every front end (apply, run, the TUI)
sign with them alike and report, per account, a key that is missing, unsafe, unreadable
or not the declared address, without ever showing the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from poolkeeper.errors import SecretError
from poolkeeper.keys._derive import DerivedKey
from poolkeeper.keys._sources import load_account_key
from poolkeeper.keys._suri import key_from_secret
from poolkeeper.model.desired import Desired
from poolkeeper.model.ss58 import AddressError, decode_address


@dataclass
class OwnKeys:
    """Loaded keys by account name, and why the others could not be loaded."""

    keys: dict[str, DerivedKey] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)


def own_keys(
    desired: Desired,
    *,
    base_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> OwnKeys:
    """Every ``key:`` account's signing key, checked against its declared address."""
    out = OwnKeys()
    prefix = desired.settings.ss58_prefix
    for account in desired.accounts:
        if account.key is None:
            continue
        try:
            secret, origin = load_account_key(
                account.name, account.key, base_dir=base_dir, environ=environ
            )
            key = key_from_secret(
                secret, origin=origin, label=f"key:{account.name}", ss58_prefix=prefix
            )
        except SecretError as error:
            out.problems[account.name] = str(error)
            continue
        if account.address is not None and not _same_account(account.address, key.public_key):
            out.problems[account.name] = (
                f"{origin} is the key of {key.address}, not of the declared address "
                f"{account.address} (wrong key, or wrong address in the inventory)"
            )
            continue
        out.keys[account.name] = key
    return out


def _same_account(address: str, public_key: bytes) -> bool:
    try:
        return decode_address(address)[1] == public_key
    except AddressError:
        return False
