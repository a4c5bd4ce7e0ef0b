"""The pRuntime port and its httpx adapter.

Relays and observers talk to pRuntimes only through ``PRuntimeClient`` so tests can
substitute it. ``HttpPRuntimeClient`` is the real adapter: ``POST
{base}/prpc/PhactoryAPI.<Method>`` with protobuf bodies (PROTOCOL.md §1.1), GetInfo
also in JSON mode for diagnostics. A pool manager talks to thousands of pRuntimes, so
every client built from one ``PRuntimeTransport`` shares its keep-alive connections
(a lean HTTP/1.1 pool for ``http://``, httpx for ``https://``) and a semaphore that
bounds requests in flight.

Failures become the ``poolkeeper.errors`` tree: unreachable, timeouts and 503 are
``PRuntimeUnavailable``; "RCU in progress" is ``PRuntimeBusy`` (retry soon); every
other error answer is ``PRuntimeCallFailed`` (or a subclass) carrying the HTTP status
and the decoded ``PrpcError`` text.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Literal, Protocol, Self, TypeVar

import httpx

from poolkeeper.errors import (
    PRuntimeAlreadyInitialized,
    PRuntimeBusy,
    PRuntimeCallFailed,
    PRuntimeNotInitialized,
    PRuntimeSyncRejected,
    PRuntimeUnavailable,
)
from poolkeeper.pruntime._budget import ByteBudget
from poolkeeper.pruntime._http1 import Http1Pool
from poolkeeper.pruntime._wire import ProtoMessage, WireError
from poolkeeper.pruntime.messages import (
    Blocks,
    ChainState,
    CombinedHeadersToSync,
    Empty,
    GetEgressMessagesResponse,
    GetEndpointResponse,
    GetRuntimeInfoRequest,
    HeadersSyncedTo,
    HeadersToSync,
    InitRuntimeRequest,
    InitRuntimeResponse,
    ParaHeadersToSync,
    PhactoryInfo,
    PrpcError,
    SignEndpointsRequest,
    SyncedTo,
)

__all__ = ["HttpPRuntimeClient", "PRuntimeClient", "PRuntimeTransport"]

SYNC_ERROR_NAMES = frozenset(
    {
        "BlockNumberMismatch",
        "ChainModeMismatch",
        "EmptyRequest",
        "HeaderHashMismatch",
        "HeaderValidateFailed",
        "MissingJustification",
        "NoStateRoot",
        "RelaychainHeaderNotSynced",
        "StateRootMismatch",
        "StorageProofFailed",
    }
)
_RCU_TEXT = "RCU in progress"

R = TypeVar("R", bound=ProtoMessage)


class PRuntimeClient(Protocol):
    """What poolkeeper asks of one pRuntime. ``bytes`` arguments are SCALE payloads."""

    @property
    def url(self) -> str:
        """The pRuntime's base URL (without ``/prpc``)."""
        ...

    async def get_info(self) -> PhactoryInfo:
        """Counters, identity and registration state."""
        ...

    async def init_runtime(self, request: InitRuntimeRequest) -> InitRuntimeResponse:
        """Initialize the runtime (only once per pRuntime)."""
        ...

    async def get_runtime_info(
        self, *, force_refresh_ra: bool = False, encoded_operator: bytes | None = None
    ) -> InitRuntimeResponse:
        """Registration info and, after the first dispatched block, the attestation."""
        ...

    async def sync_header(
        self, encoded_headers: bytes, encoded_authority_set_change: bytes | None = None
    ) -> int:
        """Feed relay (or solo) headers; returns the last number synced."""
        ...

    async def sync_para_header(self, encoded_headers: bytes, proof: Sequence[bytes]) -> int:
        """Feed parachain headers with their ``Paras.Heads`` proof."""
        ...

    async def sync_combined_headers(self, request: CombinedHeadersToSync) -> HeadersSyncedTo:
        """Feed relay then parachain headers in one call."""
        ...

    async def dispatch_blocks(self, encoded_blocks: bytes) -> int:
        """Feed blocks' storage changes; returns the last block dispatched."""
        ...

    async def get_egress_messages(self) -> bytes:
        """SCALE ``Vec<(MessageOrigin, Vec<SignedMessage>)>`` waiting to go on chain."""
        ...

    async def load_chain_state(self, block_number: int, encoded_state: bytes) -> None:
        """Fast sync: load the whole storage at ``block_number``."""
        ...

    async def get_endpoint_info(self) -> GetEndpointResponse:
        """The signed endpoint payload, if the worker has one."""
        ...

    async def sign_endpoint_info(self, encoded_endpoints: bytes) -> GetEndpointResponse:
        """Have the worker sign SCALE ``Vec<String>`` endpoints."""
        ...


DEFAULT_BYTES_IN_FLIGHT = 32 << 20
"""Request bodies in flight at once, over every pRuntime of the process."""


class PRuntimeTransport:
    """Shared HTTP machinery for many pRuntime clients: one pool, bounded concurrency.

    Use as an async context manager (or call ``aclose``). ``max_in_flight`` bounds
    requests across every client made by ``client()``; ``timeout`` is per request.
    ``engine="native"`` (the default) sends plain-``http://`` calls through the lean
    keep-alive client of ``_http1`` (httpx costs ~10x the CPU per call, see
    docs/benchmarks.md); ``https://`` URLs, and every URL with ``engine="httpx"``, go
    through one shared ``httpx.AsyncClient``.
    """

    def __init__(
        self,
        *,
        max_in_flight: int = 500,
        timeout: float = 30.0,
        max_connections: int | None = None,
        max_bytes_in_flight: int = DEFAULT_BYTES_IN_FLIGHT,
        engine: Literal["native", "httpx"] = "native",
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.max_in_flight = max_in_flight
        self.engine = engine
        self._semaphore = asyncio.Semaphore(max_in_flight)
        self.bytes_in_flight = ByteBudget(max_bytes_in_flight)
        self.shared_bodies = SharedBodies()
        connections = max_connections or max_in_flight
        self._native = Http1Pool(timeout=timeout)
        self._http = http or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            headers={"User-Agent": "poolkeeper"},
        )

    def client(self, url: str) -> HttpPRuntimeClient:
        """A client for the pRuntime at ``url`` (e.g. ``http://10.0.0.5:8000``)."""
        return HttpPRuntimeClient(url, self)

    async def post(self, url: str, content: bytes) -> tuple[int, bytes]:
        """POST under the in-flight bound; returns ``(status, body)``.

        Raises ``TimeoutError`` on timeout and ``OSError`` when the peer is unreachable
        or drops the connection (httpx failures are translated to those two).
        """
        async with self._semaphore:
            if self.engine == "native" and url.startswith("http://"):
                return await self._native.post(url, content)
            try:
                response = await self._http.post(url, content=content)
            except httpx.TimeoutException as exc:
                raise TimeoutError(f"{type(exc).__name__}") from exc
            except httpx.TransportError as exc:
                raise ConnectionError(repr(exc)) from exc
            return response.status_code, response.content

    def post_soon(
        self, url: str, content: bytes, on_done: Callable[[int, bytes, BaseException | None], None]
    ) -> Callable[[], None] | None:
        """``post`` without a task or a future per request (``Http1Pool.post_soon``); the
        returned function aborts it. None when ``url`` goes through httpx. Not counted
        against ``max_in_flight``: the caller bounds its own requests in flight."""
        if self.engine != "native" or not url.startswith("http://"):
            return None
        return self._native.post_soon(url, content, on_done)

    @property
    def timeout(self) -> float:
        """Seconds a request may take."""
        return self._native.timeout

    async def aclose(self) -> None:
        """Close every pooled connection."""
        await self._native.aclose()
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class HttpPRuntimeClient:
    """``PRuntimeClient`` over pRuntime's HTTP API (protobuf mode)."""

    def __init__(self, url: str, transport: PRuntimeTransport) -> None:
        self._url = url.rstrip("/")
        self._transport = transport

    @property
    def url(self) -> str:
        """The pRuntime's base URL (without ``/prpc``)."""
        return self._url

    async def get_info(self) -> PhactoryInfo:
        """Counters, identity and registration state."""
        return await self._call("GetInfo", Empty(), PhactoryInfo)

    async def get_info_json(self) -> PhactoryInfo:
        """GetInfo in JSON mode (``?json``): a diagnostic of the serde encoding."""
        body = await self._send("GetInfo", b"", json_mode=True)
        try:
            return PhactoryInfo.from_json(json.loads(body))
        except (ValueError, TypeError, WireError) as exc:
            raise self._undecodable("GetInfo", exc) from exc

    async def init_runtime(self, request: InitRuntimeRequest) -> InitRuntimeResponse:
        """Initialize the runtime (only once per pRuntime)."""
        return await self._call("InitRuntime", request, InitRuntimeResponse)

    async def get_runtime_info(
        self, *, force_refresh_ra: bool = False, encoded_operator: bytes | None = None
    ) -> InitRuntimeResponse:
        """Registration info and, after the first dispatched block, the attestation."""
        request = GetRuntimeInfoRequest(
            force_refresh_ra=force_refresh_ra, encoded_operator=encoded_operator
        )
        return await self._call("GetRuntimeInfo", request, InitRuntimeResponse)

    async def sync_header(
        self, encoded_headers: bytes, encoded_authority_set_change: bytes | None = None
    ) -> int:
        """Feed relay (or solo) headers; returns the last number synced."""
        request = HeadersToSync(encoded_headers, encoded_authority_set_change)
        shared = encoded_headers if encoded_authority_set_change is None else None
        return (await self._call("SyncHeader", request, SyncedTo, shared=shared)).synced_to

    async def sync_para_header(self, encoded_headers: bytes, proof: Sequence[bytes]) -> int:
        """Feed parachain headers with their ``Paras.Heads`` proof."""
        request = ParaHeadersToSync(encoded_headers, tuple(proof))
        return (await self._call("SyncParaHeader", request, SyncedTo)).synced_to

    async def sync_combined_headers(self, request: CombinedHeadersToSync) -> HeadersSyncedTo:
        """Feed relay then parachain headers in one call."""
        return await self._call("SyncCombinedHeaders", request, HeadersSyncedTo)

    async def dispatch_blocks(self, encoded_blocks: bytes) -> int:
        """Feed blocks' storage changes; returns the last block dispatched."""
        request = Blocks(encoded_blocks)
        return (
            await self._call("DispatchBlocks", request, SyncedTo, shared=encoded_blocks)
        ).synced_to

    async def get_egress_messages(self) -> bytes:
        """SCALE ``Vec<(MessageOrigin, Vec<SignedMessage>)>`` waiting to go on chain."""
        response = await self._call("GetEgressMessages", Empty(), GetEgressMessagesResponse)
        return response.encoded_messages

    async def load_chain_state(self, block_number: int, encoded_state: bytes) -> None:
        """Fast sync: load the whole storage at ``block_number``."""
        await self._call("LoadChainState", ChainState(block_number, encoded_state), Empty)

    async def get_endpoint_info(self) -> GetEndpointResponse:
        """The signed endpoint payload, if the worker has one."""
        return await self._call("GetEndpointInfo", Empty(), GetEndpointResponse)

    async def sign_endpoint_info(self, encoded_endpoints: bytes) -> GetEndpointResponse:
        """Have the worker sign SCALE ``Vec<String>`` endpoints."""
        request = SignEndpointsRequest(encoded_endpoints)
        return await self._call("SignEndpointInfo", request, GetEndpointResponse)

    async def _call(
        self,
        method: str,
        request: ProtoMessage,
        response_type: type[R],
        *,
        shared: bytes | None = None,
    ) -> R:
        # Encoded only once there is room for it among the bytes in flight: a thousand
        # relays at one height must not each hold a copy of the same blocks while queued.
        async with self._transport.bytes_in_flight.hold(_size_hint(request)):
            if shared is None:
                encoded = request.encode()
            else:
                encoded = self._transport.shared_bodies.encoded(method, shared, request)
            body = await self._send(method, encoded, json_mode=False)
        return self._decoded(method, response_type, body)

    async def _send(self, method: str, body: bytes, *, json_mode: bool) -> bytes:
        endpoint = f"{self._url}/prpc/PhactoryAPI.{method}"
        if json_mode:
            endpoint += "?json"
        try:
            status, answer = await self._transport.post(endpoint, body)
        except (TimeoutError, OSError) as exc:
            raise self._unavailable(method, exc) from exc
        if status != 200:
            raise _error_for(self._url, method, status, answer, json_mode=json_mode)
        return answer

    def _unavailable(self, method: str, exc: BaseException) -> PRuntimeUnavailable:
        """A request that got no answer: timed out, or the pRuntime unreachable."""
        reason = f"timed out ({exc})" if isinstance(exc, TimeoutError) else f"unreachable ({exc!r})"
        return PRuntimeUnavailable(self._url, method, reason)

    def _decoded(self, method: str, response_type: type[R], body: bytes) -> R:
        try:
            return response_type.decode(body)
        except WireError as exc:
            raise self._undecodable(method, exc) from exc

    def encode_shared(self, method: str, payload: object, request: ProtoMessage) -> bytes:
        """The encoded ``request`` carrying ``payload``, encoded once for every client of
        this transport sent the same payload object (``SharedBodies``)."""
        return self._transport.shared_bodies.encoded(method, payload, request)

    def can_call_soon(self) -> bool:
        """Whether ``call_soon`` can send to this pRuntime (plain ``http://``, lean client)."""
        return self._transport.engine == "native" and self._url.startswith("http://")

    def call_soon(
        self,
        method: str,
        encoded: bytes,
        response_type: type[R],
        on_done: Callable[[R | Exception], None],
    ) -> Callable[[], None] | None:
        """Call ``method`` with an encoded request; ``on_done`` gets the decoded answer or
        the error ``_call`` would raise (``PRuntimeUnavailable``, ``PRuntimeCallFailed``
        ...). For thousands of pRuntimes sent the same block at once: no task or future
        per call (``PRuntimeTransport.post_soon``). Returns the abort function (the answer
        is then ``PRuntimeUnavailable`` "timed out"), or None when this client's URL goes
        through httpx (use the async methods)."""

        def answered(status: int, body: bytes, error: BaseException | None) -> None:
            if error is not None:
                on_done(self._unavailable(method, error))
            elif status != 200:
                on_done(_error_for(self._url, method, status, body, json_mode=False))
            else:
                try:
                    on_done(self._decoded(method, response_type, body))
                except PRuntimeCallFailed as exc:
                    on_done(exc)

        endpoint = f"{self._url}/prpc/PhactoryAPI.{method}"
        return self._transport.post_soon(endpoint, encoded, answered)

    def _undecodable(self, method: str, exc: Exception) -> PRuntimeCallFailed:
        return PRuntimeCallFailed(
            self._url, method, 200, f"undecodable answer: {exc}", "bad_answer"
        )


def _error_for(
    url: str, method: str, status: int, body: bytes, *, json_mode: bool
) -> PRuntimeUnavailable | PRuntimeCallFailed:
    if status == 503:
        return PRuntimeUnavailable(url, method, f"HTTP 503: {_raw_text(body)}")
    if status in (403, 413):
        kind = "forbidden" if status == 403 else "too_large"
        return PRuntimeCallFailed(url, method, status, _raw_text(body), kind)
    message = _decode_error_message(body, json_mode=json_mode)
    if _RCU_TEXT in message:
        return PRuntimeBusy(url, method, message)
    if status == 404:
        return PRuntimeCallFailed(url, method, status, message, "method_not_found")
    if status == 400:
        return PRuntimeCallFailed(url, method, status, message, "decode_error")
    if message == "Runtime not initialized":
        return PRuntimeNotInitialized(url, method, status, message)
    if message == "Runtime already initialized":
        return PRuntimeAlreadyInitialized(url, method, status, message)
    if message.split("(", 1)[0].split(" ", 1)[0] in SYNC_ERROR_NAMES:
        return PRuntimeSyncRejected(url, method, status, message)
    return PRuntimeCallFailed(url, method, status, message, "app")


class SharedBodies:
    """The encoded requests of the last few payloads that many workers are sent.

    At the tip every relay sends its pRuntime the same headers and blocks: the relay source
    hands each of them the same bytes object. Encoding the protobuf request once per such
    object, not once per worker, saves two copies of the payload per request (at 10,000
    workers with 100 kB blocks, 2 GB of copying a block). Kept by identity (the payload
    object itself is held, so its id cannot be reused) and only the last ``kept``.
    """

    def __init__(self, kept: int = 4) -> None:
        self._kept = kept
        self._entries: dict[tuple[str, int], tuple[object, bytes]] = {}
        self.encodings = 0
        """Requests actually encoded (the rest were shared)."""

    def encoded(self, method: str, payload: object, request: ProtoMessage) -> bytes:
        """``request`` encoded; ``payload`` is what identifies it: the same object (held
        here) stands for the same request of ``method``."""
        key = (method, id(payload))
        entry = self._entries.get(key)
        if entry is not None and entry[0] is payload:
            return entry[1]
        encoded = request.encode()
        self.encodings += 1
        self._entries.pop(key, None)
        self._entries[key] = (payload, encoded)
        if len(self._entries) > self._kept:
            del self._entries[next(iter(self._entries))]
        return encoded


def _size_hint(request: ProtoMessage) -> int:
    """Roughly the encoded size of a request: its bytes fields (the big part) plus framing."""
    size = 64
    for field in dataclasses.fields(request):  # type: ignore[arg-type]
        value = getattr(request, field.name)
        if isinstance(value, bytes | bytearray | str):
            size += len(value)
        elif isinstance(value, list | tuple):
            size += sum(len(v) for v in value if isinstance(v, bytes | bytearray | str))
    return size


def _decode_error_message(body: bytes, *, json_mode: bool) -> str:
    """The PrpcError text, from a protobuf body or a ``{"error": ...}`` JSON body."""
    if json_mode or body[:1] == b"{":
        try:
            text = json.loads(body).get("error")
        except (ValueError, AttributeError):
            text = None
        if isinstance(text, str):
            return _unwrap_proto_error(text)
    try:
        return PrpcError.decode(body).message or _raw_text(body)
    except WireError:
        return _raw_text(body)


def _unwrap_proto_error(text: str) -> str:
    # JSON mode renders some errors with Rust's Debug: ProtoError { message: "..." }
    prefix = 'ProtoError { message: "'
    if text.startswith(prefix) and text.endswith('" }'):
        return text[len(prefix) : -3].replace('\\"', '"')
    return text


def _raw_text(body: bytes) -> str:
    return body.decode("utf-8", "replace").strip()[:500]
