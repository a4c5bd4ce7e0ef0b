"""PRB v3 (``standalone/prb``) records → an inventory draft.

Reads what ``prb-config`` prints and ``POST /wm/config`` answers (pretty JSON):
``GetAllPoolsWithWorkers`` / ``GetPoolWithWorkers`` (pools with their workers),
``GetAllPoolOperators`` / ``GetPoolOperator`` (``{pid, operator_account_id,
proxied_account_id}``), and the ``ConfigCommands`` bodies a PRB user scripted
(``AddPool``, ``AddWorker``, ``SetPoolOperator``). ``SetPoolOperator`` carries the
operator's secret: it is used only to compute the operator's public address and is
never written nor shown; the key is then read at run time from ``key: {env: ...}``.

Mapping (docs/import.md): pool → pool (pid, owner = the proxied account or the
operator's own, operator = the signer when it is a proxy); worker → worker with its
stake; ``sync_only`` (worker or pool) and gatekeepers → ``state: sync_only``; disabled
(worker or pool) → ``state: sync_only`` by default (kept synced, stopped if it
computes, left in its pool) or ``removed`` when asked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from poolkeeper.errors import SecretError
from poolkeeper.importers._draft import Draft, ImportFailed, KeyNeeded, env_name, safe_name
from poolkeeper.keys import Secret, key_from_secret
from poolkeeper.model.amounts import PLANCKS_PER_PHA, format_pha
from poolkeeper.model.ss58 import AddressError, decode_address, encode_address

DisabledAs = Literal["sync_only", "removed"]
PREFIX = 30


@dataclass
class _Pool:
    pid: int
    name: str
    enabled: bool
    sync_only: bool
    where: str


@dataclass
class _Worker:
    name: str
    endpoint: str
    stake: int
    pid: int
    enabled: bool
    sync_only: bool
    gatekeeper: bool
    where: str


@dataclass
class _Operator:
    pid: int
    signer: str
    proxied: str | None
    where: str
    from_secret: bool = False


@dataclass
class _Records:
    pools: dict[int, _Pool] = field(default_factory=dict)
    workers: list[_Worker] = field(default_factory=list)
    operators: dict[int, _Operator] = field(default_factory=dict)


def read_prb3(
    paths: list[Path],
    *,
    disabled: DisabledAs = "sync_only",
    settings: dict[str, Any] | None = None,
) -> Draft:
    """The inventory the PRB v3 records in ``paths`` describe."""
    records = _Records()
    for path in paths:
        _read_file(path, records)
    if not records.pools:
        raise ImportFailed(
            "no PRB pool in the input (give the output of `prb-config get-all-pools-with-workers`"
            ' or of POST /wm/config "GetAllPoolsWithWorkers")'
        )
    return _draft(records, disabled, settings or {})


def _read_file(path: Path, records: _Records) -> None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ImportFailed(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise ImportFailed(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise ImportFailed(f"{path}: cannot be read: {exc.strerror}") from None
    value = _json(text, str(path))
    if isinstance(value, str):  # an HTTP client may keep the reply as a JSON string
        value = _json(value, str(path))
    items = value if isinstance(value, list) else [value]
    for index, item in enumerate(items):
        where = f"{path}: item {index}" if isinstance(value, list) else f"{path}"
        _read_item(item, where, records)


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFailed(f"{where}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}") from None


def _read_item(item: Any, where: str, records: _Records) -> None:
    if not isinstance(item, dict):
        raise ImportFailed(f"{where}: expected a PRB record (a JSON object), got {_kind(item)}")
    if len(item) == 1:
        ((command, body),) = item.items()
        if command in ("AddPool", "UpdatePool"):
            _add_pool(_obj(body, f"{where}.{command}"), f"{where}.{command}", records)
            return
        if command in ("AddWorker", "UpdateWorker"):
            w = f"{where}.{command}"
            body = _obj(body, w)
            records.workers.append(_worker(body, w, _int(body, "pid", w)))
            return
        if command == "SetPoolOperator":
            _set_pool_operator(_obj(body, f"{where}.{command}"), f"{where}.{command}", records)
            return
    if "operator_account_id" in item:
        pid = _int(item, "pid", where)
        signer = _address(item, "operator_account_id", where)
        assert signer is not None  # not optional: refused above when missing
        proxied = _address(item, "proxied_account_id", where, optional=True)
        _put_operator(records, _Operator(pid, signer, proxied, where))
        return
    if "pid" in item and "name" in item and "endpoint" not in item:
        pool = _add_pool(item, where, records)
        for index, worker in enumerate(item.get("workers") or []):
            w = f"{where}.workers[{index}]"
            records.workers.append(_worker(_obj(worker, w), w, pool.pid))
        return
    raise ImportFailed(
        f"{where}: not a PRB v3 pool, worker or pool operator record (expected the output of "
        f"GetAllPoolsWithWorkers or GetAllPoolOperators, or an AddPool/AddWorker/"
        f"SetPoolOperator command)"
    )


def _add_pool(body: dict[str, Any], where: str, records: _Records) -> _Pool:
    pid = _int(body, "pid", where)
    enabled = _bool(body, "enabled", where, default=not _bool(body, "disabled", where))
    pool = _Pool(pid, _str(body, "name", where), enabled, _bool(body, "sync_only", where), where)
    earlier = records.pools.get(pid)
    if earlier is not None and (earlier.name, earlier.enabled, earlier.sync_only) != (
        pool.name,
        pool.enabled,
        pool.sync_only,
    ):
        raise ImportFailed(f"{where}: pool pid {pid} is also at {earlier.where}, differently")
    records.pools[pid] = pool
    return pool


def _worker(body: dict[str, Any], where: str, pid: int) -> _Worker:
    stake_text = _str(body, "stake", where)
    if not stake_text.isdigit():
        raise ImportFailed(f"{where}.stake: {stake_text!r} is not an amount of plancks")
    enabled = _bool(body, "enabled", where, default=not _bool(body, "disabled", where))
    return _Worker(
        name=_str(body, "name", where),
        endpoint=_str(body, "endpoint", where),
        stake=int(stake_text),
        pid=pid,
        enabled=enabled,
        sync_only=_bool(body, "sync_only", where),
        gatekeeper=_bool(body, "gatekeeper", where),
        where=where,
    )


def _set_pool_operator(body: dict[str, Any], where: str, records: _Records) -> None:
    pid = _int(body, "pid", where)
    kind = body.get("account_type", "Seed")
    if kind not in ("Seed", "SecretKey"):
        raise ImportFailed(f"{where}.account_type: expected Seed or SecretKey")
    raw = body.get("account")
    if not isinstance(raw, str) or not raw.strip():
        raise ImportFailed(f"{where}.account: missing (the operator's secret)")
    secret = Secret(raw)
    try:
        key = key_from_secret(secret, origin=f"{where}.account", label="import", ss58_prefix=PREFIX)
    except SecretError as error:
        raise ImportFailed(str(error)) from None
    proxied = _address(body, "proxied_account_id", where, optional=True)
    _put_operator(records, _Operator(pid, key.address, proxied, where, from_secret=True))


def _put_operator(records: _Records, operator: _Operator) -> None:
    earlier = records.operators.get(operator.pid)
    if earlier is not None and (earlier.signer, earlier.proxied) != (
        operator.signer,
        operator.proxied,
    ):
        raise ImportFailed(
            f"{operator.where}: pool operator of pid {operator.pid} differs from the one at "
            f"{earlier.where}"
        )
    if earlier is None or operator.from_secret:
        records.operators[operator.pid] = operator


def _draft(records: _Records, disabled: DisabledAs, settings: dict[str, Any]) -> Draft:
    draft = Draft(settings=dict(settings))
    missing = [p for pid, p in sorted(records.pools.items()) if pid not in records.operators]
    if missing:
        names = ", ".join(f"{p.name!r} (pid {p.pid})" for p in missing)
        raise ImportFailed(
            f"no pool operator for {names}: give the output of `prb-config "
            f'get-all-pool-operators` (or POST /wm/config "GetAllPoolOperators") too'
        )
    account_names = _accounts(records, draft)
    taken_pools: set[str] = set()
    pool_names: dict[int, str] = {}
    for pid, pool in sorted(records.pools.items()):
        name = safe_name(pool.name, f"pool-{pid}", taken_pools)
        pool_names[pid] = name
        operator = records.operators[pid]
        owner = operator.proxied or operator.signer
        entry: dict[str, Any] = {"name": name, "pid": pid, "owner": account_names[owner]}
        if operator.proxied:
            entry["operator"] = account_names[operator.signer]
        draft.pools.append(entry)
        if name != pool.name:
            draft.notes.append(f"pool {pool.name!r} (pid {pid}) is named {name!r}")
    taken_workers: set[str] = set()
    seen: dict[str, _Worker] = {}
    for worker in records.workers:
        if worker.pid not in records.pools:
            raise ImportFailed(f"{worker.where}.pid: no pool with pid {worker.pid} in the input")
        earlier = seen.get(worker.name)
        if earlier is not None:
            if (earlier.endpoint, earlier.pid) == (worker.endpoint, worker.pid):
                continue  # the same worker listed twice (two exports of one PRB)
            raise ImportFailed(f"{worker.where}: worker {worker.name!r} is also at {earlier.where}")
        seen[worker.name] = worker
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


def _accounts(records: _Records, draft: Draft) -> dict[str, str]:
    """Accounts by address (one per address), named by role and first appearance."""
    owners: list[str] = []
    signers: list[str] = []
    pids_of: dict[str, list[int]] = {}
    for pid, operator in sorted(records.operators.items()):
        if pid not in records.pools:
            continue
        owner = operator.proxied or operator.signer
        if owner not in owners:
            owners.append(owner)
        if operator.signer not in signers:
            signers.append(operator.signer)
        pids_of.setdefault(operator.signer, []).append(pid)
    names: dict[str, str] = {}
    for role, addresses in (("owner", owners), ("operator", signers)):
        plain = [a for a in addresses if a not in names]
        for index, address in enumerate(plain, 1):
            names[address] = role if len(plain) == 1 else f"{role}-{index}"
    for address in [*owners, *signers]:
        if any(a["address"] == address for a in draft.accounts):
            continue
        name = names[address]
        entry: dict[str, Any] = {
            "name": name,
            "role": "owner" if address in owners else "operator",
            "address": address,
        }
        if address in signers:
            env = env_name(name)
            entry["key"] = {"env": env}
            pids = ", ".join(str(p) for p in pids_of[address])
            proxy_of = sorted(
                {
                    names[o.proxied]
                    for o in records.operators.values()
                    if o.signer == address and o.proxied
                }
            )
            how = f"the proxy of {', '.join(proxy_of)}" if proxy_of else "the owner"
            draft.keys.append(
                KeyNeeded(
                    account=name,
                    address=address,
                    env=env,
                    why=f"PRB's pool operator of pid {pids}; signs as {how}",
                )
            )
        draft.accounts.append(entry)
    return names


def _worker_entry(
    worker: _Worker,
    *,
    records: _Records,
    pool_names: dict[int, str],
    taken: set[str],
    draft: Draft,
    disabled: DisabledAs,
) -> dict[str, Any]:
    pool = records.pools[worker.pid]
    name = safe_name(worker.name, f"worker-{len(taken) + 1}", taken)
    if name != worker.name:
        draft.notes.append(f"worker {worker.name!r} is named {name!r}")
    entry: dict[str, Any] = {
        "name": name,
        "endpoint": worker.endpoint,
        "pool": pool_names[worker.pid],
    }
    if worker.gatekeeper:
        state = "sync_only"
        entry["labels"] = {"prb": "gatekeeper"}
        draft.notes.append(f"worker {name!r} is a gatekeeper in PRB: kept synced only")
    elif not (worker.enabled and pool.enabled):
        state = disabled
        draft.notes.append(f"worker {name!r} is disabled in PRB: state {disabled}")
    elif worker.sync_only or pool.sync_only:
        state = "sync_only"
    else:
        state = "computing"
    if worker.stake >= PLANCKS_PER_PHA:
        entry["stake"] = format_pha(worker.stake)
    elif state == "computing":
        raise ImportFailed(
            f"{worker.where}.stake: {worker.stake} plancks is below the minimum stake of 1 PHA "
            f"(fix it in PRB, or disable the worker)"
        )
    entry["state"] = state
    return entry


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ImportFailed(f"{where}: expected an object, got {_kind(value)}")
    return value


def _int(body: dict[str, Any], key: str, where: str) -> int:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ImportFailed(
            f"{where}.{key}: expected a pool id (an integer ≥ 0), got {_kind(value)}"
        )
    return value


def _str(body: dict[str, Any], key: str, where: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ImportFailed(f"{where}.{key}: expected text, got {_kind(value)}")
    return value.strip()


def _bool(body: dict[str, Any], key: str, where: str, *, default: bool = False) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise ImportFailed(f"{where}.{key}: expected true or false, got {_kind(value)}")
    return value


def _address(body: dict[str, Any], key: str, where: str, *, optional: bool = False) -> str | None:
    value = body.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ImportFailed(f"{where}.{key}: expected an SS58 address, got {_kind(value)}")
    try:
        return encode_address(decode_address(value)[1], PREFIX)
    except AddressError as error:
        raise ImportFailed(f"{where}.{key}: {error}") from None


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool | int | float):
        return repr(value)
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "text"
    return type(value).__name__
