"""Workers from a spreadsheet: ``name,endpoint,pool|pid,stake[,state]`` rows → a draft.

A fleet kept in a spreadsheet (or exported from any tool) comes in without writing YAML
by hand. Every problem names ``file:line`` and what would be right. The third column
is a pool's name or its on-chain pid: names and pids are resolved against the
inventory already in ``--into`` when there is one; otherwise pids make new pools owned
by ``--owner`` (signed by ``--operator`` as its proxy when given).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from poolkeeper.importers._draft import Draft, ImportFailed, KeyNeeded, env_name
from poolkeeper.model.amounts import PLANCKS_PER_PHA, AmountError, format_pha, parse_amount
from poolkeeper.model.desired import Desired, WorkerState
from poolkeeper.model.ss58 import AddressError, check_address

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_COLUMNS = "name,endpoint,pool|pid,stake[,state]"


@dataclass(frozen=True)
class PoolOwners:
    """Who owns (and who signs for) pools the CSV creates by pid, in a fresh inventory."""

    owner: str | None = None
    operator: str | None = None


def read_csv(
    path: Path,
    *,
    existing: Desired | None,
    owners: PoolOwners,
    settings: dict[str, Any] | None = None,
) -> Draft:
    """The workers (and, without an ``existing`` inventory, pools and accounts) of ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ImportFailed(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise ImportFailed(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise ImportFailed(f"{path}: cannot be read: {exc.strerror}") from None
    draft = Draft(settings={} if existing else dict(settings or {}))
    problems: list[str] = []
    names: dict[str, int] = {}
    endpoints: dict[str, int] = {}
    new_pools: dict[int, str] = {}
    first = True
    for line, row in _rows(text):
        where = f"{path}:{line}"
        if first and row and row[0].strip().lower() == "name":
            first = False
            continue  # a header row
        first = False
        try:
            entry = _row(row, where, existing, new_pools)
        except ImportFailed as error:
            problems.append(str(error))
            continue
        for key, seen in (("name", names), ("endpoint", endpoints)):
            value = str(entry[key]).rstrip("/").lower() if key == "endpoint" else entry[key]
            if value in seen:
                problems.append(
                    f"{where}: duplicate {key} {entry[key]!r}: also at line {seen[value]}"
                )
            seen.setdefault(value, line)
        draft.workers.append(entry)
    if existing is None and new_pools:
        problems.extend(_owner_problems(owners, path))
    if problems:
        raise ImportFailed("\n".join(problems))
    if not draft.workers:
        raise ImportFailed(f"{path}: no worker rows ({_COLUMNS})")
    if existing is None:
        _fresh_pools(draft, new_pools, owners)
    return draft


def _rows(text: str) -> list[tuple[int, list[str]]]:
    out: list[tuple[int, list[str]]] = []
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        row = next(csv.reader(io.StringIO(raw)))
        out.append((number, [cell.strip() for cell in row]))
    return out


def _row(
    row: list[str], where: str, existing: Desired | None, new_pools: dict[int, str]
) -> dict[str, Any]:
    if len(row) not in (4, 5):
        raise ImportFailed(f"{where}: expected {_COLUMNS}, got {len(row)} fields")
    name, endpoint, pool_ref, stake_text = row[:4]
    state = (row[4] if len(row) == 5 else "") or "computing"
    if not _NAME.fullmatch(name):
        raise ImportFailed(
            f"{where}: worker name {name!r} may hold only letters, digits, '.', '_' and '-' "
            f"(≤ 64, starting with a letter or digit)"
        )
    if not re.match(r"https?://[^/\s]+", endpoint):
        raise ImportFailed(
            f"{where}: endpoint {endpoint!r} must start with http:// or https:// and a host"
        )
    if state not in {s.value for s in WorkerState}:
        valid = ", ".join(s.value for s in WorkerState)
        raise ImportFailed(f"{where}: state {state!r} is not one of {valid}")
    entry: dict[str, Any] = {"name": name, "endpoint": endpoint}
    if pool_ref:
        entry["pool"] = _pool(pool_ref, where, existing, new_pools)
    elif state != "sync_only":
        raise ImportFailed(f"{where}: no pool (only sync_only workers may leave it empty)")
    if stake_text:
        try:
            stake = parse_amount(stake_text)
        except AmountError as error:
            raise ImportFailed(f"{where}: stake: {error}") from None
        if stake < PLANCKS_PER_PHA:
            raise ImportFailed(
                f"{where}: stake {format_pha(stake)} is below the minimum of 1 PHA (a bare "
                f"number counts plancks; write e.g. '5000 PHA')"
            )
        entry["stake"] = format_pha(stake)
    elif state == "computing" and not _pool_default(existing, entry.get("pool")):
        raise ImportFailed(f"{where}: a computing worker needs a stake (e.g. '5000 PHA')")
    entry["state"] = state
    return entry


def _pool(ref: str, where: str, existing: Desired | None, new_pools: dict[int, str]) -> str:
    pid = int(ref) if ref.isdigit() else None
    if existing is not None:
        for pool in existing.pools:
            if (pid is not None and pool.pid == pid) or pool.name == ref:
                return pool.name
        what = f"pid {pid}" if pid is not None else f"named {ref!r}"
        raise ImportFailed(f"{where}: the inventory has no pool {what}")
    if pid is None:
        raise ImportFailed(
            f"{where}: pool {ref!r} is given by name but there is no inventory to find it in; "
            f"write its pid, or import into an inventory that declares it"
        )
    return new_pools.setdefault(pid, f"pool-{pid}")


def _pool_default(existing: Desired | None, pool: str | None) -> bool:
    if existing is None or pool is None:
        return False
    spec = existing.pools_by_name.get(pool)
    return spec is not None and spec.default_stake is not None


def _owner_problems(owners: PoolOwners, path: Path) -> list[str]:
    problems = []
    if owners.owner is None:
        problems.append(
            f"{path}: pools are given by pid and no inventory is in --into: name their owner "
            f"with --owner ADDRESS (and --operator ADDRESS when a proxy signs)"
        )
    for flag, address in (("--owner", owners.owner), ("--operator", owners.operator)):
        if address is not None:
            try:
                check_address(address, 30)
            except AddressError as error:
                problems.append(f"{flag}: {error}")
    return problems


def _fresh_pools(draft: Draft, new_pools: dict[int, str], owners: PoolOwners) -> None:
    assert owners.owner is not None
    owner: dict[str, Any] = {"name": "owner", "role": "owner", "address": owners.owner}
    signer = "owner"
    draft.accounts.append(owner)
    if owners.operator is not None and owners.operator != owners.owner:
        signer = "operator"
        draft.accounts.append({"name": "operator", "role": "operator", "address": owners.operator})
    draft.accounts[-1]["key"] = {"env": env_name(signer)}
    draft.keys.append(
        KeyNeeded(
            account=signer,
            address=draft.accounts[-1]["address"],
            env=env_name(signer),
            why="signs for the pools" + (" as the owner's proxy" if signer == "operator" else ""),
        )
    )
    for pid, name in sorted(new_pools.items()):
        pool: dict[str, Any] = {"name": name, "pid": pid, "owner": "owner"}
        if signer == "operator":
            pool["operator"] = "operator"
        draft.pools.append(pool)
