"""The key ring: every inventory account's signer and address, derived once per process.

It lives with the other key code (not in the reconcile loop) so that every command that
needs addresses or signers (``accounts``, ``devnet``, ``list``, the loop) uses the same
rule: a derivation label and the master secret, or the account's own key (``key:``).
Its signers satisfy ``poolkeeper.chain.ports.Signer`` structurally.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from poolkeeper.errors import SecretError
from poolkeeper.keys._derive import DerivedKey, derive_keys
from poolkeeper.keys._own import own_keys
from poolkeeper.keys._secret import Mnemonic
from poolkeeper.model.desired import Desired


class KeyRing:
    """Signers for the inventory's accounts, derived from the master secret once."""

    def __init__(
        self,
        desired: Desired,
        mnemonic: Mnemonic | None,
        *,
        base_dir: Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._mnemonic = mnemonic
        self._base_dir = base_dir
        self._environ = environ
        self._keys: dict[str, DerivedKey] = {}
        self._addresses: dict[str, str] = {}
        self._key_problems: dict[str, str] = {}
        self.load(desired)

    @property
    def secret_loaded(self) -> bool:
        """Whether the master secret was provided."""
        return self._mnemonic is not None

    def load(self, desired: Desired) -> None:
        """(Re)derive for the accounts of ``desired`` (after an inventory reload)."""
        labels = [a.derivation for a in desired.accounts if a.derivation]
        prefix = desired.settings.ss58_prefix
        mnemonic = self._mnemonic
        keys = derive_keys(mnemonic, labels, prefix) if (mnemonic and labels) else {}
        self._keys = {}
        self._addresses = {}
        for account in desired.accounts:
            key = keys.get(account.derivation) if account.derivation else None
            if key is not None:
                self._keys[account.name] = key
            address = account.address or (key.address if key else None)
            if address:
                self._addresses[account.name] = address
        own = own_keys(desired, base_dir=self._base_dir, environ=self._environ)
        self._keys.update(own.keys)
        self._key_problems = own.problems

    def problems(self) -> dict[str, str]:
        """Accounts whose own key (``key:``) could not be loaded or does not match, and why."""
        return dict(self._key_problems)

    def signer(self, account: str) -> DerivedKey:
        key = self._keys.get(account)
        if key is None and account in self._key_problems:
            raise SecretError(self._key_problems[account])
        if key is None:
            raise SecretError(
                f"account {account!r} cannot sign: it has no derivation label, "
                "or no master secret was provided"
            )
        return key

    def address_or_none(self, account: str) -> str | None:
        """The account's address when known (declared or derived)."""
        return self._addresses.get(account)

    def addresses(self) -> dict[str, str]:
        """Every known address by account name (declared or derived)."""
        return dict(self._addresses)

    def has(self, account: str) -> bool:
        """Whether the account's address is known (declared or derived)."""
        return account in self._addresses

    def address(self, account: str) -> str:
        try:
            return self._addresses[account]
        except KeyError:
            raise SecretError(
                f"account {account!r} has no address: run `poolkeeper accounts generate`"
            ) from None
