"""Simulated pRuntimes over real HTTP on 127.0.0.1, and a chain to feed them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from poolkeeper.pruntime import PRuntimeTransport
from poolkeeper_devnet.pruntime import SimulatorThread
from poolkeeper_devnet.pruntime.minichain import MiniChain


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    """Three workers, each on its own port and on the shared prefix port."""
    with SimulatorThread(3, base_port=0, prefix_port=0, public_base_port=0) as simulator:
        yield simulator


@pytest.fixture(params=["native", "httpx"])
async def transport(request: pytest.FixtureRequest) -> AsyncIterator[PRuntimeTransport]:
    """Both HTTP engines of the transport must give the same answers and errors."""
    async with PRuntimeTransport(max_in_flight=16, timeout=5.0, engine=request.param) as shared:
        yield shared


@pytest.fixture
def chain() -> MiniChain:
    return MiniChain()
