"""PRB v2 (``runtime-bridge``) ``local.db`` → an inventory draft.

PRB v2's lifecycle manager kept its pools and workers in a SQLite file (``local.db``,
written through sequelize; Phala-Network/runtime-bridge ``src/lifecycle/local_db``):

- table ``pools``: ``id`` (UUID), ``pid``, ``name``, ``proxiedAccountSs58`` (the owner
  when the operator signs as its proxy), ``encryptedOperator`` (the operator's keyring
  pair, encrypted with the PRB peer's own key), ``enabled``, ``syncOnly`` (later
  releases), ``createdAt``, ``updatedAt``;
- table ``workers``: ``id``, ``name``, ``endpoint``, ``stake`` (plancks as text),
  ``enabled``, ``syncOnly`` (later releases), ``poolId`` (the pool's ``id``; early
  releases had a ``pid`` column instead), ``createdAt``, ``updatedAt``.

The operator's key is the only secret in it, and its address is inside the encrypted
blob too. This importer never selects that column: each operator's address comes from
``--operator PID=ADDRESS`` or from the key the operator already exported under the
variable poolkeeper will read it from (used only to compute the address, as PRB v3's
``SetPoolOperator`` secret is). The signing account gets ``key: {env: ...}``.
The mapping of states is PRB v3's (docs/import.md): disabled → ``sync_only`` by default
or ``removed``; ``syncOnly`` → ``sync_only``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from poolkeeper.errors import SecretError
from poolkeeper.importers._draft import Draft, ImportFailed, KeyNeeded, env_name, safe_name
from poolkeeper.importers._prb3 import (
    PREFIX,
    DisabledAs,
    _Pool,
    _Records,
    _Worker,
    _worker_entry,
)
from poolkeeper.keys import Secret, key_from_secret
from poolkeeper.model.ss58 import AddressError, decode_address, encode_address

POOL_COLUMNS = ("id", "pid", "name", "proxiedAccountSs58", "enabled")
WORKER_COLUMNS = ("name", "endpoint", "stake", "enabled")
KEY_HINT = (
    "<the mnemonic (or SURI) of the pool operator, as given to PRB v2 when the pool was "
    "added; PRB v2 keeps it encrypted in local.db, poolkeeper does not read it>"
)


def read_prb2(
    path: Path,
    *,
    operators: Mapping[int, str] | None = None,
    environ: Mapping[str, str] | None = None,
    disabled: DisabledAs = "sync_only",
    settings: dict[str, Any] | None = None,
) -> Draft:
    """The inventory PRB v2's ``local.db`` at ``path`` describes. ``operators`` gives
    each pool's operator address by pid; without one, the key exported in ``environ``
    under the account's variable gives it."""
    with _database(path) as db:
        pools = _read_pools(db, path)
        workers = _read_workers(db, path, pools)
    if not pools:
        raise ImportFailed(f"{path}: no pool in table pools (is this PRB v2's local.db?)")
    records = _Records(pools={p.pid: p for p, _ in pools.values()}, workers=workers)
    owners = {p.pid: owner for p, owner in pools.values()}
    signers = _signers(records, owners, operators or {}, environ or {})
    return _draft(records, owners, signers, disabled, settings)


@contextmanager
def _database(path: Path) -> Iterator[sqlite3.Connection]:
    if not path.is_file():
        raise ImportFailed(f"{path}: no such file")
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise ImportFailed(f"{path}: cannot be opened: {exc}") from None
    with closing(db):
        try:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError:
            raise ImportFailed(
                f"{path}: not a readable SQLite database. PRB v2 releases that encrypted "
                "local.db with SQLCipher need it exported to plain SQLite first (sqlcipher "
                "with PRB's key: ATTACH a plain database and SELECT sqlcipher_export)"
            ) from None
        missing = {"pools", "workers"} - tables
        if missing:
            raise ImportFailed(
                f"{path}: no table {', '.join(sorted(missing))} (PRB v2's local.db has tables "
                f"pools and workers; found: {', '.join(sorted(tables)) or 'none'})"
            )
        yield db


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def _require(db: sqlite3.Connection, path: Path, table: str, wanted: tuple[str, ...]) -> set[str]:
    have = _columns(db, table)
    missing = [c for c in wanted if c not in have]
    if missing:
        raise ImportFailed(
            f"{path}: table {table} has no column {', '.join(missing)} (not PRB v2's schema)"
        )
    return have


def _read_pools(db: sqlite3.Connection, path: Path) -> dict[str, tuple[_Pool, str | None]]:
    """By row id: the pool and the proxied owner's address (None: the operator owns it)."""
    have = _require(db, path, "pools", POOL_COLUMNS)
    sync_only = ', "syncOnly"' if "syncOnly" in have else ", 0"
    query = (
        'SELECT "id", "pid", "name", "proxiedAccountSs58", "enabled"'
        f"{sync_only} FROM pools ORDER BY pid"
    )
    pools: dict[str, tuple[_Pool, str | None]] = {}
    for row_id, pid, name, proxied, enabled, only in db.execute(query):
        where = f"{path}: pools row pid {pid!r}"
        if isinstance(pid, bool) or not isinstance(pid, int) or pid < 0:
            raise ImportFailed(f"{where}: pid is not a pool id (an integer ≥ 0)")
        if not isinstance(name, str) or not name.strip():
            raise ImportFailed(f"{where}: no name")
        owner = None
        if proxied not in (None, ""):
            try:
                owner = encode_address(decode_address(str(proxied))[1], PREFIX)
            except AddressError as error:
                raise ImportFailed(f"{where}: proxiedAccountSs58: {error}") from None
        pool = _Pool(pid, name.strip(), bool(enabled), bool(only), where)
        pools[str(row_id)] = (pool, owner)
    return pools


def _read_workers(
    db: sqlite3.Connection, path: Path, pools: dict[str, tuple[_Pool, str | None]]
) -> list[_Worker]:
    have = _require(db, path, "workers", WORKER_COLUMNS)
    if "poolId" in have:
        link = '"poolId"'
    elif "pid" in have:
        link = '"pid"'
    else:
        raise ImportFailed(f"{path}: table workers has neither poolId nor pid (not PRB v2's)")
    sync_only = ', "syncOnly"' if "syncOnly" in have else ", 0"
    query = f'SELECT "name", "endpoint", "stake", "enabled", {link}{sync_only} FROM workers'
    by_pid = {pool.pid: pool for pool, _ in pools.values()}
    workers: list[_Worker] = []
    for name, endpoint, stake, enabled, pool_ref, only in db.execute(query + " ORDER BY name"):
        where = f"{path}: workers row {name!r}"
        pool = pools[str(pool_ref)][0] if str(pool_ref) in pools else by_pid.get(pool_ref)
        if pool is None:
            raise ImportFailed(f"{where}: its pool ({pool_ref!r}) is not in table pools")
        if not isinstance(name, str) or not name.strip():
            raise ImportFailed(f"{where}: no name")
        if not isinstance(endpoint, str) or not endpoint.strip():
            raise ImportFailed(f"{where}: no endpoint")
        text = str(stake).strip()
        if not text.isdigit():
            raise ImportFailed(f"{where}: stake {stake!r} is not an amount of plancks")
        workers.append(
            _Worker(
                name=name.strip(),
                endpoint=endpoint.strip(),
                stake=int(text),
                pid=pool.pid,
                enabled=bool(enabled),
                sync_only=bool(only),
                gatekeeper=False,
                where=where,
            )
        )
    return workers


def _signers(
    records: _Records,
    owners: dict[int, str | None],
    operators: Mapping[int, str],
    environ: Mapping[str, str],
) -> dict[int, tuple[str, str]]:
    """By pid: the signing account's name (``operator-pid-N``, or ``owner-pid-N`` when it
    owns the pool) and its address, from ``--operator PID=ADDRESS`` or from the key
    already exported under that account's variable (used for the address only)."""
    found: dict[int, tuple[str, str]] = {}
    missing: list[str] = []
    for pid, pool in sorted(records.pools.items()):
        name = f"{'operator' if owners[pid] else 'owner'}-pid-{pid}"
        env = env_name(name)
        if pid in operators:
            try:
                address = encode_address(decode_address(operators[pid])[1], PREFIX)
            except AddressError as error:
                raise ImportFailed(f"--operator {pid}=...: {error}") from None
        elif environ.get(env, "").strip():
            try:
                key = key_from_secret(
                    Secret(environ[env]), origin=env, label="import", ss58_prefix=PREFIX
                )
            except SecretError as error:
                raise ImportFailed(str(error)) from None
            address = key.address
        else:
            missing.append(f"  pool {pool.name!r} (pid {pid}): --operator {pid}=<SS58> or {env}")
            continue
        found[pid] = (name, address)
    if missing:
        raise ImportFailed(
            "PRB v2 keeps each pool operator's key, address included, encrypted in local.db; "
            "poolkeeper does not read it. Give each operator's address (PRB v2's pool list "
            "shows it as the owner's ss58Phala) with --operator PID=ADDRESS, or export its "
            "key under the variable poolkeeper will read it from (used here only to compute "
            "the address, never written):\n" + "\n".join(missing)
        )
    return found


def _draft(
    records: _Records,
    owners: dict[int, str | None],
    signers: dict[int, tuple[str, str]],
    disabled: DisabledAs,
    settings: dict[str, Any] | None,
) -> Draft:
    draft = Draft(settings=dict(settings or {}))
    taken_accounts: set[str] = set()
    names: dict[str, str] = {}
    """Account name by address: one account per address."""
    taken_pools: set[str] = set()
    pool_names: dict[int, str] = {}
    for pid, pool in sorted(records.pools.items()):
        name = safe_name(pool.name, f"pool-{pid}", taken_pools)
        pool_names[pid] = name
        if name != pool.name:
            draft.notes.append(f"pool {pool.name!r} (pid {pid}) is named {name!r}")
        owner = owners[pid]
        entry: dict[str, Any] = {"name": name, "pid": pid}
        if owner is not None and owner not in names:
            names[owner] = safe_name("owner", "owner", taken_accounts)
            draft.accounts.append({"name": names[owner], "role": "owner", "address": owner})
        wanted, address = signers[pid]
        if address not in names:
            names[address] = safe_name(wanted, wanted, taken_accounts)
            env = env_name(names[address])
            draft.accounts.append(
                {
                    "name": names[address],
                    "role": "operator" if owner else "owner",
                    "address": address,
                    "key": {"env": env},
                }
            )
            how = (
                f"signs as the proxy of {names[owner]} ({owner})"
                if owner
                else "owns the pool and signs itself"
            )
            draft.keys.append(
                KeyNeeded(
                    account=names[address],
                    address=address,
                    env=env,
                    why=f"PRB v2's operator of pool {pool.name!r} (pid {pid}); {how}",
                    hint=KEY_HINT,
                )
            )
        if owner is not None:
            entry["owner"] = names[owner]
            entry["operator"] = names[address]
        else:
            entry["owner"] = names[address]
        draft.pools.append(entry)
    taken_workers: set[str] = set()
    for worker in records.workers:
        draft.workers.append(
            _worker_entry(
                worker,
                records=records,
                pool_names=pool_names,
                taken=taken_workers,
                draft=draft,
                disabled=disabled,
            )
        )
    return draft


__all__ = ["parse_operators", "read_prb2"]


def parse_operators(values: list[str]) -> dict[int, str]:
    """``--operator PID=ADDRESS`` values by pid."""
    out: dict[int, str] = {}
    for value in values:
        pid, sep, address = value.partition("=")
        if not sep or not pid.strip().isdigit() or not address.strip():
            raise ImportFailed(f"--operator {value!r}: expected PID=ADDRESS (e.g. 3=4X...)")
        out[int(pid)] = address.strip()
    return out
