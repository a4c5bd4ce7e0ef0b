"""Storage reads: the state of every pool, worker and account in a handful of requests.

Why: observing 10,000 workers one storage query at a time would be 60,000 round trips.
Reads are batched instead: state for any number of workers comes from a few
``state_queryStorageAt`` requests over known keys (chunked, all in flight at once on the
pipelined socket), never one request per worker. Keys are hashed here from the metadata's
layouts (substrate-interface re-checks the runtime for every key it builds) and values
decoded by ``_storage_values`` (hand-written decoders, scalecodec for the rest).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import xxhash
from substrateinterface import SubstrateInterface
from substrateinterface.storage import StorageKey

from poolkeeper.chain._connection import NodeConnection
from poolkeeper.chain._scale import twox128
from poolkeeper.chain._storage_values import StorageValues, registry_types
from poolkeeper.chain.ports import ChainState, NonceAt
from poolkeeper.model.observed import (
    ChainHead,
    ChainWorker,
    ObservedAccount,
    ObservedPool,
    ProxyGrant,
    SessionState,
)
from poolkeeper.model.ss58 import decode_address

QUERY_CHUNK = 2000
"""Storage keys per ``state_queryStorageAt`` request."""
W_PHA_ASSET_ID = 10000

_BLOCK_TIME_SPAN = 100
"""Blocks the block time is averaged over."""
_BLOCK_TIME_EVERY = 600
"""Blocks after which the block time is measured again."""


class StorageReader:
    """``read_state``, ``read_map`` and nonces over one ``NodeConnection``."""

    def __init__(self, conn: NodeConnection) -> None:
        self._conn = conn
        self._values: StorageValues | None = None
        self._values_for: object = None
        self._specs: dict[tuple[str, str], _KeySpec] = {}
        self._types: dict[int, Mapping[str, Any]] | None = None
        self._block_time_ms: tuple[int | None, int] = (None, 0)
        """Measured block time (ms) and the best block it was measured at."""
        conn.on_drop(self._forget)

    def _forget(self) -> None:
        """The codec was dropped: its metadata's decoders and key layouts go with it."""
        self._values = None
        self._values_for = None
        self._specs.clear()

    async def account_nonce(self, address: str) -> int:
        return int(await self._conn.call("system_accountNextIndex", [address]))

    async def read_state(
        self, pids: Sequence[int], addresses: Sequence[str], pubkeys: Sequence[str] = ()
    ) -> ChainState:
        start_trips = self._conn.round_trips
        ctx = await self._conn.run(self._read_context)
        pools: dict[int, ObservedPool] = {}
        owner_of: dict[int, str] = {}
        pool_account_of: dict[int, str] = {}
        worker_keys: set[str] = {p.lower().removeprefix("0x") for p in pubkeys}
        if pids and "PhalaBasePool" in ctx.pallets:
            wanted = [("PhalaBasePool", "Pools", [pid]) for pid in pids]
            for pid, proxy in zip(pids, await self._values_of(ctx, wanted), strict=True):
                stake_pool = proxy.get("StakePool") if isinstance(proxy, dict) else None
                if stake_pool is None:
                    continue
                base = stake_pool["basepool"]
                owner_of[pid] = str(base["owner"])
                pool_account_of[pid] = str(base["pool_account_id"])
                pool_workers = tuple(_hex(w) for w in stake_pool["workers"])
                cd_workers = tuple(_hex(w) for w in stake_pool["cd_workers"])
                worker_keys.update(pool_workers)
                worker_keys.update(cd_workers)
                pools[pid] = ObservedPool(
                    pid=pid,
                    owner=str(base["owner"]),
                    pool_account=str(base["pool_account_id"]),
                    workers=pool_workers,
                    cd_workers=cd_workers,
                    cap=stake_pool.get("cap"),
                    commission=stake_pool.get("payout_commission"),
                )
        free_stakes, workers, accounts, proxies = await asyncio.gather(
            self._read_free_stakes(ctx, sorted(set(pool_account_of.values()))),
            self._read_workers(ctx, sorted(worker_keys)),
            self._read_accounts(ctx, addresses),
            self._read_proxies(ctx, sorted(set(owner_of.values()))),
        )
        if "Assets" in ctx.pallets:
            pools = {
                pid: p.model_copy(update={"free_stake": free_stakes.get(p.pool_account or "", 0)})
                for pid, p in pools.items()
            }
        return ChainState(
            head=ctx.head,
            cool_down_period=ctx.cool_down,
            block_time_ms=ctx.block_time_ms,
            benchmark_duration=ctx.benchmark_duration,
            workers=workers,
            pools=pools,
            accounts=accounts,
            proxies=tuple(proxies),
            round_trips=self._conn.round_trips - start_trips,
        )

    def _read_context(self, s: SubstrateInterface) -> _ReadContext:
        """What a read needs from the substrate-interface connection: head, pallets,
        cool-down, value decoders and key layouts; the storage itself is read over
        ``AsyncRpc`` (pipelined, on the event loop, no thread switching per frame)."""
        head = self._head(s)
        pallets = frozenset(p.name for p in s.metadata.pallets)
        cool_down = 0
        if "PhalaComputation" in pallets:
            cd = s.query("PhalaComputation", "CoolDownPeriod", block_hash=head.best_hash)
            cool_down = int(cd.value or 0)
        benchmark = None
        if "PhalaRegistry" in pallets:
            bd = s.query("PhalaRegistry", "BenchmarkDuration", block_hash=head.best_hash)
            benchmark = None if bd.value is None else int(bd.value)
        block_time = self._block_time(s, head)
        values = self._storage_values(s)
        specs = {
            (pallet, item): self._key_spec(s, pallet, item)
            for pallet, item in _READ_ITEMS
            if pallet in pallets
        }
        return _ReadContext(head, pallets, cool_down, values, specs, block_time, benchmark)

    def _block_time(self, s: SubstrateInterface, head: ChainHead) -> int | None:
        """Average block time over up to ``_BLOCK_TIME_SPAN`` blocks before the best one,
        from ``Timestamp.Now`` at both ends; measured again every ``_BLOCK_TIME_EVERY``
        blocks (two requests), None while the chain is too young or keeps no timestamps."""
        measured, at = self._block_time_ms
        if measured is not None and head.best_number - at < _BLOCK_TIME_EVERY:
            return measured
        span = min(_BLOCK_TIME_SPAN, head.best_number - 1)
        if span < 2 or head.timestamp_ms <= 0:
            return measured
        try:
            earlier = s.rpc_request("chain_getBlockHash", [head.best_number - span])["result"]
            then = int(s.query("Timestamp", "Now", block_hash=earlier).value or 0)
        except Exception:  # an old state may be pruned: keep the previous figure
            return measured
        if then <= 0 or then >= head.timestamp_ms:
            return measured
        self._block_time_ms = ((head.timestamp_ms - then) // span, head.best_number)
        return self._block_time_ms[0]

    def _storage_values(self, s: SubstrateInterface) -> StorageValues:
        """The value decoders of the connection's current metadata (built once per runtime)."""
        if self._values is None or self._values_for is not s.metadata:
            self._values = StorageValues(s.metadata, s.runtime_config, s.ss58_format)
            self._values_for = s.metadata
            self._specs.clear()
            self._types = registry_types(s.metadata)
        return self._values

    def _key_spec(self, s: SubstrateInterface, pallet: str, item: str) -> _KeySpec:
        self._storage_values(s)  # drops the layouts of a previous runtime
        if (pallet, item) not in self._specs:
            self._specs[(pallet, item)] = _key_spec(s, pallet, item, self._types)
        return self._specs[(pallet, item)]

    async def _raw(self, keys: Sequence[str], block: str) -> dict[str, bytes | None]:
        """Raw values of storage keys (0x hex): ``QUERY_CHUNK`` keys per request, all
        requests in flight at once."""
        unique = list(dict.fromkeys(keys))
        answers = await asyncio.gather(
            *(
                self._conn.call("state_queryStorageAt", [unique[i : i + QUERY_CHUNK], block])
                for i in range(0, len(unique), QUERY_CHUNK)
            )
        )
        out: dict[str, bytes | None] = {}
        for answer in answers:
            for change_set in answer:
                for key, value in change_set["changes"]:
                    out[key] = bytes.fromhex(value[2:]) if value is not None else None
        return out

    async def _values_of(
        self, ctx: _ReadContext, wanted: Sequence[tuple[str, str, Sequence[Any]]]
    ) -> list[Any]:
        """Decoded values of ``(pallet, item, key params)`` in order; an absent value is
        None (or the item's default)."""
        keys = [ctx.key_hex(pallet, item, params) for pallet, item, params in wanted]
        unbuilt = [n for n, key in enumerate(keys) if key is None]
        if unbuilt:
            built = await self._conn.run(
                lambda s: [_storage_key_hex(s, *wanted[n][:2], list(wanted[n][2])) for n in unbuilt]
            )
            for n, key in zip(unbuilt, built, strict=True):
                keys[n] = key
        raw = await self._raw([k for k in keys if k is not None], ctx.head.best_hash)
        decoded: list[Any] = []
        for start in range(0, len(wanted), QUERY_CHUNK):
            decoded.extend(
                ctx.values.decode(pallet, item, raw.get(key or ""))
                for (pallet, item, _), key in zip(
                    wanted[start : start + QUERY_CHUNK],
                    keys[start : start + QUERY_CHUNK],
                    strict=True,
                )
            )
            await asyncio.sleep(0)  # let pRuntime polls on the same loop go on
        return decoded

    async def read_map(self, pallet: str, item: str, *, page_size: int = 1000) -> dict[Any, Any]:
        """Every entry of a one-key storage map at the best block, ``{key: value}``.

        Pages of ``page_size`` keys (``state_getKeysPaged``), each page's values in one
        ``state_queryStorageAt`` sent as soon as the page's keys are known: two requests
        per page. Keys and values come as scalecodec's ``.value`` would give them
        (accounts as SS58, public keys as 0x hex); value types ``_fast_decode`` knows
        skip scalecodec."""
        values, spec = await self._conn.run(
            lambda s: (self._storage_values(s), self._key_spec(s, pallet, item))
        )
        prefix = "0x" + spec.prefix.hex()
        block = await self._conn.call("chain_getBlockHash", [])
        fetches: list[tuple[list[str], asyncio.Task[dict[str, bytes | None]]]] = []
        start: str | None = None
        try:
            while True:
                keys = await self._conn.call(
                    "state_getKeysPaged", [prefix, page_size, start, block]
                )
                if keys:
                    fetches.append((keys, asyncio.ensure_future(self._raw(keys, block))))
                if len(keys) < page_size:
                    break
                start = keys[-1]
            out: dict[Any, Any] = {}
            for keys, fetch in fetches:
                raw = await fetch
                for key in keys:
                    param = values.key_param(pallet, item, bytes.fromhex(key[2:]))
                    out[param] = values.decode(pallet, item, raw.get(key))
            return out
        finally:
            for _, fetch in fetches:
                fetch.cancel()

    async def _read_free_stakes(
        self, ctx: _ReadContext, pool_accounts: list[str]
    ) -> dict[str, int]:
        if not pool_accounts or "Assets" not in ctx.pallets:
            return {}
        wanted = [("Assets", "Account", [W_PHA_ASSET_ID, a]) for a in pool_accounts]
        return {
            account: int(value["balance"])
            for account, value in zip(
                pool_accounts, await self._values_of(ctx, wanted), strict=True
            )
            if value is not None
        }

    async def _read_accounts(
        self, ctx: _ReadContext, addresses: Sequence[str]
    ) -> dict[str, ObservedAccount]:
        accounts: dict[str, ObservedAccount] = {}
        if not addresses:
            return accounts
        wanted = [("System", "Account", [a]) for a in addresses]
        for address, info in zip(addresses, await self._values_of(ctx, wanted), strict=True):
            if not info:
                accounts[address] = ObservedAccount(address=address)
                continue
            data = info["data"]
            accounts[address] = ObservedAccount(
                address=address,
                free=int(data["free"]),
                reserved=int(data["reserved"]),
                frozen=int(data.get("frozen", data.get("misc_frozen", 0))),
                nonce=int(info["nonce"]),
            )
        return accounts

    async def _read_proxies(self, ctx: _ReadContext, reals: list[str]) -> list[ProxyGrant]:
        proxies: list[ProxyGrant] = []
        if not reals or "Proxy" not in ctx.pallets:
            return proxies
        wanted = [("Proxy", "Proxies", [r]) for r in reals]
        for real, value in zip(reals, await self._values_of(ctx, wanted), strict=True):
            if value is None:
                continue
            for d in value[0]:
                proxies.append(
                    ProxyGrant(
                        real=real, delegate=str(d["delegate"]), proxy_type=str(d["proxy_type"])
                    )
                )
        return proxies

    async def _read_workers(self, ctx: _ReadContext, pubkeys: list[str]) -> dict[str, ChainWorker]:
        if not pubkeys or "PhalaRegistry" not in ctx.pallets:
            return {}
        items = [
            ("PhalaRegistry", "Workers"),
            ("PhalaRegistry", "WorkerAddedAt"),
            ("PhalaComputation", "WorkerBindings"),
            ("PhalaStakePoolv2", "WorkerAssignments"),
        ]
        wanted = [(p, i, ["0x" + pk]) for p, i in items for pk in pubkeys]
        found: dict[tuple[str, str], Any] = {}
        for (_, item, params), value in zip(
            wanted, await self._values_of(ctx, wanted), strict=True
        ):
            if value is not None:
                found[(item, params[0][2:])] = value
        sessions = {
            pk: str(found[("WorkerBindings", pk)])
            for pk in pubkeys
            if ("WorkerBindings", pk) in found
        }
        session_info: dict[str, Any] = {}
        stakes: dict[str, int] = {}
        if sessions:
            accounts = sorted(set(sessions.values()))
            session_wanted = [
                ("PhalaComputation", item, [acct])
                for item in ("Sessions", "Stakes")
                for acct in accounts
            ]
            values = await self._values_of(ctx, session_wanted)
            for (_, item, params), value in zip(session_wanted, values, strict=True):
                if value is None:
                    continue
                if item == "Sessions":
                    session_info[params[0]] = value
                else:
                    stakes[params[0]] = int(value)
        workers: dict[str, ChainWorker] = {}
        for pk in pubkeys:
            info = found.get(("Workers", pk))
            session = sessions.get(pk)
            if info is None and session is None:
                continue
            sess = session_info.get(session) if session else None
            state = sess["state"] if sess else None
            workers[pk] = ChainWorker(
                pubkey=pk,
                operator=(info or {}).get("operator"),
                initial_score=(info or {}).get("initial_score"),
                added_at=found.get(("WorkerAddedAt", pk)),
                session=session,
                session_state=SessionState(state) if state else None,
                stake=stakes.get(session) if session else None,
                cool_down_start=int(sess["cool_down_start"]) if sess else None,
                pool_pid=found.get(("WorkerAssignments", pk)),
                registered_at=(info or {}).get("last_updated"),
            )
            # Every field is given: one shared fields set rather than one each (~730 bytes
            # a worker at 10,000 workers; never mutated, the model is frozen).
            object.__setattr__(workers[pk], "__pydantic_fields_set__", _CHAIN_WORKER_FIELDS)
        return workers

    def _head(self, s: SubstrateInterface) -> ChainHead:
        best = s.rpc_request("chain_getHeader", [])["result"]
        best_hash = s.rpc_request("chain_getBlockHash", [int(best["number"], 16)])["result"]
        fin_hash = s.rpc_request("chain_getFinalizedHead", [])["result"]
        fin = s.rpc_request("chain_getHeader", [fin_hash])["result"]
        now = 0
        if _PalletCheck(s)("Timestamp"):
            now = int(s.query("Timestamp", "Now", block_hash=best_hash).value or 0)
        return ChainHead(
            best_number=int(best["number"], 16),
            best_hash=best_hash,
            finalized_number=int(fin["number"], 16),
            finalized_hash=fin_hash,
            timestamp_ms=now,
        )

    async def chain_nonce(self, address: str) -> NonceAt:
        def read(s: SubstrateInterface) -> NonceAt:
            best_hash = s.rpc_request("chain_getBlockHash", [])["result"]
            number = int(s.rpc_request("chain_getHeader", [best_hash])["result"]["number"], 16)
            info = s.query("System", "Account", [address], block_hash=best_hash)
            value = info.value if info is not None else None
            nonce = int(value["nonce"]) if isinstance(value, dict) else 0
            return NonceAt(nonce=nonce, block_number=number)

        return await self._conn.run(read)


class _PalletCheck:
    def __init__(self, s: SubstrateInterface) -> None:
        self._names = {p.name for p in s.metadata.pallets}

    def __call__(self, name: str) -> bool:
        return name in self._names


_CHAIN_WORKER_FIELDS = set(ChainWorker.model_fields)
"""``_workers`` gives every field of ``ChainWorker``: its fields set, shared."""

_UINT_BYTES = {"u8": 1, "u16": 2, "u32": 4, "u64": 8, "u128": 16}


@dataclass(frozen=True)
class _KeySpec:
    prefix: bytes
    hashers: tuple[str, ...]
    param_types: tuple[str, ...]
    value_type: str
    item: Any
    """The metadata storage item (its default answers for absent values)."""


_READ_ITEMS = (
    ("PhalaBasePool", "Pools"),
    ("Assets", "Account"),
    ("System", "Account"),
    ("Proxy", "Proxies"),
    ("PhalaRegistry", "Workers"),
    ("PhalaRegistry", "WorkerAddedAt"),
    ("PhalaComputation", "WorkerBindings"),
    ("PhalaComputation", "Sessions"),
    ("PhalaComputation", "Stakes"),
    ("PhalaStakePoolv2", "WorkerAssignments"),
)
"""The storage items ``read_state`` reads by key."""


def _key_spec(
    s: SubstrateInterface,
    pallet: str,
    function: str,
    types: Mapping[int, Mapping[str, Any]] | None = None,
) -> _KeySpec:
    """Prefix, hashers and types of a storage item, from the loaded metadata.

    ``SubstrateInterface.create_storage_key`` re-checks the runtime (three requests a key)
    and encodes every parameter through scalecodec; observing 10,000 workers builds
    60,000 keys, so they are hashed here from this (see ``_hashed_key``)."""
    meta_pallet = s.metadata.get_metadata_pallet(pallet)
    item = meta_pallet.get_storage_function(function) if meta_pallet is not None else None
    if item is None:
        raise KeyError(f"{pallet}.{function} is not in the served metadata")
    storage_prefix = str(meta_pallet.value["storage"]["prefix"])
    hashers = tuple(item.get_param_hashers())
    param_types = tuple(item.get_params_type_string())
    if types is not None and "Map" in item.value["type"]:
        # ``scale_info::N`` of an unsigned integer becomes ``uN`` (hashed here directly)
        key_id = item.value["type"]["Map"]["key"]
        ids = [key_id] if len(hashers) == 1 else list(types[key_id]["def"].get("tuple", []))
        if len(ids) == len(param_types):
            param_types = tuple(
                str(types[i]["def"]["primitive"]) if "primitive" in types[i]["def"] else name
                for i, name in zip(ids, param_types, strict=True)
            )
    return _KeySpec(
        prefix=twox128(storage_prefix.encode()) + twox128(str(item.value["name"]).encode()),
        hashers=hashers,
        param_types=param_types,
        value_type=str(item.get_value_type_string()),
        item=item,
    )


def _hashed_key(spec: _KeySpec, params: Sequence[Any]) -> str | None:
    """0x hex of a storage key whose parameters are hashed here directly, or None when
    a parameter is of a type left to scalecodec."""
    data = bytearray(spec.prefix)
    for value, hasher, type_string in zip(params, spec.hashers, spec.param_types, strict=False):
        raw = _raw_param(value, type_string)
        hashed = _hash_param(raw, hasher) if raw is not None else None
        if hashed is None:
            return None
        data += hashed
    return "0x" + data.hex()


@dataclass(frozen=True)
class _ReadContext:
    head: ChainHead
    pallets: frozenset[str]
    cool_down: int
    values: StorageValues
    specs: dict[tuple[str, str], _KeySpec]
    block_time_ms: int | None = None
    benchmark_duration: int | None = None

    def key_hex(self, pallet: str, item: str, params: Sequence[Any]) -> str | None:
        """The key, or None when it needs scalecodec (and so the connection's thread)."""
        spec = self.specs.get((pallet, item))
        if spec is None:
            return None
        known = self.values.account_bytes
        return _hashed_key(spec, [(isinstance(p, str) and known(p)) or p for p in params])


def _storage_key_hex(s: SubstrateInterface, pallet: str, function: str, params: list[Any]) -> str:
    """A storage key through scalecodec (parameters ``_hashed_key`` does not handle)."""
    key = StorageKey.create_from_storage_function(
        pallet, function, params, runtime_config=s.runtime_config, metadata=s.metadata
    )
    return "0x" + bytes(key.data).hex()


def _raw_param(value: Any, type_string: str) -> bytes | None:
    size = _UINT_BYTES.get(type_string)
    if size is not None:
        return int(value).to_bytes(size, "little") if isinstance(value, int) else None
    if isinstance(value, bytes) and len(value) == 32:
        return value
    if not isinstance(value, str):
        return None
    if value.startswith("0x"):
        return bytes.fromhex(value[2:]) if len(value) == 66 else None
    try:
        return decode_address(value)[1]
    except ValueError:
        return None


def _hash_param(raw: bytes, hasher: str) -> bytes | None:
    if hasher == "Blake2_128Concat":
        return hashlib.blake2b(raw, digest_size=16).digest() + raw
    if hasher == "Twox64Concat":
        return xxhash.xxh64_intdigest(raw).to_bytes(8, "little") + raw
    if hasher == "Identity":
        return raw
    return None


def _hex(value: object) -> str:
    text = str(value).lower()
    return text[2:] if text.startswith("0x") else text
