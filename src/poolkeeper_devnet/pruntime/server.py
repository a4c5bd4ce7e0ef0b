"""Serve many simulated pRuntimes over HTTP, with pRuntime's statuses and error bodies.

Workers are reachable in two ways, both at once if wanted (the product only sees URLs):
- one port per worker, ``http://127.0.0.1:<base_port + i>/prpc/PhactoryAPI.<Method>``;
- one shared port with prefixes, ``http://127.0.0.1:<port>/w/<i>/prpc/PhactoryAPI.<Method>``
  (and ``/pub/<i>/prpc/...`` as worker i's public port: only GetInfo, else 403).

Both encodings of PROTOCOL.md §1.1: protobuf by default; JSON with ``?json``,
``Content-Type: application/json`` or ``GET``. Errors: 404 ``Method Not Found``, 400
``DecodeError(..)``, 500 with the handler text, 413 ``Entity too large``, 403 on the
public port. ``GET /info`` answers pretty PhactoryInfo JSON.

Faults per worker, through ``POST /devnet/fault`` (JSON ``{"worker": i | "all", "fault":
name, "seconds": s}``) or ``set_fault``: ``unreachable`` (connections dropped),
``slow`` (answers delayed by ``seconds``), ``error500`` (every call fails), ``rcu``
(init/sync/dispatch answer "RCU in progress"), ``stall`` (calls succeed, nothing
advances), and the actions ``restart`` (all state lost) and ``wrong_genesis``
(initialized against another chain); ``clear`` removes them. ``GET /devnet/workers``
lists workers with their URLs and public keys; ``GET /devnet/requests`` counts the pRPC
requests each worker received, by method (``{"<index>": {"<Method>": n}}``), so tests
and benchmarks can measure requests per worker per block.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError, Message

from poolkeeper_devnet.pruntime import _proto
from poolkeeper_devnet.pruntime._http import Handler, Request, Response, serve
from poolkeeper_devnet.pruntime._scale import ScaleError, blake2_256
from poolkeeper_devnet.pruntime._worker import RCU_TEXT, AppError, Identity, SimulatedPRuntime

KIB = 1024
MIB = 1024 * 1024

# method -> (request message, body limit, changes chain state: subject to "rcu")
_METHODS: dict[str, tuple[str, int, bool]] = {
    "GetInfo": ("Empty", 1 * KIB, False),
    "InitRuntime": ("InitRuntimeRequest", 100 * MIB, True),
    "GetRuntimeInfo": ("GetRuntimeInfoRequest", 1 * KIB, True),
    "SyncHeader": ("HeadersToSync", 100 * MIB, True),
    "SyncParaHeader": ("ParaHeadersToSync", 100 * MIB, True),
    "SyncCombinedHeaders": ("CombinedHeadersToSync", 100 * MIB, True),
    "DispatchBlocks": ("Blocks", 100 * MIB, True),
    "GetEgressMessages": ("Empty", 1 * MIB, False),
    "LoadChainState": ("ChainState", 500 * MIB, True),
    "GetEndpointInfo": ("Empty", 1 * MIB, False),
    "SignEndpointInfo": ("SignEndpointsRequest", 1 * MIB, False),
}
_PUBLIC_METHODS = frozenset({"GetInfo", "Statistics"})
FAULTS = ("unreachable", "slow", "error500", "rcu", "stall", "restart", "wrong_genesis", "clear")


def worker_seed(base_seed: bytes, index: int) -> bytes:
    """The deterministic identity seed of worker ``index``."""
    return blake2_256(b"poolkeeper-devnet-pruntime" + base_seed + index.to_bytes(4, "little"))


@dataclass
class Faults:
    """The faults currently set on one worker."""

    unreachable: bool = False
    delay: float = 0.0
    error500: bool = False
    rcu: bool = False


class PRuntimeSimulator(Handler):
    """N simulated pRuntimes behind one asyncio HTTP server."""

    def __init__(
        self,
        workers: int,
        *,
        seed: bytes = b"",
        score: int = 1000,
        scores: dict[int, int] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.host = host
        self.workers = [
            SimulatedPRuntime(i, worker_seed(seed, i), (scores or {}).get(i, score))
            for i in range(workers)
        ]
        self.faults = [Faults() for _ in range(workers)]
        self.requests: list[Counter[str]] = [Counter() for _ in range(workers)]
        """pRPC requests each worker received, by method (every answer counted)."""
        self._port_to_worker: dict[int, int] = {}
        self._public_ports: set[int] = set()
        self._servers: list[asyncio.Server] = []
        self.prefix_port: int | None = None

    # --- lifecycle ----------------------------------------------------------------------

    async def start(
        self,
        *,
        base_port: int | None = None,
        prefix_port: int | None = None,
        public_base_port: int | None = None,
    ) -> None:
        """Listen. ``base_port``: one port per worker (0: any free ports); ``prefix_port``:
        the shared port (0: any free port). Without either, a free shared port is used."""
        if base_port is None and prefix_port is None:
            prefix_port = 0
        if prefix_port is not None:
            server = await serve(self, self.host, prefix_port)
            self._servers.append(server)
            self.prefix_port = _bound_port(server)
        if base_port is not None:
            for i in range(len(self.workers)):
                server = await serve(self, self.host, base_port + i if base_port else 0)
                self._servers.append(server)
                self._port_to_worker[_bound_port(server)] = i
        if public_base_port is not None:
            for i in range(len(self.workers)):
                port = public_base_port + i if public_base_port else 0
                server = await serve(self, self.host, port)
                self._servers.append(server)
                bound = _bound_port(server)
                self._port_to_worker[bound] = i
                self._public_ports.add(bound)

    async def stop(self) -> None:
        """Stop listening and close every connection."""
        for server in self._servers:
            server.close()
        self.close_connections()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()

    # --- addresses ----------------------------------------------------------------------

    def url(self, index: int) -> str:
        """Worker ``index``'s base URL: its own port if it has one, else the prefix URL."""
        for port, worker in self._port_to_worker.items():
            if worker == index and port not in self._public_ports:
                return f"http://{self.host}:{port}"
        return self.prefix_url(index)

    def prefix_url(self, index: int) -> str:
        """Worker ``index``'s URL on the shared port."""
        if self.prefix_port is None:
            raise RuntimeError("the shared prefix port is not started")
        return f"http://{self.host}:{self.prefix_port}/w/{index}"

    def public_url(self, index: int) -> str:
        """Worker ``index``'s public-port URL (only GetInfo is served there)."""
        for port, worker in self._port_to_worker.items():
            if worker == index and port in self._public_ports:
                return f"http://{self.host}:{port}"
        if self.prefix_port is None:
            raise RuntimeError("no public port for this worker")
        return f"http://{self.host}:{self.prefix_port}/pub/{index}"

    def identity(self, index: int) -> Identity:
        """The identity worker ``index`` takes at InitRuntime without ``debug_set_key``."""
        return Identity.from_seed(self.workers[index].default_seed)

    # --- faults ---------------------------------------------------------------------------

    def set_fault(self, index: int, fault: str, seconds: float = 0.0) -> None:
        """Set (or, with ``clear``, remove) a fault on worker ``index``."""
        worker, faults = self.workers[index], self.faults[index]
        if fault == "unreachable":
            faults.unreachable = True
        elif fault == "slow":
            faults.delay = seconds or 1.0
        elif fault == "error500":
            faults.error500 = True
        elif fault == "rcu":
            faults.rcu = True
        elif fault == "stall":
            worker.stalled = True
        elif fault == "restart":
            worker.reset()
        elif fault == "wrong_genesis":
            worker.force_wrong_genesis()
        elif fault == "clear":
            self.faults[index] = Faults()
            worker.stalled = False
        else:
            raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")

    # --- Handler ------------------------------------------------------------------------

    def accept(self, local_port: int) -> bool:
        index = self._port_to_worker.get(local_port)
        return index is None or not self.faults[index].unreachable

    def body_limit(self, request: Request) -> int:
        method = request.path.rsplit("PhactoryAPI.", 1)[-1]
        spec = _METHODS.get(method)
        return spec[1] if spec else 1 * MIB

    def handle(self, request: Request) -> Response | Awaitable[Response]:
        if request.path.startswith("/devnet/"):
            return self._admin(request)
        routed = self._route(request)
        if isinstance(routed, Response):
            return routed
        index, rest, public = routed
        faults = self.faults[index]
        if faults.unreachable:
            return Response(drop=True)
        if faults.delay > 0:
            return self._delayed(faults.delay, lambda: self._prpc(index, rest, public, request))
        return self._prpc(index, rest, public, request)

    async def _delayed(self, delay: float, answer: Callable[[], Response]) -> Response:
        await asyncio.sleep(delay)
        return answer()

    def _route(self, request: Request) -> tuple[int, str, bool] | Response:
        path = request.path
        port_worker = self._port_to_worker.get(request.local_port)
        if port_worker is not None:
            return port_worker, path, request.local_port in self._public_ports
        parts = path.split("/", 3)
        if len(parts) == 4 and parts[1] in ("w", "pub") and parts[2].isdigit():
            index = int(parts[2])
            if index < len(self.workers):
                return index, "/" + parts[3], parts[1] == "pub"
        return Response(404, b"Not Found", content_type="text/plain")

    def _prpc(self, index: int, path: str, public: bool, request: Request) -> Response:
        worker = self.workers[index]
        if path == "/info" and request.method == "GET":
            body = json.dumps(_proto.to_serde_json(worker.get_info()), indent=2).encode()
            return Response(200, body, content_type="application/json")
        if not path.startswith("/prpc/"):
            return Response(404, b"Not Found", content_type="text/plain")
        name = path[len("/prpc/") :]
        json_mode = (
            request.method == "GET"
            or _has_query_key(request.query, "json")
            or request.headers.get("content-type", "").startswith("application/json")
        )
        method = name[len("PhactoryAPI.") :] if name.startswith("PhactoryAPI.") else ""
        self.requests[index][method or name] += 1
        if public and method not in _PUBLIC_METHODS:
            return Response(403, b"")
        spec = _METHODS.get(method)
        if spec is None:
            return _error(404, "Method Not Found", json_mode, debug_wrap=True)
        request_type, _, mutating = spec
        faults = self.faults[index]
        if faults.error500:
            return _error(500, "devnet fault: internal error", json_mode)
        if faults.rcu and mutating:
            return _error(500, RCU_TEXT, json_mode)
        try:
            message = _decode_request(request_type, request, json_mode)
            reply = _invoke(worker, method, message)
        except (DecodeError, ScaleError, _proto.JsonRequestError, ValueError) as exc:
            return _error(400, f"DecodeError({exc})", json_mode)
        except AppError as exc:
            return _error(500, str(exc), json_mode)
        if json_mode:
            body = json.dumps(_proto.to_serde_json(reply)).encode()
        else:
            body = reply.SerializeToString()
        return Response(200, body)

    def _admin(self, request: Request) -> Response:
        if request.path == "/devnet/workers" and request.method == "GET":
            listing = [
                {
                    "index": i,
                    "url": self.url(i),
                    "public_key": "0x" + self.identity(i).public.hex(),
                    "initialized": w.initialized,
                    "registered": w.registered,
                }
                for i, w in enumerate(self.workers)
            ]
            return Response(200, json.dumps(listing).encode(), content_type="application/json")
        if request.path == "/devnet/requests" and request.method == "GET":
            counts = {str(i): dict(c) for i, c in enumerate(self.requests)}
            return Response(200, json.dumps(counts).encode(), content_type="application/json")
        if request.path == "/devnet/fault" and request.method == "POST":
            try:
                spec: dict[str, Any] = json.loads(request.body)
                target = spec["worker"]
                indexes = range(len(self.workers)) if target == "all" else [int(target)]
                for index in indexes:
                    self.set_fault(index, str(spec["fault"]), float(spec.get("seconds", 0)))
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                return Response(400, f"bad fault request: {exc}".encode(), "text/plain")
            return Response(200, b'{"ok": true}', content_type="application/json")
        return Response(404, b"Not Found", content_type="text/plain")


def _has_query_key(query: str, key: str) -> bool:
    return any(part.split("=", 1)[0] == key for part in query.split("&") if part)


def _decode_request(request_type: str, request: Request, json_mode: bool) -> Any:
    if json_mode:
        if not request.body.strip():
            return _proto.new(request_type)
        try:
            data = json.loads(request.body)
        except ValueError as exc:
            raise _proto.JsonRequestError(str(exc)) from exc
        return _proto.from_serde_json(request_type, data)
    message = _proto.MESSAGES[request_type]()
    message.ParseFromString(request.body)
    return message


def _invoke(worker: SimulatedPRuntime, method: str, message: Message) -> Any:
    if method == "GetInfo":
        return worker.get_info()
    if method == "GetEgressMessages":
        return worker.get_egress_messages()
    if method == "GetEndpointInfo":
        return worker.get_endpoint_info()
    handler: Callable[[Message], Message] = {
        "InitRuntime": worker.init_runtime,
        "GetRuntimeInfo": worker.get_runtime_info,
        "SyncHeader": worker.sync_header,
        "SyncParaHeader": worker.sync_para_header,
        "SyncCombinedHeaders": worker.sync_combined_headers,
        "DispatchBlocks": worker.dispatch_blocks,
        "LoadChainState": worker.load_chain_state,
        "SignEndpointInfo": worker.sign_endpoint_info,
    }[method]
    return handler(message)


def _error(status: int, message: str, json_mode: bool, *, debug_wrap: bool = False) -> Response:
    if json_mode:
        text = f'ProtoError {{ message: "{message}" }}' if debug_wrap else message
        return Response(status, json.dumps({"error": text}, indent=2).encode())
    return Response(status, _proto.new("PrpcError", message=message).SerializeToString())


def _bound_port(server: asyncio.Server) -> int:
    return int(server.sockets[0].getsockname()[1])


class SimulatorThread:
    """Run a ``PRuntimeSimulator`` on its own event loop in a daemon thread (for tests).

    ``with SimulatorThread(3) as sim: sim.url(0)``; calls such as ``set_fault`` are
    forwarded to the loop thread.
    """

    def __init__(self, workers: int, **options: Any) -> None:
        start_keys = ("base_port", "prefix_port", "public_base_port")
        self._start_options = {k: options.pop(k) for k in start_keys if k in options}
        self.simulator = PRuntimeSimulator(workers, **options)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> SimulatorThread:
        self._thread.start()
        self._run(self.simulator.start(**self._start_options))
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._run(self.simulator.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def url(self, index: int) -> str:
        return self.simulator.url(index)

    def prefix_url(self, index: int) -> str:
        return self.simulator.prefix_url(index)

    def public_url(self, index: int) -> str:
        return self.simulator.public_url(index)

    def set_fault(self, index: int, fault: str, seconds: float = 0.0) -> None:
        async def apply() -> None:
            self.simulator.set_fault(index, fault, seconds)

        self._run(apply())

    def requests(self) -> list[dict[str, int]]:
        """A snapshot of the pRPC requests each worker received, by method."""

        async def snapshot() -> list[dict[str, int]]:
            return [dict(c) for c in self.simulator.requests]

        result: list[dict[str, int]] = self._run(snapshot())
        return result

    def worker(self, index: int) -> SimulatedPRuntime:
        """Direct access to a worker's state (read it only; mutate through calls)."""
        return self.simulator.workers[index]

    def _run(self, coro: Awaitable[Any]) -> Any:
        async def wrapper() -> Any:
            return await coro

        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop).result(timeout=30)

    def __enter__(self) -> SimulatorThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
