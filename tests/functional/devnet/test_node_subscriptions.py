"""The subscriptions and answer shapes a Substrate node has (issue 14), checked over a real
websocket against the devnet chain: every name and alias of the head, runtime-version,
storage and extrinsic subscriptions with the node's notification names and shapes, their
unsubscribe methods, and the node's shapes of ``payment_queryInfo``, the runtime calls
polkadot.js makes and the pool's 1013/1014 errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from substrateinterface import SubstrateInterface
from websockets.sync.client import ClientConnection, connect

from poolkeeper_devnet.chain.server import DevnetChain
from poolkeeper_devnet.codec import decode_compact
from tests.functional.devnet.conftest import dev_key

PHA = 10**12


@pytest.fixture(scope="module")
def devnet() -> Iterator[DevnetChain]:
    handle = DevnetChain.start("dev", block_time="manual", finality_lag=1)
    try:
        handle.call(lambda: [handle.server.produce_block() for _ in range(3)])
        yield handle
    finally:
        handle.stop()


class Client:
    """A bare JSON-RPC websocket client that keeps every notification it receives."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = iter(range(1, 10**9))
        self.received: list[dict[str, Any]] = []

    def _receive(self, timeout: float = 10) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(self.ws.recv(timeout=timeout))
        if "method" in message and "id" not in message:
            self.received.append(message)
        return message

    def answer(self, method: str, *params: Any) -> dict[str, Any]:
        request_id = next(self.ids)
        request = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        self.ws.send(json.dumps(request))
        while True:
            message = self._receive()
            if message.get("id") == request_id:
                return message

    def call(self, method: str, *params: Any) -> Any:
        message = self.answer(method, *params)
        assert "error" not in message, (method, params, message)
        return message["result"]

    def notifications(self, subscription: str, count: int) -> list[dict[str, Any]]:
        """The next ``count`` notifications of ``subscription`` (whole messages)."""

        def mine() -> list[dict[str, Any]]:
            return [m for m in self.received if m["params"]["subscription"] == subscription]

        while len(mine()) < count:
            self._receive()
        taken = mine()[:count]
        for message in taken:
            self.received.remove(message)
        return taken

    def results(self, subscription: str, method: str, count: int) -> list[Any]:
        messages = self.notifications(subscription, count)
        assert {m["method"] for m in messages} == {method}, messages
        assert all(m["jsonrpc"] == "2.0" for m in messages)
        return [m["params"]["result"] for m in messages]

    def silent(self, subscription: str, seconds: float = 0.5) -> bool:
        """True if no notification of ``subscription`` arrives within ``seconds``."""
        try:
            while True:
                self._receive(timeout=seconds)
        except TimeoutError:
            pass
        return not any(m["params"]["subscription"] == subscription for m in self.received)


@pytest.fixture
def client(devnet: DevnetChain) -> Iterator[Client]:
    with connect(devnet.url, max_size=2**26) as ws:
        yield Client(ws)


def _head(client: Client) -> dict[str, Any]:
    header: dict[str, Any] = client.call("chain_getHeader")
    return header


@pytest.mark.parametrize(
    ("subscribe", "unsubscribe", "notification"),
    [
        ("chain_subscribeNewHeads", "chain_unsubscribeNewHeads", "chain_newHead"),
        ("chain_subscribeNewHead", "chain_unsubscribeNewHead", "chain_newHead"),
        ("subscribe_newHead", "unsubscribe_newHead", "chain_newHead"),
        ("chain_subscribeAllHeads", "chain_unsubscribeAllHeads", "chain_allHead"),
    ],
)
def test_best_head_subscriptions_start_at_the_head_and_follow_each_block(
    client: Client, devnet: DevnetChain, subscribe: str, unsubscribe: str, notification: str
) -> None:
    head = _head(client)
    subscription = client.call(subscribe)
    assert isinstance(subscription, str)
    (first,) = client.results(subscription, notification, 1)
    assert first == head
    devnet.new_block()
    devnet.new_block()
    following = client.results(subscription, notification, 2)
    assert [int(h["number"], 16) for h in following] == [
        int(head["number"], 16) + 1,
        int(head["number"], 16) + 2,
    ]
    assert following[1]["parentHash"] == client.call("chain_getBlockHash", following[0]["number"])
    assert client.call(unsubscribe, subscription) is True
    devnet.new_block()
    assert client.silent(subscription)
    assert client.call(unsubscribe, subscription) is False  # already gone, as a node answers


@pytest.mark.parametrize(
    ("subscribe", "unsubscribe"),
    [
        ("chain_subscribeFinalizedHeads", "chain_unsubscribeFinalizedHeads"),
        ("chain_subscribeFinalisedHeads", "chain_unsubscribeFinalisedHeads"),
    ],
)
def test_finalized_head_subscriptions_start_at_the_finalized_head(
    client: Client, devnet: DevnetChain, subscribe: str, unsubscribe: str
) -> None:
    finalized_hash = client.call("chain_getFinalizedHead")
    subscription = client.call(subscribe)
    (first,) = client.results(subscription, "chain_finalizedHead", 1)
    assert client.call("chain_getBlockHash", first["number"]) == finalized_hash
    devnet.new_block()
    (following,) = client.results(subscription, "chain_finalizedHead", 1)
    assert int(following["number"], 16) == int(first["number"], 16) + 1
    # another kind's unsubscribe does not end it (False), its own does (True)
    assert client.call("chain_unsubscribeNewHeads", subscription) is False
    assert client.call(unsubscribe, subscription) is True


@pytest.mark.parametrize(
    ("subscribe", "unsubscribe"),
    [
        ("state_subscribeRuntimeVersion", "state_unsubscribeRuntimeVersion"),
        ("chain_subscribeRuntimeVersion", "chain_unsubscribeRuntimeVersion"),
    ],
)
def test_runtime_version_subscription_sends_the_current_version(
    client: Client, devnet: DevnetChain, subscribe: str, unsubscribe: str
) -> None:
    subscription = client.call(subscribe)
    (version,) = client.results(subscription, "state_runtimeVersion", 1)
    assert version == client.call("state_getRuntimeVersion")
    assert (version["specName"], version["specVersion"]) == ("khala", 1251)
    devnet.new_block()
    assert client.silent(subscription)  # no runtime upgrade: nothing more
    assert client.call(unsubscribe, subscription) is True


def test_storage_subscription_sends_initial_values_then_one_change_set_per_changing_block(
    client: Client, devnet: DevnetChain, substrate: SubstrateInterface
) -> None:
    bob = dev_key("Bob")
    account_key = substrate.create_storage_key("System", "Account", [bob.ss58_address]).to_hex()
    now_key = substrate.create_storage_key("Timestamp", "Now").to_hex()
    absent = "0x00"
    head_hash = client.call("chain_getBlockHash")
    subscription = client.call("state_subscribeStorage", [account_key, now_key, absent])
    (initial,) = client.results(subscription, "state_storage", 1)
    assert initial == {
        "block": head_hash,
        "changes": [
            [account_key, client.call("state_getStorage", account_key)],
            [now_key, client.call("state_getStorage", now_key)],
            [absent, None],
        ],
    }
    transfer = substrate.compose_call(
        "Balances", "transfer_keep_alive", {"dest": bob.ss58_address, "value": PHA}
    )
    alice = dev_key("Alice")
    nonce = client.call("system_accountNextIndex", alice.ss58_address)
    signed = substrate.create_signed_extrinsic(transfer, alice, nonce=nonce)
    client.call("author_submitExtrinsic", str(signed.data))
    with_transfer = devnet.new_block()
    without = devnet.new_block()
    first, second = client.results(subscription, "state_storage", 2)
    assert first["block"] == "0x" + with_transfer.hash.hex()
    assert dict(first["changes"]) == {
        account_key: client.call("state_getStorage", account_key, first["block"]),
        now_key: client.call("state_getStorage", now_key, first["block"]),
    }
    assert second == {
        "block": "0x" + without.hash.hex(),
        "changes": [[now_key, client.call("state_getStorage", now_key, second["block"])]],
    }
    assert client.call("state_unsubscribeStorage", subscription) is True
    devnet.new_block()
    assert client.silent(subscription)


def test_storage_subscription_of_an_unchanging_key_stays_silent_after_its_initial_value(
    client: Client, devnet: DevnetChain
) -> None:
    subscription = client.call("state_subscribeStorage", ["0x00"])
    (initial,) = client.results(subscription, "state_storage", 1)
    assert initial["changes"] == [["0x00", None]]
    devnet.new_block()
    assert client.silent(subscription)
    # no keys: nothing at first, then every change of every block
    everything = client.call("state_subscribeStorage")
    block = devnet.new_block()
    (changes,) = client.results(everything, "state_storage", 1)
    (expected,) = client.call("pha_getStorageChanges", changes["block"], changes["block"])
    assert changes["block"] == "0x" + block.hash.hex()
    assert changes["changes"] == expected["mainStorageChanges"] and changes["changes"]
    assert client.call("state_unsubscribeStorage", everything) is True
    assert client.call("state_unsubscribeStorage", subscription) is True


def test_submit_and_watch_reports_statuses_and_refuses_an_invalid_extrinsic_at_subscribe(
    client: Client, devnet: DevnetChain, substrate: SubstrateInterface
) -> None:
    charlie = dev_key("Charlie")
    remark = substrate.compose_call("System", "remark", {"remark": "0x01"})
    nonce = client.call("system_accountNextIndex", charlie.ss58_address)
    signed = substrate.create_signed_extrinsic(remark, charlie, nonce=nonce)
    subscription = client.call("author_submitAndWatchExtrinsic", str(signed.data))
    devnet.new_block()
    devnet.new_block()
    statuses = client.results(subscription, "author_extrinsicUpdate", 3)
    assert statuses[0] == "ready"
    assert set(statuses[1]) == {"inBlock"} and statuses[2] == {"finalized": statuses[1]["inBlock"]}
    assert client.call("author_unwatchExtrinsic", subscription) is False  # ended at finalized
    again = client.answer("author_submitAndWatchExtrinsic", str(signed.data))
    assert again["error"]["code"] == 1012  # included: temporarily banned
    replay = substrate.create_signed_extrinsic(
        substrate.compose_call("System", "remark", {"remark": "0x02"}), charlie, nonce=nonce
    )
    stale = client.answer("author_submitAndWatchExtrinsic", str(replay.data))
    assert stale["error"] == {
        "code": 1010,
        "message": "Invalid Transaction",
        "data": "Transaction is outdated",
    }


def test_pool_errors_carry_a_nodes_data(
    client: Client, devnet: DevnetChain, substrate: SubstrateInterface
) -> None:
    dave = dev_key("Dave")
    nonce = client.call("system_accountNextIndex", dave.ss58_address)
    first = substrate.create_signed_extrinsic(
        substrate.compose_call("System", "remark", {"remark": "0x01"}), dave, nonce=nonce
    )
    other = substrate.create_signed_extrinsic(
        substrate.compose_call("System", "remark", {"remark": "0x02"}), dave, nonce=nonce
    )
    client.call("author_submitExtrinsic", str(first.data))
    assert client.answer("author_submitExtrinsic", str(first.data))["error"] == {
        "code": 1013,
        "message": "Transaction Already Imported",
        "data": "Any { .. }",
    }
    assert client.answer("author_submitExtrinsic", str(other.data))["error"] == {
        "code": 1014,
        "message": "Priority is too low: (0 vs 0)",
        "data": "The transaction has too low priority to replace another transaction "
        "already in the pool.",
    }
    devnet.new_block()


def test_fee_answers_have_a_nodes_shapes(client: Client, substrate: SubstrateInterface) -> None:
    transfer = substrate.compose_call(
        "Balances", "transfer_keep_alive", {"dest": dev_key("Bob").ss58_address, "value": PHA}
    )
    raw = bytes(substrate.create_signed_extrinsic(transfer, dev_key("Eve"), nonce=0).data.data)
    quoted = client.call("payment_queryInfo", "0x" + raw.hex())
    # the RPC's legacy u64 weight (ref_time), as a node of Khala's era answers
    assert quoted == {"weight": 200_000_000, "class": "normal", "partialFee": quoted["partialFee"]}
    info = bytes.fromhex(
        client.call(
            "state_call",
            "TransactionPaymentApi_query_info",
            "0x" + raw.hex() + len(raw).to_bytes(4, "little").hex(),
        )[2:]
    )
    # RuntimeDispatchInfo{weight: Weight{compact ref_time, compact proof_size}, class, fee}
    ref_time, offset = decode_compact(info, 0)
    proof_size, offset = decode_compact(info, offset)
    decoded = (ref_time, proof_size, info[offset], int.from_bytes(info[offset + 1 :], "little"))
    assert decoded == (200_000_000, 10_000, 0, int(quoted["partialFee"]))
    assert len(info) == offset + 1 + 16


def test_metadata_runtime_calls(client: Client) -> None:
    versions = client.call("state_call", "Metadata_metadata_versions", "0x")
    assert versions == "0x04" + (14).to_bytes(4, "little").hex()  # Vec<u32> [14]
    metadata = client.call("state_getMetadata")
    at_14 = client.call("state_call", "Metadata_metadata_at_version", "0x0e000000")
    assert at_14 == "0x01" + _compact_prefixed(metadata[2:])
    assert client.call("state_call", "Metadata_metadata_at_version", "0x0f000000") == "0x00"
    version = client.call("state_getRuntimeVersion")
    assert ["0x37e397fc7c91f5e4", 2] in version["apis"]  # Metadata API v2: the calls above


def test_subscriptions_over_http_get_a_nodes_internal_error(devnet: DevnetChain) -> None:
    url = f"http://127.0.0.1:{devnet.port}"
    for method in ("state_subscribeStorage", "state_subscribeRuntimeVersion"):
        request = {"jsonrpc": "2.0", "id": 1, "method": method, "params": []}
        answer = httpx.post(url, json=request, timeout=10).json()
        assert answer["error"]["code"] == -32603, answer


def _compact_prefixed(hex_body: str) -> str:
    length = len(hex_body) // 2
    assert length < 2**30
    return ((length << 2) | 2).to_bytes(4, "little").hex() + hex_body
