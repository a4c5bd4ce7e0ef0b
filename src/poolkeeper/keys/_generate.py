"""``accounts generate``: derive every declared account and write missing addresses.

The addresses the inventory declares must be the ones the master secret derives,
or poolkeeper would watch one account and sign with another. This checks the
declared ones, derives the missing ones, and writes them all-or-nothing: a single
mismatch, bad label or unlocatable account leaves every file untouched.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from poolkeeper.errors import DerivationError
from poolkeeper.keys._derive import DerivedKey, derivation_label_problem, derive_keys
from poolkeeper.keys._inventory_edit import (
    AccountSite,
    find_account_sites,
    plan_address_edits,
    write_files_atomically,
)
from poolkeeper.keys._secret import Mnemonic
from poolkeeper.model.desired import AccountSpec
from poolkeeper.model.ss58 import KHALA_PREFIX, AddressError, decode_address


def inventory_files(root: Path) -> list[Path]:
    """The YAML files of an inventory, found as the loader finds them (no dot files or dirs)."""
    if root.is_file():
        return [root]
    found: list[Path] = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        found.extend(
            Path(directory, name)
            for name in files
            if not name.startswith(".") and name.endswith((".yaml", ".yml"))
        )
    return sorted(found)


@dataclass(frozen=True)
class AddressChange:
    """An address written (or to be written) for one account."""

    account: str
    derivation: str
    address: str
    file: Path
    line: int


@dataclass(frozen=True)
class GenerateResult:
    """What ``generate_addresses`` did: addresses written and addresses confirmed."""

    written: list[AddressChange] = field(default_factory=list)
    verified: list[str] = field(default_factory=list)
    """Accounts whose declared address matches their derivation."""


def _relative(root: Path, path: Path) -> str:
    base = root if root.is_dir() else root.parent
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return str(path)


def _site_of(
    spec: AccountSpec, root: Path, sites: list[AccountSite], problems: list[str]
) -> AccountSite | None:
    named = [s for s in sites if s.name == spec.name]
    if spec.source is not None:
        placed = [
            s
            for s in named
            if _relative(root, s.file) == spec.source.file and s.line == spec.source.line
        ]
        if len(placed) == 1:
            return placed[0]
    if len(named) == 1:
        return named[0]
    where = f"{spec.source}: " if spec.source else ""
    problems.append(
        f"{where}account {spec.name}: cannot locate its mapping in the inventory files "
        f"({len(named)} candidates); add the address by hand"
    )
    return None


def generate_addresses(
    root: Path,
    mnemonic: Mnemonic,
    accounts: Sequence[AccountSpec] | None = None,
    *,
    ss58_prefix: int = KHALA_PREFIX,
    write: bool = True,
) -> GenerateResult:
    """Check declared addresses of derived accounts and write the missing ones.

    ``accounts`` are the validated specs from the inventory loader (their ``source``
    says where each was written). Without them, the accounts are read from the files
    directly. Raises ``DerivationError`` listing every problem, having written nothing.
    """
    sites, problems = find_account_sites(inventory_files(root))
    if accounts is None:
        by_name: dict[str, AccountSite] = {}
        for site in sites:
            if site.name in by_name:
                problems.append(
                    f"{site}: account {site.name} is declared twice (also at {by_name[site.name]})"
                )
            by_name[site.name] = site
        derived = [
            (site.name, site.derivation, site.address, site)
            for site in sites
            if site.derivation is not None
        ]
    else:
        derived = []
        for spec in accounts:
            if spec.derivation is None:
                continue
            found = _site_of(spec, root, sites, problems)
            if found is not None:
                derived.append((spec.name, spec.derivation, spec.address, found))
    labels: dict[str, str] = {}
    for name, label, _, site in derived:
        problem = derivation_label_problem(label)
        if problem:
            problems.append(f"{site}: account {name}: derivation label {label!r} {problem}")
        elif label in labels:
            problems.append(
                f"{site}: account {name}: derivation label {label!r} is already used by "
                f"account {labels[label]} (two names for one key; give each account its own label)"
            )
        else:
            labels[label] = name
    if problems:
        raise DerivationError("\n".join(problems))
    keys = derive_keys(mnemonic, list(labels), ss58_prefix)
    result = GenerateResult()
    edits: list[tuple[AccountSite, str]] = []
    for name, label, declared, site in derived:
        key = keys[label]
        if declared is None:
            edits.append((site, key.address))
            result.written.append(AddressChange(name, label, key.address, site.file, site.line))
            continue
        try:
            _, account_id = decode_address(declared)
        except AddressError as exc:
            problems.append(
                f"{site.file}:{site.address_line}: account {name}: address {declared}: {exc}"
            )
            continue
        if account_id != key.public_key:
            problems.append(
                f"{site.file}:{site.address_line}: account {name}: address {declared} is not "
                f"the address of derivation {label!r} under this master secret "
                f"(derived {key.address}); fix the address or the label, or check that "
                f"the right master secret is configured"
            )
        else:
            result.verified.append(name)
    if problems:
        raise DerivationError("\n".join(problems))
    new_texts, problems = plan_address_edits(edits)
    if problems:
        raise DerivationError("\n".join(problems))
    if write:
        write_files_atomically(new_texts)
    return result


def account_keys(
    accounts: Sequence[AccountSpec], mnemonic: Mnemonic, ss58_prefix: int = KHALA_PREFIX
) -> dict[str, DerivedKey]:
    """The signing key of every account with a derivation, by account name.

    An account whose declared address is not its derived address gets no key: signing
    with it would act for an account the inventory does not describe. Every such
    problem is raised at once as ``DerivationError``.
    """
    problems: list[str] = []
    labelled = [a for a in accounts if a.derivation is not None]
    for account in labelled:
        problem = derivation_label_problem(account.derivation or "")
        if problem:
            where = f"{account.source}: " if account.source else ""
            problems.append(f"{where}account {account.name}: derivation label {problem}")
    if problems:
        raise DerivationError("\n".join(problems))
    keys = derive_keys(mnemonic, sorted({a.derivation or "" for a in labelled}), ss58_prefix)
    found: dict[str, DerivedKey] = {}
    for account in labelled:
        key = keys[account.derivation or ""]
        if account.address is not None:
            try:
                declared = decode_address(account.address)[1]
            except AddressError as exc:
                declared = None
                problems.append(f"account {account.name}: address {account.address}: {exc}")
            if declared is not None and declared != key.public_key:
                where = f"{account.source}: " if account.source else ""
                problems.append(
                    f"{where}account {account.name}: declared address {account.address} is not "
                    f"the derived address {key.address}; refusing to sign for it"
                )
                continue
        found[account.name] = key
    if problems:
        raise DerivationError("\n".join(problems))
    return found
