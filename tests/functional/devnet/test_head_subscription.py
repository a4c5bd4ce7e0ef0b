"""Head subscriptions over the websocket: the pipelined client's subscriptions, the block
follower woken by them (not by its poll), and the fall-back to polling when a node cannot
subscribe."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import websockets
from substrateinterface import Keypair

from poolkeeper.chain import SubstrateChain
from poolkeeper.chain._heads import HeadSignal
from poolkeeper.chain._rpc import AsyncRpc
from poolkeeper.chain.ports import CallSpec, TxStatus
from poolkeeper.errors import ChainUnavailable
from poolkeeper_devnet.chain.server import DevnetChain
from tests._sockets import established_to

PHA = 10**12


@pytest.fixture(scope="module")
def devnet() -> Iterator[DevnetChain]:
    handle = DevnetChain.start("dev", block_time="0.3s", finality_lag=1)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
async def rpc(devnet: DevnetChain) -> AsyncIterator[AsyncRpc]:
    client = AsyncRpc(devnet.url)
    yield client
    await client.close()


async def test_new_heads_arrive_in_order_and_a_dropped_socket_ends_the_subscription(
    rpc: AsyncRpc,
) -> None:
    heads = await rpc.subscribe("chain_subscribeNewHeads", [], "chain_unsubscribeNewHeads")
    numbers = [int((await heads.next(timeout=5))["number"], 16) for _ in range(3)]
    assert numbers == sorted(numbers) and numbers[-1] > numbers[0], numbers
    await rpc.call("devnet_dropConnections", [])
    with pytest.raises(ChainUnavailable):
        for _ in range(20):
            await heads.next(timeout=5)
    # The client itself reconnects on its next call; the subscription is for its owner to renew.
    assert isinstance(await rpc.call("system_chain", []), str)


async def test_unsubscribe_stops_the_notifications(rpc: AsyncRpc) -> None:
    heads = await rpc.subscribe("chain_subscribeNewHeads", [], "chain_unsubscribeNewHeads")
    await heads.next(timeout=5)
    await heads.close()
    heads.discard_pending()
    with pytest.raises(TimeoutError):
        await heads.next(timeout=1.0)


class _Signer:
    def __init__(self, uri: str) -> None:
        self._kp = Keypair.create_from_uri(uri, ss58_format=30)
        self.address: str = self._kp.ss58_address
        self.public_key: bytes = bytes(self._kp.public_key)

    def sign(self, payload: bytes) -> bytes:
        return bytes(self._kp.sign(payload))


async def test_inclusion_is_seen_on_the_announced_block_not_at_the_poll(
    devnet: DevnetChain,
) -> None:
    # A poll interval far longer than the test: only the subscription can wake the follower.
    chain = SubstrateChain(devnet.url, poll_seconds=60.0)
    try:
        alice, bob = _Signer("//Alice"), _Signer("//Bob")
        call = CallSpec("Balances", "transfer_keep_alive", {"dest": bob.address, "value": PHA})
        for _ in range(2):
            signed = await chain.sign(alice, [call])
            started = time.monotonic()
            outcome = await asyncio.wait_for(chain.send(signed), 20)
            assert outcome.status is TxStatus.IN_BLOCK, outcome
            assert time.monotonic() - started < 10
        assert chain._heads is not None and chain._heads.notifications >= 1
    finally:
        await chain.close()


async def test_a_node_that_cannot_subscribe_is_polled_and_asked_again_later() -> None:
    calls: list[str] = []

    async def handler(socket: websockets.ServerConnection) -> None:
        async for raw in socket:
            request = json.loads(raw)
            calls.append(request["method"])
            error = {"code": -32601, "message": "Method not found"}
            await socket.send(json.dumps({"jsonrpc": "2.0", "id": request["id"], "error": error}))

    async with websockets.serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        rpc = AsyncRpc(f"ws://127.0.0.1:{port}")
        signal = HeadSignal(rpc, finalized=True, poll_seconds=0.2, backoff=(0.5,))
        try:
            started = time.monotonic()
            for _ in range(5):
                await signal.wait()
            elapsed = time.monotonic() - started
        finally:
            await signal.close()
            await rpc.close()
    assert not signal.subscribed
    assert 0.9 <= elapsed < 5, elapsed  # five polls of 0.2 s
    assert calls and set(calls) == {"chain_subscribeFinalizedHeads"}
    assert 2 <= len(calls) <= 4, calls  # asked again after each 0.5 s back-off, not every poll


async def test_reads_writes_heads_and_relay_requests_share_one_socket(devnet: DevnetChain) -> None:
    # What ``app.build_ports`` does: one AsyncRpc per endpoint, given to the adapter and
    # used by the relays; substrate-interface (the codec) must not open one of its own.
    port = int(devnet.url.rsplit(":", 1)[1])
    rpc = AsyncRpc(devnet.url)
    chain = SubstrateChain(devnet.url, rpc=rpc)
    try:
        alice, bob = _Signer("//Alice"), _Signer("//Bob")
        state = await chain.read_state([], [alice.address, bob.address])
        assert state.accounts[alice.address].free > 0
        call = CallSpec("Balances", "transfer_keep_alive", {"dest": bob.address, "value": PHA})
        outcome = await asyncio.wait_for(chain.send(await chain.sign(alice, [call])), 20)
        assert outcome.status is TxStatus.IN_BLOCK, outcome
        assert chain._heads is not None and chain._heads.subscribed
        assert isinstance(await rpc.call("chain_getFinalizedHead", []), str)  # a relay's
        assert established_to(os.getpid(), port) == 1
    finally:
        await chain.close()
        await rpc.close()
