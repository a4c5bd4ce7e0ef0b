"""Chain data for relays: fetched from the node once, encoded once, shared by all.

Every relay asks for the same headers, justifications and storage changes; this
source fetches each from the node at most once (bounded caches plus in-flight
de-duplication) and hands out the encoded request bodies, so workers at the same
height receive the very same bytes and the node's load does not grow with the number
of workers. Storage changes are fetched in aligned chunks for the same reason.
Every cache is bounded by the bytes it holds (``ByteLru``); the chunk still being
finalized is kept once (its latest read), not once per finalized block.

``RelaySource`` serves a solo chain (the dev chain). ``ParachainSource`` serves a
parachain (Khala, Phala) as PROTOCOL.md §2.3 describes: it is the parachain's source
(blocks, storage changes, message sequences) plus a ``RelaySource`` of the relay chain
(headers with justifications), and adds the parachain's genesis at the relay block
before parachain block 1's relay parent, ``Paras.Heads(para_id)`` at a relay block with
its read proof, and the parachain headers it proves, all cached and shared the same way.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from poolkeeper.backoff import Backoff
from poolkeeper.chain import _scale as scale
from poolkeeper.chain._lru import ByteLru
from poolkeeper.chain._rpc import AsyncRpc

T = TypeVar("T")

GRANDPA_AUTHORITIES_KEY = "0x" + b":grandpa_authorities".hex()
CHANGES_CHUNK = 64
"""Storage changes are fetched for aligned windows of this many blocks."""
MAX_HEADERS_PER_SYNC = 1000
DEFAULT_CACHE_BYTES = 16 << 20
"""What one source may keep of chain data (headers, hashes, encoded requests, changes)."""
_HEAD_POLL_BACKOFF = (0.25, 0.5, 1.0, 2.0, 5.0)
_MISSING = object()


@dataclass(frozen=True)
class GenesisPayload:
    """What ``InitRuntime`` needs from the chain, SCALE-encoded."""

    genesis_hash: str
    genesis_info: bytes
    """``GenesisBlockInfo``."""
    genesis_state: bytes
    """``Vec<(Bytes, Bytes)>`` of every pair at block 0."""


class RelaySource:
    """Shared, cached chain data for every relay of this process."""

    def __init__(
        self, rpc: AsyncRpc, *, cache_bytes: int = DEFAULT_CACHE_BYTES, head_ttl: float = 0.25
    ) -> None:
        self.rpc = rpc
        self.cache = ByteLru(cache_bytes)
        self._partial_changes: dict[int, tuple[int, list[bytes]]] = {}
        """Chunk → (finalized number it was read at, its changes) for the one chunk not
        yet complete: replaced on every newer read, dropped once the chunk completes."""
        self._inflight: dict[Any, asyncio.Future[Any]] = {}
        self._head_ttl = head_ttl
        self._head: tuple[float, int] | None = None
        self._head_poller: asyncio.Task[None] | None = None
        self._head_waiting: set[asyncio.Future[None]] = set()
        """One future per waiter, resolved when the head moves. Not one future shielded by
        every waiter: a waiter timing out (or cancelled) removed its callback from the
        shared future's list, O(waiters) each, so 10,000 relays timing out together cost
        O(n²) (a quarter of the relays' CPU at 10,000 workers with 1 s timeouts)."""
        self.fetches = 0
        """Requests this source sent to the node (for the sharing measurements)."""

    async def _once(self, key: Any, make: Callable[[], Awaitable[T]], *, keep: bool = True) -> T:
        """``make()`` once for every concurrent caller of ``key``; its value cached when
        ``keep`` (else only shared while in flight).

        Waiters hold the shared future through ``shield``: a waiter cancelled (a relay
        stopped, a timeout) must not cancel the future the fetching task will resolve
        (that was an ``InvalidStateError`` in ``set_result`` at 10,000 workers). When the
        fetching task itself is cancelled, a waiter that is not fetches for itself."""
        while True:
            cached = self.cache.get(key, _MISSING)
            if cached is not _MISSING:
                return cached  # type: ignore[no-any-return]
            running = self._inflight.get(key)
            if running is None:
                break
            try:
                return await asyncio.shield(running)
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if running.cancelled() and current is not None and not current.cancelling():
                    continue
                raise
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            value = await make()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            if self._inflight.get(key) is future:
                del self._inflight[key]
        if keep:
            self.cache.put(key, value)
        future.set_result(value)
        return value

    is_parachain = False

    @property
    def node_requests(self) -> int:
        """Requests sent to every node this source reads."""
        return self.fetches

    async def _call(self, method: str, params: list[Any]) -> Any:
        self.fetches += 1
        return await self.rpc.call(method, params)

    async def finalized_number(self) -> int:
        """The finalized block number, shared for ``head_ttl`` seconds."""
        now = time.monotonic()
        if self._head is not None and now - self._head[0] < self._head_ttl:
            return self._head[1]

        async def fetch() -> int:
            fin_hash = await self._call("chain_getFinalizedHead", [])
            header = await self._call("chain_getHeader", [fin_hash])
            return int(header["number"], 16)

        number = await self._once(("finalized",), fetch, keep=False)
        self._head = (now, number)
        return number

    async def wait_finalized_above(self, number: int, timeout: float) -> bool:
        """Wait until the finalized head is past ``number`` (True) or ``timeout`` (False).

        Relays at the tip wait here instead of polling their pRuntimes: one poller asks
        the node every ``head_ttl`` seconds while anyone waits, and wakes every waiter
        at once when the head moves."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while await self.finalized_number() <= number:
            left = deadline - loop.time()
            if left <= 0:
                return False
            moved: asyncio.Future[None] = loop.create_future()
            self._head_waiting.add(moved)
            if self._head_poller is None or self._head_poller.done():
                self._head_poller = asyncio.create_task(self._poll_head())
            try:
                await asyncio.wait_for(moved, left)
            except TimeoutError:
                return False
            finally:
                self._head_waiting.discard(moved)
        return True

    async def _poll_head(self) -> None:
        last = self._head[1] if self._head else -1
        backoff = Backoff(_HEAD_POLL_BACKOFF)
        delay = self._head_ttl
        while self._head_waiting:
            await asyncio.sleep(delay)
            try:
                number = await self.finalized_number()
            except Exception:  # waiters time out and retry through their relay
                delay = max(self._head_ttl, backoff.next_delay())
                continue
            backoff.reset()
            delay = self._head_ttl
            if number != last:
                last = number
                waiting, self._head_waiting = self._head_waiting, set()
                for moved in waiting:
                    if not moved.done():
                        moved.set_result(None)

    async def block_hash(self, number: int) -> str:
        async def fetch() -> str:
            return str(await self._call("chain_getBlockHash", [number]))

        return await self._once(("hash", number), fetch)

    async def header(self, number: int) -> bytes:
        """SCALE header of a (finalized) block."""

        async def fetch() -> bytes:
            block_hash = await self.block_hash(number)
            return scale.header_from_rpc(await self._call("chain_getHeader", [block_hash]))

        return await self._once(("header", number), fetch)

    async def justified(self, number: int) -> tuple[int, bytes]:
        """``(block number, justification)`` of the first justified block at or after ``number``."""

        async def fetch() -> tuple[int, bytes]:
            proof_hex = await self._call("grandpa_proveFinality", [number])
            if proof_hex is None:
                raise LookupError(f"no finality proof for block {number} yet")
            proof = scale.unhex(proof_hex)
            block_hash = "0x" + proof[:32].hex()
            length, offset = scale.read_compact(proof, 32)
            justification = proof[offset : offset + length]
            header = await self._call("chain_getHeader", [block_hash])
            return int(header["number"], 16), justification

        return await self._once(("justified", number), fetch)

    async def headers_request(self, from_number: int) -> tuple[bytes, int] | None:
        """``SCALE Vec<HeaderToSync>`` from ``from_number`` to a justified block, and its last
        number; ``None`` when ``from_number`` is not finalized yet."""
        finalized = await self.finalized_number()
        if from_number > finalized:
            return None
        target = min(finalized, from_number + MAX_HEADERS_PER_SYNC - 1)

        async def build() -> tuple[bytes, int]:
            last, justification = await self.justified(target)
            headers = await asyncio.gather(*(self.header(n) for n in range(from_number, last + 1)))
            items = [h + b"\x00" for h in headers[:-1]]
            items.append(headers[-1] + scale.option_bytes(justification))
            return scale.vec(items), last

        return await self._once(("headers", from_number, target), build)

    async def _changes_range(self, start: int, end: int) -> list[bytes]:
        """Each block's SCALE ``StorageChanges`` from ``start`` to ``end`` (one request)."""
        hashes = await asyncio.gather(self.block_hash(start), self.block_hash(end))
        result = await self._call("pha_getStorageChanges", [hashes[0], hashes[1]])
        return [
            scale.storage_changes(
                entry.get("mainStorageChanges", []), entry.get("childStorageChanges", [])
            )
            for entry in result
        ]

    async def _changes_chunk(self, chunk: int) -> list[bytes]:
        """Each block's SCALE ``StorageChanges`` in an aligned window (a chunk not yet
        finalized to its end: up to the finalized block). Kept encoded: the decoded
        reply (a list and two hex strings per changed key) is several times larger, and
        complete chunks stay in the cache for relays that catch up. A chunk that grows
        asks the node only for the blocks finalized since its last read (finalized
        blocks' changes never change)."""
        first = chunk * CHANGES_CHUNK
        last = first + CHANGES_CHUNK - 1
        finalized = await self.finalized_number()
        partial = self._partial_changes.get(chunk)

        async def fetch_to(end: int) -> list[bytes]:
            known = partial[1] if partial is not None and partial[0] < end else []
            start = first + len(known)
            fresh = await self._changes_range(start, end)
            if len(fresh) != end - start + 1:  # not one entry per block: read it whole
                return await self._changes_range(first, end)
            return known + fresh

        if last <= finalized:
            self._partial_changes.pop(chunk, None)
            return await self._once(("changes", chunk), lambda: fetch_to(last))
        if partial is not None and partial[0] >= finalized:
            return partial[1]
        # The chunk still grows: one read per finalized block is shared in flight, and
        # only the newest is kept (a block below it finds its entry there).
        changes = await self._once(
            ("changes", chunk, finalized), lambda: fetch_to(finalized), keep=False
        )
        current = self._partial_changes.get(chunk)
        if current is None or current[0] < finalized:
            self._partial_changes[chunk] = (finalized, changes)
            for older in [c for c in self._partial_changes if c < chunk]:
                del self._partial_changes[older]
        return changes

    async def block_with_changes(self, number: int) -> bytes:
        """SCALE ``BlockHeaderWithChanges`` of one finalized block."""

        async def build() -> bytes:
            chunk = number // CHANGES_CHUNK
            changes = await self._changes_chunk(chunk)
            return await self.header(number) + changes[number - chunk * CHANGES_CHUNK]

        # Not kept: the chunk and the header are, and this is their concatenation.
        return await self._once(("block", number), build, keep=False)

    async def blocks_request(self, from_number: int, to_number: int) -> bytes:
        """``SCALE Vec<BlockHeaderWithChanges>`` for ``from_number..=to_number``."""

        async def build() -> bytes:
            blocks = await asyncio.gather(
                *(self.block_with_changes(n) for n in range(from_number, to_number + 1))
            )
            return scale.vec(list(blocks))

        return await self._once(("blocks", from_number, to_number), build)

    async def genesis(self) -> GenesisPayload:
        """Genesis header, authority set, its proof, and the whole genesis state."""

        async def build() -> GenesisPayload:
            genesis_hash, info = await self.genesis_info(0)
            return GenesisPayload(genesis_hash, info, await self.whole_state(genesis_hash))

        return await self._once(("genesis",), build)

    async def genesis_info(self, number: int) -> tuple[str, bytes]:
        """Block ``number``'s hash, and its header with the GRANDPA authority set, the set
        id and their read proof, SCALE-encoded as ``InitRuntime`` takes them."""
        block_hash = await self.block_hash(number)
        header = await self.header(number)
        authorities = await self._call("state_getStorage", [GENESIS_KEYS[0], block_hash])
        set_id_raw = await self._call("state_getStorage", [GENESIS_KEYS[1], block_hash])
        proof = await self._call("state_getReadProof", [list(GENESIS_KEYS), block_hash])
        authority_list = scale.unhex(authorities)[1:] if authorities else b"\x00"
        set_id = scale.unhex(set_id_raw) if set_id_raw else bytes(8)
        proof_nodes = scale.vec([scale.bytes_(scale.unhex(p)) for p in proof["proof"]])
        return block_hash, header + authority_list + set_id + proof_nodes

    async def whole_state(self, block_hash: str) -> bytes:
        """Every storage pair at ``block_hash`` (``state_getPairs``), SCALE-encoded."""
        pairs = await self._call("state_getPairs", ["0x", block_hash])
        return scale.vec(
            [scale.bytes_(scale.unhex(k)) + scale.bytes_(scale.unhex(v)) for k, v in pairs]
        )

    async def mq_next_sequence(self, sender: bytes) -> int:
        """``pha_getMqNextSequence`` for a SCALE ``MessageOrigin`` (counts the tx pool)."""
        return int(await self._call("pha_getMqNextSequence", ["0x" + sender.hex()]))


GENESIS_KEYS = (GRANDPA_AUTHORITIES_KEY, scale.plain_storage_key("Grandpa", "CurrentSetId"))
PARA_ID_KEY = scale.plain_storage_key("ParachainInfo", "ParachainId")
VALIDATION_DATA_KEY = scale.plain_storage_key("ParachainSystem", "ValidationData")


@dataclass(frozen=True)
class ParaHeaders:
    """Parachain headers up to the one ``Paras.Heads`` holds at a relay block, with the
    read proof of that storage entry (``SyncParaHeader``)."""

    encoded_headers: bytes
    """SCALE ``Vec<Header>``."""
    proof: tuple[bytes, ...]
    last: int


@dataclass(frozen=True)
class CombinedHeaders:
    """Relay headers up to a justified block, then the parachain headers proven at it
    (``SyncCombinedHeaders``)."""

    encoded_relaychain_headers: bytes
    relaychain_last: int
    encoded_parachain_headers: bytes
    proof: tuple[bytes, ...]
    parachain_last: int | None
    """``None`` when there is no new parachain header to send."""


class ParachainSource(RelaySource):
    """A parachain's source (``rpc``, the collator) beside its relay chain's.

    The inherited methods read the parachain (blocks, storage changes, message
    sequences); ``relaychain`` reads the relay chain. ``headers_request`` serves relay
    headers, ``genesis`` the parachain-mode genesis.
    """

    is_parachain = True

    def __init__(
        self,
        rpc: AsyncRpc,
        relaychain_rpc: AsyncRpc,
        *,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        head_ttl: float = 0.25,
    ) -> None:
        super().__init__(rpc, cache_bytes=cache_bytes, head_ttl=head_ttl)
        self.relaychain = RelaySource(relaychain_rpc, cache_bytes=cache_bytes, head_ttl=head_ttl)
        self._proven_para_number = 0

    @property
    def node_requests(self) -> int:
        return self.fetches + self.relaychain.fetches

    async def finalized_number(self) -> int:
        # A parachain block proven final through the relay chain is final, even before
        # the collator's own finalized head (read at most every head_ttl) says so.
        return max(await super().finalized_number(), self._proven_para_number)

    async def wait_finalized_above(self, number: int, timeout: float) -> bool:
        """Waits on the relay chain: relays pass the pRuntime's relay counter
        (``headernum − 1``), and a new relay block is what brings parachain headers."""
        return await self.relaychain.wait_finalized_above(number, timeout)

    async def para_id(self) -> int:
        async def fetch() -> int:
            raw = await self._call("state_getStorage", [PARA_ID_KEY, await self.block_hash(0)])
            if raw is None:
                raise LookupError("the parachain has no ParachainInfo.ParachainId")
            return int.from_bytes(scale.unhex(raw)[:4], "little")

        return await self._once(("para_id",), fetch)

    async def start_header(self) -> int:
        """The relay block the pRuntime starts from: parachain block 1's relay parent − 1."""

        async def fetch() -> int:
            first = await self._call("chain_getBlockHash", [1])
            if first is None:
                raise LookupError("the parachain has no block 1 yet")
            raw = await self._call("state_getStorage", [VALIDATION_DATA_KEY, first])
            if raw is None:
                raise LookupError("parachain block 1 has no ParachainSystem.ValidationData")
            return max(scale.relay_parent_number(scale.unhex(raw)) - 1, 0)

        return await self._once(("start_header",), fetch)

    async def headers_request(self, from_number: int) -> tuple[bytes, int] | None:
        """Relay-chain headers (``SyncHeader``), as ``RelaySource.headers_request``."""
        return await self.relaychain.headers_request(from_number)

    async def genesis(self) -> GenesisPayload:
        """The relay header at ``start_header`` with its GRANDPA authorities and their read
        proof, and the whole parachain genesis state."""

        async def build() -> GenesisPayload:
            relay_hash, info = await self.relaychain.genesis_info(await self.start_header())
            state = await self.whole_state(await self.block_hash(0))
            return GenesisPayload(relay_hash, info, state)

        return await self._once(("genesis",), build)

    async def para_head_at(self, relay_number: int) -> int | None:
        """The number of the parachain header ``Paras.Heads`` holds at a relay block."""

        async def fetch() -> int | None:
            key = scale.paras_heads_key(await self.para_id())
            relay_hash = await self.relaychain.block_hash(relay_number)
            raw = await self.relaychain._call("state_getStorage", [key, relay_hash])
            if raw is None:
                return None
            head, _ = scale.read_bytes(scale.unhex(raw))
            return scale.header_number(head)

        number = await self._once(("para_head", relay_number), fetch)
        if number is not None:
            self._proven_para_number = max(self._proven_para_number, number)
        return number

    async def para_headers_request(self, relay_number: int, from_para: int) -> ParaHeaders | None:
        """Parachain headers ``from_para..=P`` (P from ``Paras.Heads`` at ``relay_number``)
        with the read proof; ``None`` when there is none to send."""
        last = await self.para_head_at(relay_number)
        if last is None or last < from_para:
            return None

        async def build() -> ParaHeaders:
            key = scale.paras_heads_key(await self.para_id())
            relay_hash = await self.relaychain.block_hash(relay_number)
            proof_call = self.relaychain._call("state_getReadProof", [[key], relay_hash])
            headers, proof = await asyncio.gather(
                asyncio.gather(*(self.header(n) for n in range(from_para, last + 1))), proof_call
            )
            return ParaHeaders(
                scale.vec(list(headers)),
                tuple(scale.unhex(p) for p in proof["proof"]),
                last,
            )

        return await self._once(("para_headers", relay_number, from_para), build)

    async def combined_request(self, relay_from: int, para_from: int) -> CombinedHeaders | None:
        """Relay headers from ``relay_from`` to a justified block and the parachain headers
        from ``para_from`` proven at that block; ``None`` when no relay header is final."""
        relay = await self.headers_request(relay_from)
        if relay is None:
            return None
        relay_headers, relay_last = relay

        async def build() -> CombinedHeaders:
            para = await self.para_headers_request(relay_last, para_from)
            if para is None:
                return CombinedHeaders(relay_headers, relay_last, scale.vec([]), (), None)
            return CombinedHeaders(
                relay_headers, relay_last, para.encoded_headers, para.proof, para.last
            )

        return await self._once(("combined", relay_from, relay_last, para_from), build)
