"""A devnet chain on a free loopback port, shared by the functional tests of a module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from substrateinterface import Keypair, SubstrateInterface

from poolkeeper_devnet.chain.server import DevnetChain


@pytest.fixture(scope="module")
def devnet() -> Iterator[DevnetChain]:
    handle = DevnetChain.start("dev", block_time="instant", finality_lag=1)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def substrate(devnet: DevnetChain) -> Iterator[SubstrateInterface]:
    client = SubstrateInterface(url=devnet.url, ss58_format=30)
    try:
        yield client
    finally:
        client.close()


def dev_key(name: str) -> Keypair:
    return Keypair.create_from_uri(f"//{name}", ss58_format=30)
