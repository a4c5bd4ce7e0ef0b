"""Checks that need more than one field or more than one entry.

Field validation (pydantic) sees one entry at a time; these checks see the whole
inventory: references between entries, uniqueness across files, addresses, URLs,
and amounts that are readable but make no sense. They run only on entries that
validated, so one typo does not cascade into a page of follow-on problems.
Every duplicate names both places.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable
from typing import Any
from urllib.parse import urlsplit

from poolkeeper.inventory._entries import Entry, Inventory
from poolkeeper.inventory._messages import suggest
from poolkeeper.inventory._shards import shard_problems
from poolkeeper.inventory._yaml import REDACTED, Loc, Problem
from poolkeeper.model.amounts import PLANCKS_PER_PHA, format_pha
from poolkeeper.model.balances import thresholds_of
from poolkeeper.model.desired import (
    AccountRole,
    AccountSpec,
    PoolSpec,
    Settings,
    WorkerSpec,
    WorkerState,
    external_relay_command,
)
from poolkeeper.model.relay_command import (
    placeholders_in,
    secret_literal_problem,
    template_problem,
)
from poolkeeper.model.ss58 import AddressError, check_address

MIN_STAKE = PLANCKS_PER_PHA
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_PUBKEY = re.compile(r"(?:0x)?[0-9a-fA-F]{64}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_COMMISSION = re.compile(r"(?P<num>[0-9]+(?:\.[0-9]{1,4})?)\s*%")
_POOL_OWNER_ROLES = frozenset({AccountRole.OWNER})
_POOL_OPERATOR_ROLES = frozenset({AccountRole.OPERATOR, AccountRole.OWNER})


def cross_check(inventory: Inventory) -> list[Problem]:
    """Every problem that involves more than one field or entry."""
    problems: list[Problem] = []
    settings_entry = inventory.settings
    settings = settings_entry.spec if settings_entry and settings_entry.spec else Settings()
    if settings_entry is not None and settings_entry.spec is not None:
        problems.extend(_settings(settings_entry, settings_entry.spec))
    pools = [e for e in inventory.pools if e.spec is not None]
    workers = [e for e in inventory.workers if e.spec is not None]
    accounts = [e for e in inventory.accounts if e.spec is not None]
    account_by_name = _first_by(accounts, lambda s: s.name)
    pool_by_name = _first_by(pools, lambda s: s.name)
    # Pools and workers are checked against every declared name, even ones that failed
    # validation, so a broken account entry does not also make its pools "unknown".
    account_names = {_raw_name(e) for e in inventory.accounts} - {None}
    pool_names = {_raw_name(e) for e in inventory.pools} - {None}

    for section, valid, every in (
        ("pool", pools, inventory.pools),
        ("worker", workers, inventory.workers),
        ("account", accounts, inventory.accounts),
    ):
        problems.extend(_names(section, valid, every))
    problems.extend(_duplicates(pools, "pid", lambda e: _spec(e).pid, "pool id"))
    problems.extend(
        _duplicates(workers, "endpoint", lambda e: _endpoint_key(_spec(e).endpoint), "endpoint")
    )
    problems.extend(_duplicates(accounts, "address", lambda e: _account_id(_spec(e)), "address"))
    problems.extend(
        _duplicates(accounts, "derivation", lambda e: _spec(e).derivation, "derivation")
    )
    for pool in pools:
        problems.extend(_pool(pool, account_by_name, account_names))
    for worker in workers:
        problems.extend(_worker(worker, pool_by_name, pool_names))
        problems.extend(_worker_relay(worker, settings))
    problems.extend(_pool_totals(pool_by_name, workers))
    for account in accounts:
        problems.extend(_account(account, settings, account_by_name, account_names))
    if settings_entry is not None and settings_entry.spec is not None:
        problems.extend(
            shard_problems(
                settings_entry,
                settings,
                [_spec(p) for p in pools],
                [_spec(w) for w in workers],
                [_spec(a) for a in accounts],
            )
        )
    return problems


def _raw_name(entry: Entry[Any]) -> str | None:
    data = entry.data
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) else None


def _first_by(entries: Iterable[Entry[Any]], key: Callable[[Any], Hashable]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for entry in entries:
        out.setdefault(key(entry.spec), entry)
    return out


def _spec(entry: Entry[Any]) -> Any:
    assert entry.spec is not None
    return entry.spec


def _names(section: str, valid: list[Entry[Any]], every: list[Entry[Any]]) -> Iterable[Problem]:
    for entry in valid:
        name = _spec(entry).name
        if not _NAME.fullmatch(name):
            yield entry.field(
                ("name",),
                f"{section} name {name!r} may hold only letters, digits, '.', '_' and '-', "
                f"start with a letter or digit, and be at most 64 characters",
            )
    named = [e for e in every if _raw_name(e) is not None]
    yield from _duplicates(named, "name", _raw_name, f"{section} name")


def _duplicates(
    entries: list[Entry[Any]], field: str, key: Callable[[Any], Hashable], what: str
) -> Iterable[Problem]:
    first: dict[Hashable, Entry[Any]] = {}
    for entry in entries:
        value = key(entry)
        if value is None:
            continue
        if value in first:
            other = first[value]
            where = other.problem((field,), "")
            shown = entry.spec.model_dump(by_alias=True).get(field) if entry.spec else value
            yield entry.field(
                (field,),
                f"duplicate {what} {shown!r}: also at {where.file}:{where.line}:{where.col} "
                f"({other.prefix}); each must be unique",
            )
        else:
            first[value] = entry


_SIMPLE_URL = re.compile(
    r"(?P<scheme>[a-z]+)://(?P<host>[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])"
    r"(?::(?P<port>[0-9]{1,5}))?(?P<path>/[^\s?#]*)?"
)


def _ws_or_http(url: str, schemes: tuple[str, ...]) -> str | None:
    """Why ``url`` is not a usable URL with one of ``schemes``, or None when it is."""
    simple = _SIMPLE_URL.fullmatch(url)
    if simple is not None and simple["scheme"] in schemes and int(simple["port"] or 0) < 65536:
        return None
    example = f"{schemes[0]}://127.0.0.1:{9944 if schemes[0].startswith('ws') else 8000}"
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        return f"{url!r} is not a valid URL (write e.g. '{example}')"
    if parts.scheme not in schemes:
        return (
            f"{url!r} must start with {' or '.join(s + '://' for s in schemes)} (e.g. '{example}')"
        )
    if not parts.hostname:
        return f"{url!r} has no host (write e.g. '{example}')"
    return None


def _endpoint_key(url: str) -> str:
    """The same endpoint written two ways (case, default port, trailing '/') compares equal."""
    simple = _SIMPLE_URL.fullmatch(url)
    if simple is not None:
        scheme, host, port, path = simple.group("scheme", "host", "port", "path")
    else:
        try:
            parts = urlsplit(url.strip())
            scheme, host, path = parts.scheme.lower(), parts.hostname or "", parts.path
            port = str(parts.port) if parts.port else None
        except ValueError:
            return url
    port = port or ("443" if scheme == "https" else "80")
    return f"{scheme}://{host.lower()}:{int(port)}{(path or '').rstrip('/')}"


def _account_id(spec: AccountSpec) -> bytes | None:
    if spec.address is None:
        return None
    try:
        return check_address(spec.address, 30)
    except AddressError:
        return None


def _settings(entry: Entry[Settings], settings: Settings) -> Iterable[Problem]:
    if not settings.chain.endpoints:
        yield entry.field(
            ("chain", "endpoints"), "give at least one node endpoint (ws:// or wss://)"
        )
    for index, url in enumerate(settings.chain.endpoints):
        why = _ws_or_http(url, ("ws", "wss"))
        if why:
            yield entry.field(("chain", "endpoints", index), why)
    for index, url in enumerate(settings.chain.relaychain_endpoints):
        why = _ws_or_http(url, ("ws", "wss"))
        if why:
            yield entry.field(("chain", "relaychain_endpoints", index), why)
    if settings.alerts.webhook_url is not None:
        why = _ws_or_http(settings.alerts.webhook_url, ("https", "http"))
        if why:
            yield entry.field(("alerts", "webhook_url"), why)
    if settings.critical_below > settings.warn_below:
        yield entry.field(
            ("critical_below",),
            f"{format_pha(settings.critical_below)} is above warn_below "
            f"({format_pha(settings.warn_below)}); critical must be the lower threshold",
        )
    if settings.relay.mode == "external" and not settings.relay.external_command:
        yield entry.field(
            ("relay", "mode"),
            "external relays need relay.external_command (the argv to start one per worker)",
        )
    yield from _relay_template(
        entry, ("relay", "external_command"), settings.relay.external_command, settings
    )
    key = settings.relay.external_key
    if key is not None and (key.env is None) == (key.file is None):
        yield entry.field(("relay", "external_key"), "give exactly one of env: or file:")


def _relay_template(
    entry: Entry[Any], loc: Loc, template: tuple[str, ...], settings: Settings
) -> Iterable[Problem]:
    """Placeholders, braces and secrets written in clear, each at its own argument."""
    for index, argument in enumerate(template):
        if argument == REDACTED:
            continue  # a mnemonic or seed look-alike: the loader has reported it already
        why = template_problem(argument) or secret_literal_problem(template, index)
        if (
            why is None
            and "key_file" in placeholders_in(argument)
            and not settings.relay.external_key
        ):
            why = "{key_file} needs settings.relay.external_key (where the SURI is read from)"
        if why:
            yield entry.field((*loc, index), why)


def _account_ref(
    entry: Entry[Any],
    loc: Loc,
    name: str,
    *,
    accounts: dict[str, Entry[AccountSpec]],
    declared: set[str | None],
    roles: frozenset[AccountRole] | None,
) -> Iterable[Problem]:
    if name not in declared:
        close = suggest(name, [n for n in declared if n])
        hint = f"did you mean '{close}'?" if close else "declare it under accounts:"
        yield entry.field(loc, f"no account named {name!r} ({hint})")
        return
    account = accounts.get(name)
    if roles is not None and account is not None:
        role = _spec(account).role
        if role not in roles:
            wanted = " or ".join(sorted(r.value for r in roles))
            yield entry.field(loc, f"account {name!r} has role {role.value}, expected {wanted}")


def _pool(
    entry: Entry[PoolSpec], accounts: dict[str, Entry[AccountSpec]], declared: set[str | None]
) -> Iterable[Problem]:
    pool = _spec(entry)
    if pool.pid is None and not pool.create:
        yield entry.problem(
            (),
            f"{entry.prefix}: pool {pool.name!r} has no pid (write 'pid: N' for an existing "
            f"pool, or 'create: true' to have poolkeeper create it)",
        )
    if pool.pid is not None and pool.pid < 0:
        yield entry.field(("pid",), f"must be a pool id ≥ 0, got {pool.pid}")
    elif pool.pid is not None and pool.pid >= 2**64:
        yield entry.field(
            ("pid",), f"must be a pool id below 2^64 (a u64 on chain), got {pool.pid}"
        )
    yield from _account_ref(
        entry, ("owner",), pool.owner, accounts=accounts, declared=declared, roles=_POOL_OWNER_ROLES
    )
    if pool.operator is not None:
        yield from _account_ref(
            entry,
            ("operator",),
            pool.operator,
            accounts=accounts,
            declared=declared,
            roles=_POOL_OPERATOR_ROLES,
        )
    if pool.default_stake is not None:
        yield from _stake_bounds(entry, ("default_stake",), pool.default_stake, pool)
    if pool.commission is not None:
        match = _COMMISSION.fullmatch(pool.commission.strip())
        if match is None or float(match.group("num")) > 100:
            yield entry.field(
                ("commission",),
                f"{pool.commission!r} is not a percentage from 0% to 100% (write e.g. '5%')",
            )


def _stake_bounds(
    entry: Entry[Any], loc: Loc, stake: int, pool: PoolSpec | None
) -> Iterable[Problem]:
    if stake < MIN_STAKE:
        raw = _raw(entry, loc)
        hint = (
            " (a bare number counts plancks; write e.g. '5000 PHA')" if isinstance(raw, int) else ""
        )
        yield entry.field(loc, f"{format_pha(stake)} is below the minimum stake of 1 PHA{hint}")
    if pool is not None and pool.cap is not None and stake > pool.cap:
        yield entry.field(
            loc,
            f"{format_pha(stake)} is above the cap of pool {pool.name!r} ({format_pha(pool.cap)})",
        )


def _raw(entry: Entry[Any], loc: Loc) -> Any:
    value = entry.data
    for part in loc:
        if isinstance(value, dict) and isinstance(part, str):
            value = value.get(part)
        else:
            return None
    return value


def _worker_relay(entry: Entry[WorkerSpec], settings: Settings) -> Iterable[Problem]:
    worker = _spec(entry)
    own = worker.relay
    if own is not None and own.external_command is not None:
        if not own.external_command:
            yield entry.field(("relay", "external_command"), "give the argv, or leave it out")
        yield from _relay_template(
            entry, ("relay", "external_command"), own.external_command, settings
        )
    template = external_relay_command(settings, worker)
    if template is None:
        return
    if not template:
        if own is not None and own.mode == "external":
            yield entry.field(
                ("relay", "mode"),
                "an external relay needs relay.external_command here or in settings",
            )
        return  # settings.relay.mode without a command is reported once, in settings
    if worker.pool is None and any("operator" in placeholders_in(a) for a in template):
        yield entry.problem(
            (),
            f"{entry.prefix}: worker {worker.name!r} has no pool, so its relay command "
            "cannot use {operator} (the pool owner)",
        )


def _worker(
    entry: Entry[WorkerSpec], pools: dict[str, Entry[PoolSpec]], declared: set[str | None]
) -> Iterable[Problem]:
    worker = _spec(entry)
    why = _ws_or_http(worker.endpoint, ("http", "https"))
    if why:
        yield entry.field(("endpoint",), why)
    if worker.pubkey is not None and not _PUBKEY.fullmatch(worker.pubkey):
        yield entry.field(("pubkey",), "must be the worker's 32-byte public key as 64 hex digits")
    pool: PoolSpec | None = None
    if worker.pool is None:
        if worker.state is not WorkerState.SYNC_ONLY:
            yield entry.problem(
                (),
                f"{entry.prefix}: worker {worker.name!r} has no pool (add 'pool: NAME'; only "
                f"'state: sync_only' workers may omit it)",
            )
    elif worker.pool not in declared:
        close = suggest(worker.pool, [n for n in declared if n])
        hint = f"did you mean '{close}'?" if close else "declare it under pools:"
        yield entry.field(("pool",), f"no pool named {worker.pool!r} ({hint})")
    elif worker.pool in pools:
        pool = _spec(pools[worker.pool])
    if worker.stake is not None:
        yield from _stake_bounds(entry, ("stake",), worker.stake, pool)
    elif worker.state is WorkerState.COMPUTING and pool is not None and pool.default_stake is None:
        yield entry.problem(
            (),
            f"{entry.prefix}: worker {worker.name!r} should compute but has no stake (write "
            f"'stake: 5000 PHA', or set default_stake on pool {pool.name!r})",
        )


def _pool_totals(
    pools: dict[str, Entry[PoolSpec]], workers: list[Entry[WorkerSpec]]
) -> Iterable[Problem]:
    totals: dict[str, int] = {}
    for entry in workers:
        worker = _spec(entry)
        if worker.state is not WorkerState.COMPUTING or worker.pool not in pools:
            continue
        pool: PoolSpec = _spec(pools[worker.pool])
        stake = worker.stake if worker.stake is not None else pool.default_stake or 0
        totals[pool.name] = totals.get(pool.name, 0) + stake
    for name, total in totals.items():
        pool_entry = pools[name]
        cap = _spec(pool_entry).cap
        if cap is not None and total > cap:
            yield pool_entry.field(
                ("cap",),
                f"the computing workers of pool {name!r} stake {format_pha(total)} in "
                f"total, above its cap of {format_pha(cap)} (raise the cap or lower stakes)",
            )


def _account(
    entry: Entry[AccountSpec],
    settings: Settings,
    accounts: dict[str, Entry[AccountSpec]],
    declared: set[str | None],
) -> Iterable[Problem]:
    account = _spec(entry)
    if account.address is None and account.derivation is None and account.key is None:
        yield entry.problem(
            (),
            f"{entry.prefix}: account {account.name!r} has neither address nor derivation "
            f"(write 'derivation: LABEL' to derive it from the master secret, or 'address: "
            f"<SS58>' to watch an existing account)",
        )
    yield from _account_key(entry, account)
    if account.address is not None:
        try:
            check_address(account.address, settings.ss58_prefix)
        except AddressError as error:
            yield entry.field(("address",), str(error))
    if account.derivation is not None:
        label = account.derivation
        if not label or any(c.isspace() for c in label) or label.startswith("/"):
            yield entry.field(
                ("derivation",),
                "a derivation label is a path like 'operator//pool-a' without spaces or a "
                "leading '/'",
            )
    warn, critical = thresholds_of(settings, account)
    if (account.warn_below is not None or account.critical_below is not None) and critical > warn:
        yield entry.field(
            ("critical_below",) if account.critical_below is not None else ("warn_below",),
            f"critical_below ({format_pha(critical)}) is above warn_below ({format_pha(warn)}); "
            f"critical must be the lower threshold",
        )
    top_up = account.top_up
    if top_up is None:
        return
    source = top_up.from_account
    if source == account.name:
        yield entry.field(("top_up", "from"), "an account cannot top itself up")
    else:
        yield from _account_ref(
            entry, ("top_up", "from"), source, accounts=accounts, declared=declared, roles=None
        )
        funder = accounts.get(source)
        if funder is not None and _spec(funder).derivation is None and _spec(funder).key is None:
            yield entry.field(
                ("top_up", "from"),
                f"account {source!r} has neither derivation nor key, so poolkeeper cannot "
                f"sign its transfers",
            )
    if top_up.to <= warn:
        yield entry.field(
            ("top_up", "to"),
            f"{format_pha(top_up.to)} is not above warn_below ({format_pha(warn)}); a top-up "
            f"would leave the account in alert",
        )
    if top_up.max_per_day == 0:
        yield entry.field(("top_up", "max_per_day"), "0 PHA a day allows no top-up at all")


def _account_key(entry: Entry[AccountSpec], account: AccountSpec) -> Iterable[Problem]:
    """An account's own key (``key: {env: NAME}`` or ``{file: PATH}``): one source, no
    derivation beside it, and its address declared (plans never need the secret; the
    key is checked against the address when loaded)."""
    key = account.key
    if key is None:
        return
    if (key.env is None) == (key.file is None):
        yield entry.field(("key",), "give exactly one of env: or file: (where the key is read)")
    if key.env is not None and not _ENV_NAME.fullmatch(key.env):
        yield entry.field(
            ("key", "env"),
            f"{key.env!r} is not an environment variable name (letters, digits, '_')",
        )
    if key.file is not None and not key.file.strip():
        yield entry.field(("key", "file"), "the key file path is empty")
    if account.derivation is not None:
        yield entry.field(
            ("key",),
            f"account {account.name!r} has both key and derivation; keep one (key: an "
            f"existing secret; derivation: derived from the master secret)",
        )
    elif account.address is None:
        yield entry.field(
            ("key",),
            f"account {account.name!r} has a key but no address: write 'address: <SS58>' "
            f"(poolkeeper checks the key against it)",
        )
