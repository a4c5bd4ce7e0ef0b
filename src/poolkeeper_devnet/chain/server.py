"""The devnet chain's JSON-RPC server: Substrate's methods over a websocket on loopback.

HTTP POST JSON-RPC is answered on the same port, as a node does (``_http``).

It answers what substrate-interface and the relay send to a real node (PROTOCOL.md §2.2,
§5, §6) with the node's result shapes and error codes, produces blocks on a timer, on
each submission (``instant``) or on request (``manual``), and offers ``devnet_*`` admin
methods to inject faults. ``DevnetChain.start`` runs it in a background thread for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scalecodec.utils.ss58 import ss58_decode
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from poolkeeper_devnet.chain import _genesis
from poolkeeper_devnet.chain._background import BackgroundLoop
from poolkeeper_devnet.chain._engine import (
    CALL_WEIGHT,
    Block,
    Chain,
    TransactionError,
)
from poolkeeper_devnet.chain._http import shared_port_connection
from poolkeeper_devnet.chain._jsonrpc import JsonRpcError
from poolkeeper_devnet.chain._runtime import Runtime, UnknownName
from poolkeeper_devnet.chain._storage import PROOF_REST_TAG, StateTooOld, leaf
from poolkeeper_devnet.chain.pallets import phala_pallet_classes
from poolkeeper_devnet.codec import (
    HASHERS,
    ScaleError,
    decode_compact,
    encode_bytes,
    encode_compact,
    hexstr,
    u32,
    unhex,
)

log = logging.getLogger("poolkeeper_devnet.chain")

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
UNKNOWN_BLOCK = 4003
MAX_STORAGE_CHANGES_BLOCKS = 10000
MAX_KEYS_PAGED = 1000

DEFAULT_RUNTIME_VERSION: dict[str, Any] = {
    "specName": "khala",
    "implName": "khala",
    "authoringVersion": 1,
    "specVersion": 1251,
    "implVersion": 0,
    "apis": [
        ["0xdf6acb689907609b", 4],
        ["0x37e397fc7c91f5e4", 2],
        ["0x40fe3ad401f8959a", 6],
        ["0xd2bc9897eed08f15", 3],
        ["0xf78b278be53f454c", 2],
        ["0xab3c0572291feb8b", 1],
        ["0xbc9d89904f5b923f", 1],
        ["0x37c8bb1350a9a2a8", 4],
        ["0xea93e3f16f3d6962", 2],
    ],
    "transactionVersion": 6,
    "stateVersion": 0,
}


RpcError = JsonRpcError
"""The server's name for the JSON-RPC error object (one class with the engine's errors)."""


def invalid_params(detail: str) -> RpcError:
    return RpcError(INVALID_PARAMS, "Invalid params", detail)


def parse_block_time(text: str | float | None) -> float | str:
    """Seconds between blocks, or ``"instant"`` / ``"manual"``."""
    if text is None:
        return 1.0
    if isinstance(text, int | float):
        return float(text)
    value = text.strip().lower()
    if value in ("instant", "manual"):
        return value
    if value.endswith("ms"):
        return float(value[:-2]) / 1000
    if value.endswith("s"):
        return float(value[:-1])
    return float(value)


def load_runtime(
    metadata_path: str | Path | None = None, runtime_name: str = "khala"
) -> tuple[Runtime, dict[str, Any]]:
    """The served metadata: a file, else the devnet's own ``_metadata.build_metadata()`` with
    the pallet indices of ``runtime_name`` (``khala`` or ``phala``)."""
    version = dict(DEFAULT_RUNTIME_VERSION)
    if metadata_path is not None:
        return shared_runtime(Path(metadata_path).read_bytes()), version
    import importlib

    try:
        module = importlib.import_module("poolkeeper_devnet.chain._metadata")
    except ModuleNotFoundError as exc:
        raise RuntimeError(
            "the devnet metadata builder is not available: pass a metadata file"
        ) from exc
    if runtime_name not in module.LAYOUTS:
        known = ", ".join(module.LAYOUTS)
        raise RuntimeError(f"unknown runtime {runtime_name!r} (known: {known})")
    metadata: bytes = module.build_metadata(runtime_name)
    built_version = module.RUNTIME_VERSIONS[runtime_name]
    if isinstance(built_version, Mapping):
        version.update(_runtime_version_json(built_version))
    return shared_runtime(metadata), version


_RUNTIMES: dict[bytes, Runtime] = {}
_RUNTIMES_LOCK = threading.Lock()


def shared_runtime(metadata: bytes) -> Runtime:
    """One ``Runtime`` per metadata per process.

    Every scalecodec decode of a metadata creates thousands of classes that live as long
    as the process; chains started in one process (tests) share them instead.
    """
    with _RUNTIMES_LOCK:
        runtime = _RUNTIMES.get(metadata)
        if runtime is None:
            runtime = _RUNTIMES[metadata] = Runtime(metadata)
        return runtime


def _runtime_version_json(version: Mapping[str, Any]) -> dict[str, Any]:
    """Accept snake_case or camelCase runtime versions; return the RPC's camelCase."""
    names = {
        "spec_name": "specName",
        "impl_name": "implName",
        "authoring_version": "authoringVersion",
        "spec_version": "specVersion",
        "impl_version": "implVersion",
        "transaction_version": "transactionVersion",
        "state_version": "stateVersion",
    }
    result: dict[str, Any] = {}
    for key, value in version.items():
        result[names.get(key, key)] = value
    apis = result.get("apis")
    if apis is not None:
        result["apis"] = [
            [api if isinstance(api, str) else hexstr(bytes(api)), int(v)] for api, v in apis
        ]
    return result


@dataclass
class Faults:
    """Injected misbehaviour, set at start or over ``devnet_*`` methods."""

    delay_ms: int = 0
    reject_next: int = 0
    reject_error: dict[str, Any] = field(
        default_factory=lambda: {
            "code": 1010,
            "message": "Invalid Transaction",
            "data": "Transaction is outdated",
        }
    )
    paused: bool = False
    drop_every_s: float = 0.0
    """Abort every connection this often (0: never), as a flaky node or proxy would."""
    fail_calls: dict[str, int] = field(default_factory=dict)
    """Method prefix → how many of the next calls matching it answer ``fail_error``."""
    fail_error: dict[str, Any] = field(
        default_factory=lambda: {"code": -32000, "message": "Client error: injected fault"}
    )


def reject_error(error: str | Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-RPC error for ``Faults.reject_error``: a 1010 data text, or a whole object."""
    if isinstance(error, str):
        return {"code": 1010, "message": "Invalid Transaction", "data": error}
    return dict(error)


class _Connection:
    """One websocket client: an ordered outbox and its subscriptions."""

    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        self.outbox: asyncio.Queue[str | None] = asyncio.Queue()
        self.subscriptions: dict[str, str] = {}
        self.watched: dict[bytes, str] = {}
        self.storage_keys: dict[str, frozenset[bytes] | None] = {}
        """Per ``state_subscribeStorage`` subscription: its keys (None: every change)."""

    def send(self, message: Mapping[str, Any]) -> None:
        self.outbox.put_nowait(json.dumps(message))

    def notify(self, method: str, subscription: str, result: Any) -> None:
        self.send(
            {
                "jsonrpc": "2.0",
                "method": method,
                "params": {"subscription": subscription, "result": result},
            }
        )


Handler = Callable[[_Connection | None, list[Any]], Awaitable[Any]]

NOTIFICATIONS = {
    "newHeads": "chain_newHead",
    "allHeads": "chain_allHead",
    "finalizedHeads": "chain_finalizedHead",
    "runtimeVersion": "state_runtimeVersion",
    "storage": "state_storage",
    "extrinsic": "author_extrinsicUpdate",
}
"""Subscription kind → the notification method a node sends for it."""

ALIASES = {
    # chain/mod.rs of Substrate's RPC API
    "subscribe_newHead": "chain_subscribeNewHeads",
    "chain_subscribeNewHead": "chain_subscribeNewHeads",
    "unsubscribe_newHead": "chain_unsubscribeNewHeads",
    "chain_unsubscribeNewHead": "chain_unsubscribeNewHeads",
    "chain_subscribeFinalisedHeads": "chain_subscribeFinalizedHeads",
    "chain_unsubscribeFinalisedHeads": "chain_unsubscribeFinalizedHeads",
    # state/mod.rs
    "chain_subscribeRuntimeVersion": "state_subscribeRuntimeVersion",
    "chain_unsubscribeRuntimeVersion": "state_unsubscribeRuntimeVersion",
    "state_callAt": "state_call",
    "state_getKeysPagedAt": "state_getKeysPaged",
    "state_getStorageHashAt": "state_getStorageHash",
    "state_getStorageSizeAt": "state_getStorageSize",
}
"""Other names a node accepts for a method (Substrate's ``aliases``)."""

METADATA_MAGIC = b"meta"


class DevnetServer:
    """The JSON-RPC front of one ``Chain``."""

    def __init__(
        self,
        chain: Chain,
        block_time: float | str = 1.0,
        chain_name: str = "Khala Devnet",
        faults: Faults | None = None,
    ) -> None:
        self.chain = chain
        self.block_time = block_time
        self.chain_name = chain_name
        self.faults = faults or Faults()
        self.connections: set[_Connection] = set()
        self.http_transports: set[asyncio.Transport] = set()
        self._ids = itertools.count(1)
        self._instant_pending = False
        self._methods: dict[str, Handler] = self._method_table()
        self.request_counts: dict[str, int] = {}
        """JSON-RPC requests served, by method (``dev_requestCounts``, for benchmarks)."""
        chain.tx_listeners.append(self._on_tx_status)
        chain.block_listeners.append(self._on_block)
        chain.finality_listeners.append(self._on_finalized)
        self._producer: asyncio.Task[None] | None = None
        self.production_failures = 0
        self.last_production_error: str | None = None
        self.preload_delay: float | None = 1.5
        """Seconds after start to decode the metadata with scalecodec in the background."""

    # ---- lifecycle -----------------------------------------------------------------
    async def run(self, host: str, port: int, started: Callable[[int], None] | None = None) -> None:
        async with serve(
            self._serve_connection,
            host,
            port,
            max_size=2**26,
            compression=None,
            # an HTTP client's connection never completes a websocket handshake
            open_timeout=None,
            # a node does not drop a client for leaving pings unanswered; a synchronous
            # client (substrate-interface) only answers them while it reads
            ping_interval=None,
            create_connection=shared_port_connection(self._handle_http, self.http_transports),
        ) as server:
            bound = next(iter(server.sockets)).getsockname()[1]
            self._producer = asyncio.create_task(self._produce_blocks())
            dropper = asyncio.create_task(self._drop_periodically())
            if started is not None:
                started(bound)
            if self.preload_delay is not None:
                self.chain.runtime.preload(delay=self.preload_delay)
            try:
                await asyncio.Future()
            finally:
                self._producer.cancel()
                dropper.cancel()
                # an open HTTP keep-alive connection would hold the server's shutdown
                for transport in list(self.http_transports):
                    transport.abort()

    async def _drop_periodically(self) -> None:
        while True:
            interval = self.faults.drop_every_s
            await asyncio.sleep(interval if interval > 0 else 0.2)
            if interval > 0 and self.faults.drop_every_s > 0:
                self.drop_connections()

    async def _produce_blocks(self) -> None:
        if isinstance(self.block_time, float) and not self.faults.paused:
            self._produce_or_count()  # a fresh chain has block #1 at once
        while True:
            interval = self.block_time
            if isinstance(interval, str):
                await asyncio.sleep(0.2)
                continue
            await asyncio.sleep(interval)
            if not self.faults.paused:
                self._produce_or_count()

    def _produce_or_count(self) -> None:
        """A timed block; a failure is logged, counted in ``devnet_status`` and the next
        interval tries again: a node keeps authoring, and a producer task that died on
        one exception would stop the chain without a word."""
        try:
            self.produce_block()
        except Exception as exc:
            self.production_failures += 1
            self.last_production_error = f"{type(exc).__name__}: {exc}"

    def produce_block(self) -> Block:
        try:
            return self.chain.produce_block()
        except Exception:
            log.exception("block production failed")
            raise

    def _schedule_instant_block(self) -> None:
        if self.block_time != "instant" or self._instant_pending:
            return
        self._instant_pending = True

        def produce() -> None:
            self._instant_pending = False
            if not self.faults.paused and self.chain.pool:
                self._produce_or_count()

        asyncio.get_running_loop().call_soon(produce)

    async def _serve_connection(self, ws: ServerConnection) -> None:
        connection = _Connection(ws)
        self.connections.add(connection)
        writer = asyncio.create_task(self._write(connection))
        try:
            async for message in ws:
                response = await self.handle_message(connection, message)
                if response is not None:
                    connection.outbox.put_nowait(response)
        except ConnectionClosed:
            pass
        finally:
            self.connections.discard(connection)
            connection.outbox.put_nowait(None)
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await writer

    async def _write(self, connection: _Connection) -> None:
        while True:
            message = await connection.outbox.get()
            if message is None:
                return
            try:
                await connection.ws.send(message)
            except ConnectionClosed:
                return

    def open_transports(self) -> list[asyncio.Transport]:
        """Every client connection now open, websocket and HTTP."""
        return [c.ws.transport for c in self.connections] + list(self.http_transports)

    def drop_connections(self) -> int:
        return self._abort(self.open_transports())

    def _drop_soon(self) -> int:
        """Abort the connections open now, shortly (after the current answer is sent);
        connections opened meanwhile are left alone."""
        transports = self.open_transports()
        asyncio.get_running_loop().call_later(0.05, self._abort, transports)
        return len(transports)

    @staticmethod
    def _abort(transports: list[asyncio.Transport]) -> int:
        for transport in transports:
            transport.abort()
        return len(transports)

    async def _handle_http(self, body: bytes) -> str | None:
        return await self.handle_message(None, body)

    # ---- JSON-RPC ------------------------------------------------------------------
    async def handle_message(self, connection: _Connection | None, text: str | bytes) -> str | None:
        try:
            request = json.loads(text)
        except (ValueError, UnicodeDecodeError):
            return json.dumps(_error_response(None, RpcError(PARSE_ERROR, "Parse error")))
        if self.faults.delay_ms:
            await asyncio.sleep(self.faults.delay_ms / 1000)
        if isinstance(request, list):
            if not request:
                return json.dumps(
                    _error_response(None, RpcError(INVALID_REQUEST, "Invalid request"))
                )
            responses = [await self._handle_one(connection, item) for item in request]
            return json.dumps([r for r in responses if r is not None])
        response = await self._handle_one(connection, request)
        return None if response is None else json.dumps(response)

    async def _handle_one(self, connection: _Connection | None, request: Any) -> Any:
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            return _error_response(None, RpcError(INVALID_REQUEST, "Invalid request"))
        request_id = request.get("id")
        method = request["method"]
        params = request.get("params", [])
        if params is None:
            params = []
        if isinstance(params, dict):
            params = list(params.values())
        if not isinstance(params, list):
            return _error_response(request_id, invalid_params("params must be an array"))
        handler = self._methods.get(method)
        self.request_counts[method] = self.request_counts.get(method, 0) + 1
        if handler is None:
            return _error_response(request_id, RpcError(METHOD_NOT_FOUND, "Method not found"))
        failing = self._failing_prefix(method)
        if failing is not None:
            self.faults.fail_calls[failing] -= 1
            error = self.faults.fail_error
            return _error_response(
                request_id, RpcError(int(error["code"]), str(error["message"]), error.get("data"))
            )
        try:
            result = await handler(connection, params)
        except JsonRpcError as exc:  # the server's own and the pool's (TransactionError)
            return _error_response(request_id, exc)
        except (ScaleError, ValueError, TypeError, KeyError, IndexError) as exc:
            return _error_response(request_id, invalid_params(str(exc)))
        except StateTooOld as exc:
            return _error_response(request_id, RpcError(UNKNOWN_BLOCK, f"Client error: {exc}"))
        except Exception as exc:
            log.exception("internal error in %s", method)
            return _error_response(request_id, RpcError(INTERNAL_ERROR, "Internal error", str(exc)))
        if "id" not in request:
            return None
        return {"jsonrpc": "2.0", "result": result, "id": request_id}

    def _failing_prefix(self, method: str) -> str | None:
        """The ``devnet_failNext`` prefix this call is counted against, if any."""
        if method.startswith("devnet_"):
            return None
        for prefix, left in self.faults.fail_calls.items():
            if left > 0 and method.startswith(prefix):
                return prefix
        return None

    def _method_table(self) -> dict[str, Handler]:
        table: dict[str, Handler] = {}
        for name in dir(self):
            if name.startswith("rpc_"):
                table[name[4:]] = getattr(self, name)
        for alias, target in ALIASES.items():
            table[alias] = table[target]
        return table

    # ---- helpers -------------------------------------------------------------------
    def _block_at(self, params: list[Any], index: int) -> Block:
        value = params[index] if len(params) > index else None
        if value is None:
            return self.chain.head
        block = self.chain.block(unhex(value))
        if block is None:
            raise RpcError(UNKNOWN_BLOCK, f"Client error: UnknownBlock: header not found: {value}")
        return block

    def _storage_number(self, block: Block) -> int | None:
        return None if block.number == self.chain.head.number else block.number

    def _get(self, key: bytes, block: Block) -> bytes | None:
        return self.chain.storage.get(key, self._storage_number(block))

    def _subscribe(self, connection: _Connection | None, kind: str) -> str:
        connection = _websocket_only(connection)
        subscription = f"{next(self._ids):016x}"
        connection.subscriptions[subscription] = kind
        return subscription

    def _unsubscribe(
        self, connection: _Connection | None, params: list[Any], kind: str | None = None
    ) -> bool:
        """Drop a subscription of ``kind``; False (as a node answers) for an unknown id or
        another kind's id."""
        connection = _websocket_only(connection)
        if not params:
            raise invalid_params("missing subscription id")
        subscription = str(params[0])
        if kind is not None and connection.subscriptions.get(subscription) != kind:
            return False
        connection.storage_keys.pop(subscription, None)
        return connection.subscriptions.pop(subscription, None) is not None

    def _subscribe_with_first(self, connection: _Connection | None, kind: str, first: Any) -> str:
        """Subscribe, and notify ``first`` right after the answer (a node sends the current
        head, version or values first)."""
        subscription = self._subscribe(connection, kind)
        assert connection is not None
        asyncio.get_running_loop().call_soon(
            connection.notify, NOTIFICATIONS[kind], subscription, first
        )
        return subscription

    # ---- chain events → subscribers ------------------------------------------------
    def _on_block(self, block: Block) -> None:
        header = block.header.to_json()
        for connection in list(self.connections):
            for subscription, kind in list(connection.subscriptions.items()):
                if kind in ("newHeads", "allHeads"):
                    connection.notify(NOTIFICATIONS[kind], subscription, header)
                elif kind == "storage":
                    changes = self._watched_changes(
                        block, connection.storage_keys.get(subscription)
                    )
                    if changes:  # a node sends a change set only when a watched key changed
                        result = {"block": hexstr(block.hash), "changes": changes}
                        connection.notify(NOTIFICATIONS[kind], subscription, result)

    @staticmethod
    def _watched_changes(block: Block, keys: frozenset[bytes] | None) -> list[list[str | None]]:
        return [
            [hexstr(key), None if value is None else hexstr(value)]
            for key, value in sorted(block.changes.items())
            if keys is None or key in keys
        ]

    def _on_finalized(self, block: Block) -> None:
        header = block.header.to_json()
        for connection in list(self.connections):
            for subscription, kind in list(connection.subscriptions.items()):
                if kind == "finalizedHeads":
                    connection.notify("chain_finalizedHead", subscription, header)

    def _on_tx_status(self, tx_hash: bytes, status: Any) -> None:
        for connection in list(self.connections):
            subscription = connection.watched.get(tx_hash)
            if subscription is None or subscription not in connection.subscriptions:
                continue
            connection.notify("author_extrinsicUpdate", subscription, status)
            if status in ("invalid", "dropped") or (
                isinstance(status, dict) and "finalized" in status
            ):
                connection.watched.pop(tx_hash, None)
                connection.subscriptions.pop(subscription, None)

    # ---- system --------------------------------------------------------------------
    async def rpc_system_chain(self, c: _Connection | None, p: list[Any]) -> Any:
        return self.chain_name

    async def rpc_system_name(self, c: _Connection | None, p: list[Any]) -> Any:
        return "poolkeeper-devnet"

    async def rpc_system_version(self, c: _Connection | None, p: list[Any]) -> Any:
        return "0.1.0"

    async def rpc_system_chainType(self, c: _Connection | None, p: list[Any]) -> Any:
        return "Development"

    async def rpc_system_properties(self, c: _Connection | None, p: list[Any]) -> Any:
        return {"ss58Format": 30, "tokenDecimals": 12, "tokenSymbol": "PHA"}

    async def rpc_system_health(self, c: _Connection | None, p: list[Any]) -> Any:
        return {"peers": 0, "isSyncing": False, "shouldHavePeers": False}

    async def rpc_system_syncState(self, c: _Connection | None, p: list[Any]) -> Any:
        head = self.chain.head.number
        return {"startingBlock": 0, "currentBlock": head, "highestBlock": head}

    async def rpc_system_accountNextIndex(self, c: _Connection | None, p: list[Any]) -> Any:
        return self.chain.pool_nonce(_account_param(p, 0))

    async def rpc_rpc_methods(self, c: _Connection | None, p: list[Any]) -> Any:
        return {"version": 1, "methods": sorted(self._methods)}

    # ---- chain ---------------------------------------------------------------------
    async def rpc_chain_getBlockHash(self, c: _Connection | None, p: list[Any]) -> Any:
        value = p[0] if p else None
        if isinstance(value, list):
            return [self._hash_of(v) for v in value]
        return self._hash_of(value)

    def _hash_of(self, value: Any) -> str | None:
        if value is None:
            return hexstr(self.chain.head.hash)
        number = int(value, 16) if isinstance(value, str) else int(value)
        block = self.chain.block(number)
        return None if block is None else hexstr(block.hash)

    async def rpc_chain_getHead(self, c: _Connection | None, p: list[Any]) -> Any:
        return hexstr(self.chain.head.hash)

    async def rpc_chain_getFinalizedHead(self, c: _Connection | None, p: list[Any]) -> Any:
        return hexstr(self.chain.blocks[self.chain.finalized].hash)

    async def rpc_chain_getFinalisedHead(self, c: _Connection | None, p: list[Any]) -> Any:
        return await self.rpc_chain_getFinalizedHead(c, p)

    async def rpc_chain_getHeader(self, c: _Connection | None, p: list[Any]) -> Any:
        block = self.chain.block(unhex(p[0])) if p and p[0] is not None else self.chain.head
        return None if block is None else block.header.to_json()

    async def rpc_chain_getBlock(self, c: _Connection | None, p: list[Any]) -> Any:
        block = self.chain.block(unhex(p[0])) if p and p[0] is not None else self.chain.head
        if block is None:
            return None
        justifications = None
        if block.number <= self.chain.finalized and block.justification is not None:
            justifications = [["FRNK", hexstr(block.justification)]]
        return {
            "block": {
                "header": block.header.to_json(),
                "extrinsics": [hexstr(xt) for xt in block.extrinsics],
            },
            "justifications": justifications,
        }

    # Each head subscription starts with the current (best or finalized) head, as
    # Substrate's ``subscribe_headers`` does.
    async def rpc_chain_subscribeNewHeads(self, c: _Connection | None, p: list[Any]) -> Any:
        return self._subscribe_with_first(c, "newHeads", self.chain.head.header.to_json())

    async def rpc_chain_subscribeAllHeads(self, c: _Connection | None, p: list[Any]) -> Any:
        return self._subscribe_with_first(c, "allHeads", self.chain.head.header.to_json())

    async def rpc_chain_subscribeFinalizedHeads(self, c: _Connection | None, p: list[Any]) -> Any:
        header = self.chain.blocks[self.chain.finalized].header.to_json()
        return self._subscribe_with_first(c, "finalizedHeads", header)

    async def rpc_chain_unsubscribeNewHeads(self, c: _Connection | None, p: list[Any]) -> Any:
        return self._unsubscribe(c, p, "newHeads")

    async def rpc_chain_unsubscribeAllHeads(self, c: _Connection | None, p: list[Any]) -> Any:
        return self._unsubscribe(c, p, "allHeads")

    async def rpc_chain_unsubscribeFinalizedHeads(self, c: _Connection | None, p: list[Any]) -> Any:
        return self._unsubscribe(c, p, "finalizedHeads")

    # ---- state subscriptions ---------------------------------------------------------
    async def rpc_state_subscribeRuntimeVersion(self, c: _Connection | None, p: list[Any]) -> Any:
        # the devnet has no runtime upgrades: the current version is the only notification
        return self._subscribe_with_first(c, "runtimeVersion", self.chain.runtime_version)

    async def rpc_state_unsubscribeRuntimeVersion(self, c: _Connection | None, p: list[Any]) -> Any:
        return self._unsubscribe(c, p, "runtimeVersion")

    async def rpc_state_subscribeStorage(self, c: _Connection | None, p: list[Any]) -> Any:
        """The watched keys' values at the best block, then one change set per block that
        changes one of them (no keys: every change of every block, as a node allows
        on a local, unsafe-methods endpoint)."""
        c = _websocket_only(c)
        raw_keys = p[0] if p else None
        if raw_keys is not None and not isinstance(raw_keys, list):
            raise invalid_params("keys must be an array")
        keys = None if raw_keys is None else [unhex(k) for k in raw_keys]
        subscription = self._subscribe(c, "storage")
        c.storage_keys[subscription] = None if keys is None else frozenset(keys)
        if keys:
            head = self.chain.head
            initial = {
                "block": hexstr(head.hash),
                "changes": [[hexstr(k), _hex_or_none(self._get(k, head))] for k in keys],
            }
            asyncio.get_running_loop().call_soon(
                c.notify, NOTIFICATIONS["storage"], subscription, initial
            )
        return subscription

    async def rpc_state_unsubscribeStorage(self, c: _Connection | None, p: list[Any]) -> Any:
        return self._unsubscribe(c, p, "storage")

    # ---- state ---------------------------------------------------------------------
    async def rpc_state_getMetadata(self, c: _Connection | None, p: list[Any]) -> Any:
        self._block_at(p, 0)
        return hexstr(self.chain.runtime.metadata_bytes)

    async def rpc_state_getRuntimeVersion(self, c: _Connection | None, p: list[Any]) -> Any:
        self._block_at(p, 0)
        return self.chain.runtime_version

    async def rpc_chain_getRuntimeVersion(self, c: _Connection | None, p: list[Any]) -> Any:
        return await self.rpc_state_getRuntimeVersion(c, p)

    async def rpc_state_getStorage(self, c: _Connection | None, p: list[Any]) -> Any:
        block = self._block_at(p, 1)
        value = self._get(unhex(p[0]), block)
        return None if value is None else hexstr(value)

    async def rpc_state_getStorageAt(self, c: _Connection | None, p: list[Any]) -> Any:
        return await self.rpc_state_getStorage(c, p)

    async def rpc_state_getStorageHash(self, c: _Connection | None, p: list[Any]) -> Any:
        from poolkeeper_devnet.codec import blake2_256

        block = self._block_at(p, 1)
        value = self._get(unhex(p[0]), block)
        return None if value is None else hexstr(blake2_256(value))

    async def rpc_state_getStorageSize(self, c: _Connection | None, p: list[Any]) -> Any:
        block = self._block_at(p, 1)
        value = self._get(unhex(p[0]), block)
        return None if value is None else len(value)

    async def rpc_state_queryStorageAt(self, c: _Connection | None, p: list[Any]) -> Any:
        block = self._block_at(p, 1)
        keys = p[0]
        if not isinstance(keys, list):
            raise invalid_params("keys must be an array")
        changes = []
        for key in keys:
            value = self._get(unhex(key), block)
            changes.append([key, None if value is None else hexstr(value)])
        return [{"block": hexstr(block.hash), "changes": changes}]

    async def rpc_state_getKeysPaged(self, c: _Connection | None, p: list[Any]) -> Any:
        prefix = unhex(p[0]) if p and p[0] is not None else b""
        count = int(p[1]) if len(p) > 1 else MAX_KEYS_PAGED
        if count > MAX_KEYS_PAGED:
            raise invalid_params(f"count exceeds maximum value. value: {count}, max: 1000")
        start = unhex(p[2]) if len(p) > 2 and p[2] is not None else None
        block = self._block_at(p, 3)
        keys = self.chain.storage.keys_paged(prefix, count, start, self._storage_number(block))
        return [hexstr(k) for k in keys]

    async def rpc_state_getKeys(self, c: _Connection | None, p: list[Any]) -> Any:
        block = self._block_at(p, 1)
        keys = self.chain.storage.keys(unhex(p[0]), self._storage_number(block))
        return [hexstr(k) for k in keys]

    async def rpc_state_getPairs(self, c: _Connection | None, p: list[Any]) -> Any:
        block = self._block_at(p, 1)
        prefix = unhex(p[0])
        if block.number == 0:
            pairs = sorted(
                (k, v) for k, v in self.chain.genesis_pairs.items() if k.startswith(prefix)
            )
        else:
            pairs = self.chain.storage.pairs(prefix, self._storage_number(block))
        return [[hexstr(k), hexstr(v)] for k, v in pairs]

    async def rpc_state_getReadProof(self, c: _Connection | None, p: list[Any]) -> Any:
        block = self._block_at(p, 1)
        proof = []
        rest = self._accumulator_at(block)
        for key_hex in p[0]:
            key = unhex(key_hex)
            if block.number == 0:
                value = self.chain.genesis_pairs.get(key)
            else:
                value = self._get(key, block)
            option = b"\x00" if value is None else b"\x01" + encode_bytes(value)
            proof.append(hexstr(encode_bytes(key) + option))
            if value is not None:
                rest -= leaf(key, value)
        proof.append(hexstr(PROOF_REST_TAG + (rest % (1 << 256)).to_bytes(32, "little")))
        return {"at": hexstr(block.hash), "proof": proof}

    def _accumulator_at(self, block: Block) -> int:
        if block.number == 0:
            return sum(leaf(k, v) for k, v in self.chain.genesis_pairs.items())
        return self.chain.storage.accumulator(self._storage_number(block))

    async def rpc_state_call(self, c: _Connection | None, p: list[Any]) -> Any:
        method = p[0]
        data = unhex(p[1]) if len(p) > 1 and p[1] is not None else b""
        self._block_at(p, 2)
        if method == "AccountNonceApi_account_nonce":
            if len(data) != 32:
                raise invalid_params("AccountId must be 32 bytes")
            return hexstr(u32(self.chain.account_nonce(hexstr(data))))
        if method == "TransactionPaymentApi_query_info":
            length, offset = decode_compact(data, 0)
            raw = data[: offset + length]
            xt = self.chain.decode_extrinsic(raw, check_signature=False)
            return hexstr(self._encode_dispatch_info(xt.fee))
        if method == "TransactionPaymentApi_query_fee_details":
            length, offset = decode_compact(data, 0)
            xt = self.chain.decode_extrinsic(data[: offset + length], check_signature=False)
            from poolkeeper_devnet.codec import u128

            return hexstr(b"\x01" + u128(xt.fee) + u128(0) + u128(0) + u128(xt.tip))
        if method == "Metadata_metadata":
            return hexstr(encode_bytes(self.chain.runtime.metadata_bytes))
        if method == "Metadata_metadata_versions":
            return hexstr(encode_compact(1) + u32(self._metadata_version()))
        if method == "Metadata_metadata_at_version":
            if len(data) != 4:
                raise invalid_params("version must be a u32")
            if int.from_bytes(data, "little") != self._metadata_version():
                return "0x00"  # None: the runtime has no metadata of that version
            return hexstr(b"\x01" + encode_bytes(self.chain.runtime.metadata_bytes))
        if method == "Core_version":
            raise RpcError(-32000, "Client error: Execution failed: Core_version not simulated")
        raise RpcError(
            -32000, f"Client error: Execution failed: Exported method {method} is not found"
        )

    def _metadata_version(self) -> int:
        """The served metadata's version (the byte after the ``meta`` magic): the only one
        ``Metadata_metadata_versions`` lists, since the devnet cannot convert it."""
        metadata = self.chain.runtime.metadata_bytes
        return metadata[4] if metadata[:4] == METADATA_MAGIC else 14

    def _encode_dispatch_info(self, fee: int) -> bytes:
        """RuntimeDispatchInfo as scalecodec's runtime-API registry defines it.

        That definition names the type ``Weight``; it is aliased to the metadata's
        ``sp_weights::weight_v2::Weight`` (a client needs the same alias to decode it).
        """
        config = self.chain.runtime.config
        api = config.type_registry.get("runtime_api", {}).get("TransactionPaymentApi", {})
        config.update_type_registry_types(api.get("types", {}))
        if config.get_decoder_class("Weight") is None:
            config.update_type_registry_types({"Weight": "sp_weights::weight_v2::Weight"})
        obj = config.create_scale_object("RuntimeDispatchInfo")
        value = {"weight": CALL_WEIGHT, "class": "Normal", "partialFee": fee}
        return bytes(obj.encode(value).data)

    async def rpc_payment_queryInfo(self, c: _Connection | None, p: list[Any]) -> Any:
        xt = self.chain.decode_extrinsic(unhex(p[0]), check_signature=False)
        # A node's RPC answers the legacy u64 weight (``OldWeight``: ref_time only), while
        # the runtime API (state_call above) carries the two-dimensional one.
        return {"weight": CALL_WEIGHT["ref_time"], "class": "normal", "partialFee": str(xt.fee)}

    # ---- author --------------------------------------------------------------------
    def _submit(self, raw_hex: Any) -> tuple[bytes, str]:
        raw = unhex(raw_hex) if isinstance(raw_hex, str) else b""
        if self.faults.reject_next > 0:
            self.faults.reject_next -= 1
            error = self.faults.reject_error
            raise TransactionError(int(error["code"]), str(error["message"]), error.get("data"))
        xt, status = self.chain.submit(raw)
        if status == "ready":
            self._schedule_instant_block()
        return xt.hash, status

    async def rpc_author_submitExtrinsic(self, c: _Connection | None, p: list[Any]) -> Any:
        if not p:
            raise invalid_params("missing extrinsic")
        tx_hash, _ = self._submit(p[0])
        return hexstr(tx_hash)

    async def rpc_author_submitAndWatchExtrinsic(self, c: _Connection | None, p: list[Any]) -> Any:
        c = _websocket_only(c)
        if not p:
            raise invalid_params("missing extrinsic")
        tx_hash, status = self._submit(p[0])
        subscription = self._subscribe(c, "extrinsic")
        c.watched[tx_hash] = subscription
        asyncio.get_running_loop().call_soon(
            c.notify, NOTIFICATIONS["extrinsic"], subscription, status
        )
        return subscription

    async def rpc_author_unwatchExtrinsic(self, c: _Connection | None, p: list[Any]) -> Any:
        c = _websocket_only(c)
        if p:
            for tx_hash, subscription in list(c.watched.items()):
                if subscription == p[0]:
                    del c.watched[tx_hash]
        return self._unsubscribe(c, p, "extrinsic")

    async def rpc_author_pendingExtrinsics(self, c: _Connection | None, p: list[Any]) -> Any:
        return [hexstr(xt.raw) for xt in self.chain.pool.values()]

    # ---- grandpa / pha -------------------------------------------------------------
    async def rpc_grandpa_proveFinality(self, c: _Connection | None, p: list[Any]) -> Any:
        value = p[0]
        number = int(value, 16) if isinstance(value, str) else int(value)
        proof = self.chain.finality_proof(number)
        return None if proof is None else hexstr(proof)

    async def rpc_pha_getStorageChanges(self, c: _Connection | None, p: list[Any]) -> Any:
        first = self._block_at(p, 0)
        last = self._block_at(p, 1)
        if last.number < first.number:
            raise invalid_params("to is before from")
        if last.number - first.number + 1 > MAX_STORAGE_CHANGES_BLOCKS:
            raise invalid_params("at most 10000 blocks per request")
        result = []
        for number in range(first.number, last.number + 1):
            block = self.chain.blocks.get(number)
            if block is None:
                raise RpcError(UNKNOWN_BLOCK, f"Client error: block {number} is pruned")
            result.append(
                {
                    "blockHash": hexstr(block.hash),
                    "mainStorageChanges": [
                        [hexstr(k), None if v is None else hexstr(v)]
                        for k, v in sorted(block.changes.items())
                    ],
                    "childStorageChanges": [],
                }
            )
        return result

    async def rpc_pha_getMqNextSequence(self, c: _Connection | None, p: list[Any]) -> Any:
        origin = unhex(p[0])
        runtime = self.chain.runtime
        try:
            entry = runtime.storage("PhalaMq", "OffchainIngress")
        except UnknownName as exc:
            raise RpcError(-32000, "PhalaMq is not in this runtime") from exc
        key = entry.prefix + HASHERS[entry.hashers[0]](origin)
        stored = self.chain.storage.get(key)
        sequence = int.from_bytes(stored, "little") if stored else 0
        pending = set()
        for xt in self.chain.pool.values():
            if (xt.call.get("call_module"), xt.call.get("call_function")) != (
                "PhalaMq",
                "sync_offchain_message",
            ):
                continue
            args = {a["name"]: a["value"] for a in xt.call.get("call_args", [])}
            signed = args.get("signed_message") or {}
            try:
                sender = runtime.encode(entry.key_types[0], signed["message"]["sender"])
            except (ScaleError, KeyError, TypeError):
                continue
            if sender == origin:
                pending.add(int(signed.get("sequence", -1)))
        while sequence in pending:
            sequence += 1
        return sequence

    # ---- devnet admin --------------------------------------------------------------
    async def rpc_dev_requestCounts(self, c: _Connection | None, p: list[Any]) -> Any:
        """JSON-RPC requests served so far, by method (this one included)."""
        return dict(self.request_counts)

    async def rpc_dev_newBlock(self, c: _Connection | None, p: list[Any]) -> Any:
        options = p[0] if p and isinstance(p[0], dict) else {}
        count = int(options.get("count", 1))
        block = self.chain.head
        for _ in range(max(count, 1)):
            block = self.produce_block()
        return hexstr(block.hash)

    async def rpc_devnet_newBlock(self, c: _Connection | None, p: list[Any]) -> Any:
        return await self.rpc_dev_newBlock(c, p)

    async def rpc_devnet_pauseBlocks(self, c: _Connection | None, p: list[Any]) -> Any:
        self.faults.paused = True
        return True

    async def rpc_devnet_resumeBlocks(self, c: _Connection | None, p: list[Any]) -> Any:
        self.faults.paused = False
        return True

    async def rpc_devnet_setDelay(self, c: _Connection | None, p: list[Any]) -> Any:
        self.faults.delay_ms = int(p[0])
        return True

    async def rpc_devnet_rejectNext(self, c: _Connection | None, p: list[Any]) -> Any:
        self.faults.reject_next = int(p[0])
        if len(p) > 1 and p[1] is not None:
            self.faults.reject_error = reject_error(p[1])
        return True

    async def rpc_devnet_failNext(self, c: _Connection | None, p: list[Any]) -> Any:
        """``(n, method_prefix="", error?)``: the next ``n`` calls whose method starts with
        the prefix answer a JSON-RPC error (``{code, message, data?}``; default -32000);
        ``(0)`` clears every prefix."""
        prefix = str(p[1]) if len(p) > 1 and p[1] is not None else ""
        if int(p[0]) <= 0 and len(p) < 2:
            self.faults.fail_calls.clear()  # ``devnet_failNext(0)``: no injected failures
        self.faults.fail_calls[prefix] = max(int(p[0]), 0)
        if len(p) > 2 and p[2] is not None:
            self.faults.fail_error = dict(p[2])
        return True

    async def rpc_devnet_setDropEvery(self, c: _Connection | None, p: list[Any]) -> Any:
        self.faults.drop_every_s = float(p[0]) if p and p[0] is not None else 0.0
        return True

    async def rpc_devnet_dropConnections(self, c: _Connection | None, p: list[Any]) -> Any:
        return self._drop_soon()

    async def rpc_devnet_restart(self, c: _Connection | None, p: list[Any]) -> Any:
        keep_state = bool(p[0]) if p else True
        if keep_state:
            self.chain.pool.clear()
        else:
            self.chain.reset()
        self._drop_soon()
        return hexstr(self.chain.head.hash)

    async def rpc_devnet_setBlockTime(self, c: _Connection | None, p: list[Any]) -> Any:
        self.block_time = parse_block_time(p[0])
        return True

    async def rpc_devnet_advanceTime(self, c: _Connection | None, p: list[Any]) -> Any:
        self.chain.time_offset_ms += int(float(p[0]) * 1000)
        return self.chain.now_ms()

    async def rpc_devnet_status(self, c: _Connection | None, p: list[Any]) -> Any:
        return {
            "head": self.chain.head.number,
            "finalized": self.chain.finalized,
            "pool": len(self.chain.pool),
            "blockTime": self.block_time,
            "paused": self.faults.paused,
            "delayMs": self.faults.delay_ms,
            "rejectNext": self.faults.reject_next,
            "dropEverySeconds": self.faults.drop_every_s,
            "failNext": {k: v for k, v in self.faults.fail_calls.items() if v > 0},
            "connections": len(self.connections),
            "productionFailures": self.production_failures,
            "lastProductionError": self.last_production_error,
        }


def _websocket_only(connection: _Connection | None) -> _Connection:
    """Subscriptions need a websocket; over HTTP a node (jsonrpsee) answers Internal error."""
    if connection is None:
        raise RpcError(INTERNAL_ERROR, "Internal error")
    return connection


def _hex_or_none(value: bytes | None) -> str | None:
    return None if value is None else hexstr(value)


def _error_response(request_id: Any, error: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": error.to_json(), "id": request_id}


def _account_param(params: list[Any], index: int) -> str:
    if len(params) <= index or not isinstance(params[index], str):
        raise invalid_params("missing account")
    text = params[index]
    if text.startswith("0x"):
        if len(text) != 66:
            raise invalid_params("account must be 32 bytes")
        return str(text.lower())
    try:
        return "0x" + str(ss58_decode(text))
    except ValueError as exc:
        raise invalid_params(f"invalid account: {exc}") from exc


@dataclass
class DevnetChain:
    """A running devnet chain in a background thread (for tests and embedding)."""

    url: str
    port: int
    server: DevnetServer
    _background: BackgroundLoop

    @property
    def chain(self) -> Chain:
        return self.server.chain

    @classmethod
    def start(
        cls,
        genesis: str | Path | Mapping[str, Any] | None = None,
        *,
        port: int = 0,
        block_time: float | str | None = None,
        finality_lag: int | None = None,
        metadata: str | Path | None = None,
        runtime: tuple[Runtime, dict[str, Any]] | None = None,
        faults: Faults | None = None,
        runtime_name: str = "khala",
    ) -> DevnetChain:
        """Start on 127.0.0.1 (a free port unless given) and return once it listens."""
        config = (
            _genesis.normalize(dict(genesis))
            if isinstance(genesis, Mapping)
            else _genesis.load(genesis)
        )
        served = runtime if runtime is not None else load_runtime(metadata, runtime_name)
        # In-process, the caller's scalecodec (a client) runs concurrently with ours: decode
        # the metadata now, before any client exists, rather than in the background.
        served[0].load_scalecodec()
        chain = Chain(
            served[0],
            served[1],
            config,
            pallet_classes=phala_pallet_classes(),
            finality_lag=config.get("finality_lag", 2) if finality_lag is None else finality_lag,
        )
        server = DevnetServer(
            chain,
            parse_block_time(block_time if block_time is not None else config.get("block_time")),
            chain_name=str(config.get("chain_name", "Khala Devnet")),
            faults=faults,
        )
        background, bound = BackgroundLoop.start(
            "devnet chain",
            lambda on_started: server.run("127.0.0.1", port, on_started),
            [server],
        )
        return cls(f"ws://127.0.0.1:{bound[0]}", bound[0], server, background)

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the server's loop (the only thread that may touch the chain)."""
        return self._background.call(fn)

    def new_block(self) -> Block:
        result: Block = self.call(self.server.produce_block)
        return result

    def stop(self) -> None:
        self._background.stop()

    def __enter__(self) -> DevnetChain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
