"""The adapter's boundary maps a node's JSON-RPC error to ``ChainNodeError`` (temporary),
naming the node and the method, on both paths: a request on the pipelined socket, and one
substrate-interface (the codec) makes through the bridge."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from poolkeeper.chain._connection import NodeConnection, _RpcBridge
from poolkeeper.chain._rpc import RpcError
from poolkeeper.errors import ChainNodeError, ChainUnavailable, TemporaryError

URL = "ws://node.example:9944"


class _FailingRpc:
    """Answers every request with the node's error."""

    def __init__(self) -> None:
        self.methods: list[str] = []

    async def call(self, method: str, params: list[Any], *, timeout: float | None = None) -> Any:
        self.methods.append(method)
        raise RpcError(method, -32000, "Client error: busy", "try later")


async def test_a_request_on_the_socket_fails_as_a_node_error_naming_node_and_method() -> None:
    conn = NodeConnection(URL, rpc=_FailingRpc())  # type: ignore[arg-type]
    with pytest.raises(ChainNodeError) as caught:
        await conn.call("state_queryStorageAt", [[], None])
    assert isinstance(caught.value, TemporaryError)
    assert caught.value.method == "state_queryStorageAt" and caught.value.url == URL
    assert str(caught.value) == (
        f"chain node error: state_queryStorageAt on {URL}: -32000: Client error: busy: try later"
    )


async def test_the_bridge_answers_the_codec_with_the_node_error_and_remembers_the_method() -> None:
    bridge = _RpcBridge(URL, 5.0)
    bridge.bind(asyncio.get_running_loop(), _FailingRpc())  # type: ignore[arg-type]
    payload = {"jsonrpc": "2.0", "id": 7, "method": "chain_getFinalizedHead", "params": []}
    await asyncio.to_thread(bridge.send, json.dumps(payload))
    answer = json.loads(bridge.recv())
    assert answer["id"] == 7
    assert answer["error"] == {"code": -32000, "message": "Client error: busy", "data": "try later"}
    assert bridge.failed_method == "chain_getFinalizedHead"
    with pytest.raises(ChainUnavailable, match="no answer pending"):
        bridge.recv()  # a subscription would wait here: refused, never a hang
