"""WorkerRelay's parachain order (PROTOCOL.md §2.3) against fakes.

The fake relay chain has ``tip + 1`` finalized blocks; relay block n stores the
parachain header ``max(0, n − LEAD)`` in ``Paras.Heads``. The fake pRuntime keeps the
three counters and asserts it is fed in order: relay headers continue at ``headernum``,
parachain headers continue at ``para_headernum`` and are proven at the last synced relay
block, blocks stay below ``para_headernum``.
"""

from __future__ import annotations

from typing import Any, cast

from poolkeeper.chain.relay_source import (
    CombinedHeaders,
    GenesisPayload,
    ParachainSource,
    ParaHeaders,
)
from poolkeeper.pruntime import InitRuntimeRequest, PhactoryInfo
from poolkeeper.pruntime.messages import (
    CombinedHeadersToSync,
    HeadersSyncedTo,
    InitRuntimeResponse,
)
from poolkeeper.relay.worker import RelayOptions, StepKind, WorkerRelay

LEAD = 2
START = LEAD - 1


class FakeParachainSource(ParachainSource):
    def __init__(self, tip: int, batch: int = 10) -> None:  # no nodes behind it
        self.tip = tip
        self.batch = batch
        self.calls: list[str] = []

    async def genesis(self) -> GenesisPayload:
        self.calls.append("genesis")
        return GenesisPayload("0x" + "00" * 32, b"info", b"state")

    async def para_headers_request(self, relay_number: int, from_para: int) -> ParaHeaders | None:
        last = max(0, relay_number - LEAD)
        if last < from_para:
            return None
        return ParaHeaders(f"P{from_para}-{last}@{relay_number}".encode(), (b"proof",), last)

    async def combined_request(self, relay_from: int, para_from: int) -> CombinedHeaders | None:
        if relay_from > self.tip:
            return None
        last = min(self.tip, relay_from + self.batch - 1)
        self.calls.append(f"combined {relay_from}..{last}")
        para = await self.para_headers_request(last, para_from)
        if para is None:
            return CombinedHeaders(f"H{relay_from}-{last}".encode(), last, b"\x00", (), None)
        return CombinedHeaders(
            f"H{relay_from}-{last}".encode(), last, para.encoded_headers, para.proof, para.last
        )

    async def blocks_request(self, from_number: int, to_number: int) -> bytes:
        self.calls.append(f"blocks {from_number}..{to_number}")
        return f"B{from_number}-{to_number}".encode()


class FakeParaPRuntime:
    def __init__(self) -> None:
        self.initialized = False
        self.headernum = self.para_headernum = self.blocknum = 0
        self.para_syncs: list[str] = []

    async def get_info(self) -> PhactoryInfo:
        return PhactoryInfo(
            initialized=self.initialized,
            headernum=self.headernum,
            para_headernum=self.para_headernum,
            blocknum=self.blocknum,
        )

    async def init_runtime(self, request: InitRuntimeRequest) -> InitRuntimeResponse:
        assert request.is_parachain, "a parachain source initialises in parachain mode"
        self.initialized = True
        self.headernum, self.para_headernum, self.blocknum = START + 1, 0, 1
        return InitRuntimeResponse()

    def _para(self, encoded: bytes) -> None:
        span, at = encoded.decode()[1:].split("@")
        first, last = (int(x) for x in span.split("-"))
        assert first == self.para_headernum, "parachain headers continue where the pRuntime is"
        assert int(at) == self.headernum - 1, "proven at the last synced relay block"
        self.para_headernum = last + 1
        self.para_syncs.append(encoded.decode())

    async def sync_combined_headers(self, request: CombinedHeadersToSync) -> HeadersSyncedTo:
        first, last = (int(x) for x in request.encoded_relaychain_headers.decode()[1:].split("-"))
        assert first == self.headernum, "relay headers continue where the pRuntime is"
        self.headernum = last + 1  # relay part first
        if request.encoded_parachain_headers != b"\x00":
            self._para(request.encoded_parachain_headers)
        return HeadersSyncedTo(
            relaychain_synced_to=self.headernum - 1,
            parachain_synced_to=max(self.para_headernum - 1, 0),
        )

    async def sync_para_header(self, encoded: bytes, proof: Any) -> int:
        self._para(encoded)
        return self.para_headernum - 1

    async def dispatch_blocks(self, encoded: bytes) -> int:
        first, last = (int(x) for x in encoded.decode()[1:].split("-"))
        assert first == self.blocknum
        assert last < self.para_headernum, "blocks only up to synced parachain headers"
        self.blocknum = last + 1
        return last


def make(tip: int) -> tuple[WorkerRelay, FakeParaPRuntime, FakeParachainSource]:
    pruntime, source = FakeParaPRuntime(), FakeParachainSource(tip)
    relay = WorkerRelay("p0", cast(Any, pruntime), source, RelayOptions(sync_blocks=8))
    return relay, pruntime, source


async def test_parachain_order_init_combined_headers_then_blocks_until_tip() -> None:
    relay, pruntime, source = make(tip=30)
    kinds = [await relay.step() for _ in range(12)]
    assert kinds[0] is StepKind.INIT
    assert kinds[-1] is StepKind.TIP
    assert source.calls[:5] == [
        "genesis",
        "combined 2..11",  # relay 2..11 and parachain 0..9 proven at relay 11
        "blocks 1..8",
        "blocks 9..9",
        "combined 12..21",
    ]
    assert pruntime.para_syncs[0] == "P0-9@11"
    assert (pruntime.headernum, pruntime.para_headernum, pruntime.blocknum) == (31, 29, 29)
    assert relay.status.para_headernum == 29


async def test_parachain_headers_behind_the_relay_headers_go_with_sync_para_header() -> None:
    relay, pruntime, source = make(tip=30)
    await relay.step()  # init
    pruntime.headernum = 12  # relay part synced, parachain part refused (not atomic)
    assert await relay.step() is StepKind.PARA_HEADERS
    assert pruntime.para_syncs == ["P0-9@11"]
    assert await relay.step() is StepKind.BLOCKS
    assert "combined" not in " ".join(source.calls)
