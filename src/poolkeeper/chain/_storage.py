"""The chain adapter: the chain ports implemented on substrate-interface.

substrate-interface is synchronous and not thread-safe per connection, so every call
runs on one single-thread executor per connection; the asyncio side awaits it.
Reads are batched: state for any number of workers comes from a handful of
``state_queryStorageAt`` requests over known keys (chunked), never one request per
worker. Transactions are submitted without blocking the connection; a block follower
fetches each new block once and settles every waiting extrinsic found in it, so many
extrinsics can be in flight while one connection serves them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import xxhash
from scalecodec.base import ScaleBytes
from scalecodec.types import GenericCall, GenericExtrinsic
from substrateinterface import Keypair, KeypairType, SubstrateInterface
from substrateinterface.exceptions import SubstrateRequestException
from substrateinterface.storage import StorageKey

from poolkeeper._crash_points import crash_point
from poolkeeper.chain._heads import HeadSignal
from poolkeeper.chain._rpc import AsyncRpc
from poolkeeper.chain._scale import compact, twox128
from poolkeeper.chain._storage_values import StorageValues, registry_types
from poolkeeper.chain.ports import (
    CallSpec,
    ChainEvent,
    ChainState,
    ItemResult,
    NonceAt,
    Outcome,
    SignedExtrinsic,
    Signer,
    TransferScan,
    TxStatus,
)
from poolkeeper.chain.transfers import scan_transfers
from poolkeeper.errors import ChainHistoryUnavailable, ChainUnavailable
from poolkeeper.model.observed import (
    ChainHead,
    ChainWorker,
    ObservedAccount,
    ObservedPool,
    ProxyGrant,
    SessionState,
)
from poolkeeper.model.ss58 import decode_address

T = TypeVar("T")

QUERY_CHUNK = 2000
"""Storage keys per ``state_queryStorageAt`` request."""
ERA_PERIOD = 64
"""Blocks an extrinsic stays valid for (mortal era). 64 blocks are 12.8 minutes on
Khala's 12 s blocks: a lost extrinsic is proven dropped, and its actions planned again,
at most that long (less the finality lag) after it was signed (docs/decisions.md)."""
W_PHA_ASSET_ID = 10000


class _SignerKeypair(Keypair):  # type: ignore[misc]
    """Presents a ``Signer`` to substrate-interface as a Keypair without its secret."""

    def __init__(self, signer: Signer, ss58_format: int) -> None:
        super().__init__(
            public_key=signer.public_key, ss58_format=ss58_format, crypto_type=KeypairType.SR25519
        )
        self._signer = signer

    def sign(self, data: bytes | ScaleBytes | str) -> bytes:
        if isinstance(data, ScaleBytes):
            payload = bytes(data.data)
        elif isinstance(data, str):
            payload = bytes.fromhex(data[2:]) if data.startswith("0x") else data.encode()
        else:
            payload = data
        return self._signer.sign(payload)


@dataclass
class _Waiter:
    signed: SignedExtrinsic
    future: asyncio.Future[Outcome]
    finalized: bool


class SubstrateChain:
    """``ChainReader`` and ``ChainWriter`` over one node websocket."""

    def __init__(
        self,
        url: str,
        *,
        ss58_format: int | None = None,
        wait_for_finalization: bool = False,
        poll_seconds: float = 0.5,
        timeout_seconds: float = 120.0,
    ) -> None:
        self.url = url
        self._ss58_format = ss58_format
        self._wait_final = wait_for_finalization
        self._poll = poll_seconds
        self._timeout = timeout_seconds
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chain")
        self._substrate: SubstrateInterface | None = None
        self._waiters: dict[str, _Waiter] = {}
        self._follower: asyncio.Task[None] | None = None
        self._heads: HeadSignal | None = None
        self._scanned_to: int | None = None
        self._values: StorageValues | None = None
        self._values_for: object = None
        self._specs: dict[tuple[str, str], _KeySpec] = {}
        self._types: dict[int, Mapping[str, Any]] | None = None
        self._rpc: AsyncRpc | None = None
        self._rpc_loop: asyncio.AbstractEventLoop | None = None
        self.round_trips = 0

    # -- plumbing ---------------------------------------------------------------------

    def _count_requests(self, s: SubstrateInterface) -> None:
        """Count every JSON-RPC request this connection makes in ``round_trips`` (the
        library makes some of its own, e.g. to refresh the runtime)."""
        request = s.rpc_request

        def counted(method: str, params: Any, result_handler: Any = None) -> Any:
            self.round_trips += 1
            return request(method, params, result_handler)

        s.rpc_request = counted

    async def _run(self, fn: Callable[[SubstrateInterface], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._call_sync, fn)

    def _call_sync(self, fn: Callable[[SubstrateInterface], T]) -> T:
        try:
            if self._substrate is None:
                # Text frames are strictly UTF-8-decoded anyway; websocket-client's own
                # validation is pure Python, about 0.5 µs a byte of every large answer.
                self._substrate = SubstrateInterface(
                    url=self.url,
                    ss58_format=self._ss58_format,
                    ws_options={"skip_utf8_validation": True},
                )
                self._count_requests(self._substrate)
                self._substrate.init_runtime()
                fmt = self._substrate.ss58_format
                if fmt is None:
                    fmt = self._substrate.properties.get("ss58Format", 42)
                    self._substrate.ss58_format = int(fmt)
                self._ss58_format = int(fmt)
                # The decoded metadata is some 100,000 long-lived objects; left to the
                # cyclic collector, every full collection walks them all again (about
                # 40 % of the CPU of reading 10,000 workers). Nothing in it is garbage.
                gc.freeze()
            return fn(self._substrate)
        except (ConnectionError, OSError, TimeoutError) as exc:
            self._drop()
            raise ChainUnavailable(f"{self.url}: {exc}") from exc
        except Exception as exc:
            if type(exc).__name__.startswith("WebSocket"):
                self._drop()
                raise ChainUnavailable(f"{self.url}: {exc}") from exc
            raise

    def _drop(self) -> None:
        if self._substrate is not None:
            with contextlib.suppress(Exception):  # a broken socket may fail to close
                self._substrate.close()
            # let the collector reclaim this connection's metadata (frozen when it
            # loaded); the next connection freezes what is still alive again
            gc.unfreeze()
        self._substrate = None
        self._values = None
        self._values_for = None
        self._specs.clear()

    async def close(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
        if self._heads is not None:
            await self._heads.close()
        if self._rpc is not None and self._rpc_loop is asyncio.get_running_loop():
            await self._rpc.close()
        self._rpc = None
        await self._run_close()
        self._pool.shutdown(wait=False)

    async def _run_close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, self._drop)

    @property
    def ss58_format(self) -> int:
        return self._ss58_format if self._ss58_format is not None else 42

    # -- reads ------------------------------------------------------------------------

    async def account_nonce(self, address: str) -> int:
        def nonce(s: SubstrateInterface) -> int:
            return int(s.rpc_request("system_accountNextIndex", [address])["result"])

        return await self._run(nonce)

    async def read_state(
        self, pids: Sequence[int], addresses: Sequence[str], pubkeys: Sequence[str] = ()
    ) -> ChainState:
        start_trips = self.round_trips
        ctx = await self._run(self._read_context)
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
            workers=workers,
            pools=pools,
            accounts=accounts,
            proxies=tuple(proxies),
            round_trips=self.round_trips - start_trips,
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
        values = self._storage_values(s)
        specs = {
            (pallet, item): self._key_spec(s, pallet, item)
            for pallet, item in _READ_ITEMS
            if pallet in pallets
        }
        return _ReadContext(head, pallets, cool_down, values, specs)

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

    async def _rpc_call(self, method: str, params: list[Any]) -> Any:
        loop = asyncio.get_running_loop()
        if self._rpc is None or self._rpc_loop is not loop:
            self._rpc = AsyncRpc(self.url, timeout_seconds=self._timeout)
            self._rpc_loop = loop
        self.round_trips += 1
        return await self._rpc.call(method, params)

    async def _raw(self, keys: Sequence[str], block: str) -> dict[str, bytes | None]:
        """Raw values of storage keys (0x hex): ``QUERY_CHUNK`` keys per request, all
        requests in flight at once."""
        unique = list(dict.fromkeys(keys))
        answers = await asyncio.gather(
            *(
                self._rpc_call("state_queryStorageAt", [unique[i : i + QUERY_CHUNK], block])
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
            built = await self._run(
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
        values, spec = await self._run(
            lambda s: (self._storage_values(s), self._key_spec(s, pallet, item))
        )
        prefix = "0x" + spec.prefix.hex()
        block = await self._rpc_call("chain_getBlockHash", [])
        fetches: list[tuple[list[str], asyncio.Task[dict[str, bytes | None]]]] = []
        start: str | None = None
        try:
            while True:
                keys = await self._rpc_call("state_getKeysPaged", [prefix, page_size, start, block])
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
            )
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

    # -- writes -----------------------------------------------------------------------

    def _call_bytes(self, s: SubstrateInterface, spec: CallSpec) -> bytes:
        """SCALE bytes of one call; raw-argument calls are never re-encoded."""
        if spec.raw_args is not None:
            return _call_head(s, spec.pallet, spec.function) + spec.raw_args
        # Not ``compose_call``: it re-checks the runtime first (three requests per call,
        # 300 for a batch of 100); the metadata loaded with the connection is the one used.
        call = s.runtime_config.create_scale_object(type_string="Call", metadata=s.metadata)
        call.encode(
            {
                "call_module": spec.pallet,
                "call_function": spec.function,
                "call_args": dict(spec.args),
            }
        )
        return bytes(call.data.data)

    def _outer_call(
        self, s: SubstrateInterface, calls: Sequence[CallSpec], proxy_for: str | None
    ) -> GenericCall:
        """The call to sign, assembled as bytes (so raw registration payloads, which the
        2023 Khala metadata cannot re-encode, pass through untouched) and decoded once."""
        inner = [self._call_bytes(s, c) for c in calls]
        if len(inner) == 1:
            data = inner[0]
        else:
            utility = s.metadata.get_metadata_pallet("Utility")
            names = {c.name for c in utility.calls or []}
            # force_batch runs every item; runtimes without it (older ones) get `batch`,
            # which stops at the first failure (later items are reported as not executed).
            batch = "force_batch" if "force_batch" in names else "batch"
            data = _call_head(s, "Utility", batch) + compact(len(inner)) + b"".join(inner)
        if proxy_for is not None:
            # Proxy.proxy(real, force_proxy_type: None, call); `real` is a MultiAddress on
            # Khala but a plain AccountId on other runtimes (Asset Hub): encode it as the
            # runtime's metadata says.
            real = _encode_arg(s, "Proxy", "proxy", "real", proxy_for)
            data = _call_head(s, "Proxy", "proxy") + real + b"\x00" + data
        call = s.runtime_config.create_scale_object(
            "Call", data=ScaleBytes(data), metadata=s.metadata
        )
        call.decode()
        _strip_call_ids(call.value)
        return call

    async def sign(
        self,
        signer: Signer,
        calls: Sequence[CallSpec],
        *,
        proxy_for: str | None = None,
        nonce: int | None = None,
    ) -> SignedExtrinsic:
        def build(s: SubstrateInterface) -> SignedExtrinsic:
            call = self._outer_call(s, calls, proxy_for)
            keypair = _SignerKeypair(signer, int(s.ss58_format))
            fin_hash = s.rpc_request("chain_getFinalizedHead", [])["result"]
            era_start = int(s.rpc_request("chain_getHeader", [fin_hash])["result"]["number"], 16)
            use_nonce = nonce if nonce is not None else s.get_account_nonce(keypair.ss58_address)
            extrinsic: GenericExtrinsic = s.create_signed_extrinsic(
                call=call,
                keypair=keypair,
                era={"period": ERA_PERIOD, "current": era_start},
                nonce=use_nonce,
            )
            return SignedExtrinsic(
                extrinsic_hash="0x" + extrinsic.extrinsic_hash.hex(),
                data=bytes(extrinsic.data.data),
                signer=keypair.ss58_address,
                nonce=int(use_nonce),
                call_count=len(calls),
                era_start=era_start,
                era_period=ERA_PERIOD,
            )

        return await self._run(build)

    async def estimate_fee(
        self, signer: Signer, calls: Sequence[CallSpec], *, proxy_for: str | None = None
    ) -> int:
        def fee(s: SubstrateInterface) -> int:
            call = self._outer_call(s, calls, proxy_for)
            info = s.get_payment_info(call, _SignerKeypair(signer, int(s.ss58_format)))
            return int(info["partialFee"]) if info else 0

        return await self._run(fee)

    async def resubmit(self, signed: SignedExtrinsic) -> str | None:
        def submit(s: SubstrateInterface) -> str | None:
            response = s.rpc_request("author_submitExtrinsic", ["0x" + signed.data.hex()])
            if "error" in response:
                return _rejection_text(response["error"])
            return None

        try:
            return await self._run(submit)
        except SubstrateRequestException as exc:
            return _rejection_text(exc.args[0] if exc.args else exc)

    async def chain_nonce(self, address: str) -> NonceAt:
        def read(s: SubstrateInterface) -> NonceAt:
            best_hash = s.rpc_request("chain_getBlockHash", [])["result"]
            number = int(s.rpc_request("chain_getHeader", [best_hash])["result"]["number"], 16)
            info = s.query("System", "Account", [address], block_hash=best_hash)
            value = info.value if info is not None else None
            nonce = int(value["nonce"]) if isinstance(value, dict) else 0
            return NonceAt(nonce=nonce, block_number=number)

        return await self._run(read)

    async def send(self, signed: SignedExtrinsic) -> Outcome:
        rejected = await self.resubmit(signed)
        if rejected is not None:
            return Outcome(status=TxStatus.REJECTED, error=rejected)
        crash_point("after_submit")
        loop = asyncio.get_running_loop()
        waiter = _Waiter(signed, loop.create_future(), self._wait_final)
        self._waiters[signed.extrinsic_hash] = waiter
        self._ensure_follower()
        try:
            return await asyncio.wait_for(waiter.future, self._timeout)
        except TimeoutError as exc:
            raise ChainUnavailable(
                f"no inclusion of {signed.extrinsic_hash} within {self._timeout:.0f}s"
            ) from exc
        finally:
            self._waiters.pop(signed.extrinsic_hash, None)

    async def find_extrinsic(self, extrinsic_hash: str, since_block: int) -> Outcome | None:
        def scan(s: SubstrateInterface) -> Outcome | None:
            best = int(s.rpc_request("chain_getHeader", [])["result"]["number"], 16)
            for number in range(since_block, best + 1):
                found = self._scan_block(s, number, {extrinsic_hash})
                if extrinsic_hash in found:
                    return found[extrinsic_hash]
            return None

        return await self._run(scan)

    async def transfers_from(
        self, senders: Sequence[str], *, since_ms: int, after_block: int | None
    ) -> TransferScan:
        """``Balances.Transfer`` events sent by ``senders`` (see ``chain.transfers``)."""
        try:
            return await self._run(
                lambda s: scan_transfers(
                    s, list(senders), since_ms=since_ms, after_block=after_block
                )
            )
        except SubstrateRequestException as exc:
            raise ChainHistoryUnavailable(f"{self.url}: {exc}") from None

    def _ensure_follower(self) -> None:
        if self._follower is None or self._follower.done():
            self._follower = asyncio.get_running_loop().create_task(self._follow())

    async def _follow(self) -> None:
        if self._heads is None:
            self._heads = HeadSignal(self.url, finalized=self._wait_final, poll_seconds=self._poll)
        while self._waiters:
            try:
                await self._run(self._follow_once)
            except ChainUnavailable as exc:
                for waiter in list(self._waiters.values()):
                    if not waiter.future.done():
                        waiter.future.set_exception(exc)
                return
            await self._heads.wait()

    def _follow_once(self, s: SubstrateInterface) -> None:
        method = "chain_getFinalizedHead" if self._wait_final else None
        if method:
            fin_hash = s.rpc_request(method, [])["result"]
            top = int(s.rpc_request("chain_getHeader", [fin_hash])["result"]["number"], 16)
        else:
            top = int(s.rpc_request("chain_getHeader", [])["result"]["number"], 16)
        if self._scanned_to is None:
            starts = [w.signed.era_start for w in self._waiters.values() if w.signed.era_start]
            self._scanned_to = (min(starts) - 1) if starts else top - 1
        wanted = set(self._waiters)
        for number in range(self._scanned_to + 1, top + 1):
            for ext_hash, outcome in self._scan_block(s, number, wanted).items():
                waiter = self._waiters.get(ext_hash)
                if waiter and not waiter.future.done():
                    final = outcome
                    if self._wait_final and outcome.status is TxStatus.IN_BLOCK:
                        final = _with_status(outcome, TxStatus.FINALIZED)
                    waiter.future.get_loop().call_soon_threadsafe(_resolve, waiter.future, final)
            self._scanned_to = number
        for waiter in list(self._waiters.values()):
            era = waiter.signed
            expired = (
                era.era_start is not None
                and era.era_period is not None
                and top > era.era_start + era.era_period
            )
            if expired and not waiter.future.done():
                dropped = Outcome(status=TxStatus.DROPPED, error="mortality expired")
                waiter.future.get_loop().call_soon_threadsafe(_resolve, waiter.future, dropped)

    def _scan_block(
        self, s: SubstrateInterface, number: int, wanted: set[str]
    ) -> dict[str, Outcome]:
        counts = {h: w.signed.call_count for h, w in self._waiters.items()}
        block_hash = s.rpc_request("chain_getBlockHash", [number])["result"]
        raw = s.rpc_request("chain_getBlock", [block_hash])["result"]["block"]["extrinsics"]
        positions = {"0x" + _blake2_256(bytes.fromhex(x[2:])).hex(): i for i, x in enumerate(raw)}
        hits = {h: positions[h] for h in wanted if h in positions}
        if not hits:
            return {}
        events = s.get_events(block_hash)
        out: dict[str, Outcome] = {}
        for ext_hash, index in hits.items():
            mine = [e.value for e in events if e.value.get("extrinsic_idx") == index]
            out[ext_hash] = _outcome_from_events(
                s, mine, number, block_hash, counts.get(ext_hash, 1)
            )
        return out


def _rejection_text(error: object) -> str:
    """``code: message: data`` of a JSON-RPC error, whatever shape the node used."""
    if isinstance(error, dict):
        parts = [str(error.get("code", "")), str(error.get("message", ""))]
        if error.get("data") not in (None, ""):
            parts.append(str(error["data"]))
        return ": ".join(p for p in parts if p)
    return str(error)


class _PalletCheck:
    def __init__(self, s: SubstrateInterface) -> None:
        self._names = {p.name for p in s.metadata.pallets}

    def __call__(self, name: str) -> bool:
        return name in self._names


def _resolve(future: asyncio.Future[Outcome], outcome: Outcome) -> None:
    if not future.done():
        future.set_result(outcome)


def _with_status(outcome: Outcome, status: TxStatus) -> Outcome:
    return Outcome(
        status=status,
        block_number=outcome.block_number,
        block_hash=outcome.block_hash,
        items=outcome.items,
        fee=outcome.fee,
        error=outcome.error,
    )


def _blake2_256(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


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


def _encode_arg(s: SubstrateInterface, pallet: str, function: str, arg: str, value: Any) -> bytes:
    """One argument of a runtime call, encoded with the type the metadata gives it."""
    calls = s.metadata.get_metadata_pallet(pallet).calls or []
    [call] = [c for c in calls if c.name == function]
    [param] = [a for a in call.args if a.name == arg]
    encoded = s.runtime_config.create_scale_object(param.type).encode(value)
    return bytes(encoded.data)


def _hex(value: object) -> str:
    text = str(value).lower()
    return text[2:] if text.startswith("0x") else text


def _strip_call_ids(value: Any) -> None:
    """Drop ``call_index``/``call_hash`` from decoded (nested) calls in place.

    substrate-interface re-encodes the call from its value when it signs, and scalecodec
    refuses call values that carry ``call_index``; module and function names suffice."""
    if isinstance(value, dict):
        if "call_module" in value:
            value.pop("call_index", None)
            value.pop("call_hash", None)
        for item in value.values():
            _strip_call_ids(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _strip_call_ids(item)


def _call_head(s: SubstrateInterface, pallet_name: str, function: str) -> bytes:
    pallet = s.metadata.get_metadata_pallet(pallet_name)
    if pallet is None:
        raise KeyError(f"pallet {pallet_name} is not in the served metadata")
    return bytes([pallet.value["index"], _call_index(pallet, function)])


def ss58_decode_bytes(address: str) -> bytes:
    """32-byte account id of an SS58 address (any network prefix) or 0x hex."""
    if address.startswith("0x"):
        return bytes.fromhex(address[2:])
    return decode_address(address)[1]


def _call_index(pallet: Any, function: str) -> int:
    for index, call in enumerate(pallet.calls or []):
        if call.name == function:
            return int(call.value.get("index", index))
    raise KeyError(f"{pallet.name}.{function} is not in the served metadata")


def dispatch_error_text(s: SubstrateInterface, error: Any) -> str:
    """``Pallet.ErrorName`` for a module error, ``Kind.Variant`` for the other kinds that
    carry one (``Token.FundsUnavailable``, ``Arithmetic.Overflow``), else the variant name."""
    if isinstance(error, dict) and "Module" in error:
        module = error["Module"]
        if isinstance(module, tuple | list):
            index, err = module[0], module[1]
        else:
            index, err = module["index"], module["error"]
        if isinstance(err, str):
            err = int(err[2:4], 16)
        pallet = next((p for p in s.metadata.pallets if p.value["index"] == index), None)
        if pallet is None:
            return f"Module({index}, {err})"
        module_error = s.metadata.get_module_error(module_index=index, error_index=err)
        return f"{pallet.name}.{module_error.name}"
    if isinstance(error, dict) and len(error) == 1:
        kind, detail = next(iter(error.items()))
        if isinstance(detail, str):
            return f"{kind}.{detail}"
    if isinstance(error, dict):
        return "/".join(f"{k}({v})" if v not in (None, ()) else str(k) for k, v in error.items())
    return str(error)


def _outcome_from_events(
    s: SubstrateInterface,
    events: Iterable[dict[str, Any]],
    number: int,
    block_hash: str,
    call_count: int,
) -> Outcome:
    items: list[ItemResult] = []
    failed: str | None = None
    proxy_ok: tuple[bool, str | None] | None = None
    fee: int | None = None
    batch = False
    interrupted = False
    withdrawn: int | None = None
    pending: list[ChainEvent] = []
    for event in events:
        module, name = event["module_id"], event["event_id"]
        attrs: dict[str, Any] = event.get("attributes") or {}
        if (module, name) == ("Utility", "ItemCompleted"):
            items.append(ItemResult(True, None, tuple(pending)))
            pending = []
            batch = True
        elif (module, name) in (("Utility", "ItemFailed"), ("Utility", "BatchInterrupted")):
            items.append(ItemResult(False, dispatch_error_text(s, attrs["error"])))
            pending = []
            interrupted = interrupted or name == "BatchInterrupted"
            batch = True
        elif (module, name) == ("Proxy", "ProxyExecuted"):
            result = attrs["result"]
            if isinstance(result, dict) and "Err" in result:
                proxy_ok = (False, dispatch_error_text(s, result["Err"]))
            else:
                proxy_ok = (True, None)
        elif (module, name) == ("System", "ExtrinsicFailed"):
            failed = dispatch_error_text(s, attrs["dispatch_error"])
        elif (module, name) == ("TransactionPayment", "TransactionFeePaid"):
            fee = int(attrs["actual_fee"])
        elif (module, name) == ("Balances", "Withdraw") and withdrawn is None:
            withdrawn = int(attrs["amount"])  # the fee, on runtimes without TransactionFeePaid
        elif module != "System":
            pending.append(ChainEvent(module, name, attrs))
    if fee is None:
        fee = withdrawn
    if failed is not None:
        return Outcome(
            TxStatus.FAILED, number, block_hash, (ItemResult(False, failed),), fee, failed
        )
    if not batch:
        ok, error = proxy_ok or (True, None)
        items = [ItemResult(ok, error, tuple(pending) if ok else ())]
    if interrupted:
        items.extend(
            ItemResult(False, "not executed: the batch was interrupted by an earlier item")
            for _ in range(call_count - len(items))
        )
    return Outcome(TxStatus.IN_BLOCK, number, block_hash, tuple(items), fee)
