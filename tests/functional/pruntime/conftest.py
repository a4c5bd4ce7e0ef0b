"""Simulated pRuntimes over real HTTP on 127.0.0.1, and a chain to feed them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from poolkeeper.devnet.pruntime import SimulatorThread
from poolkeeper.devnet.pruntime.minichain import MiniChain
from poolkeeper.pruntime import PRuntimeTransport


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    """Three workers, each on its own port and on the shared prefix port."""
    with SimulatorThread(3, base_port=0, prefix_port=0, public_base_port=0) as simulator:
        yield simulator


@pytest.fixture
async def transport() -> AsyncIterator[PRuntimeTransport]:
    async with PRuntimeTransport(max_in_flight=16, timeout=5.0) as shared:
        yield shared


@pytest.fixture
def chain() -> MiniChain:
    return MiniChain()
