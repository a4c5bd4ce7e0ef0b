"""Requests whose payload many workers share are encoded once per payload object."""

from __future__ import annotations

from poolkeeper.pruntime.client import SharedBodies
from poolkeeper.pruntime.messages import Blocks


def test_the_same_payload_object_is_encoded_once_and_gives_the_same_bytes() -> None:
    shared = SharedBodies()
    payload = bytes(range(256)) * 400
    first = shared.encoded("DispatchBlocks", payload, Blocks(payload))
    again = [shared.encoded("DispatchBlocks", payload, Blocks(payload)) for _ in range(50)]
    assert shared.encodings == 1
    assert all(a is first for a in again)
    assert first == Blocks(payload).encode()


def test_an_equal_payload_in_another_object_or_method_is_encoded_again() -> None:
    shared = SharedBodies()
    payload = b"\x01" * 1000
    copy = bytearray(payload)
    shared.encoded("DispatchBlocks", payload, Blocks(payload))
    assert (
        shared.encoded("DispatchBlocks", bytes(copy), Blocks(bytes(copy)))
        == Blocks(payload).encode()
    )
    shared.encoded("SyncHeader", payload, Blocks(payload))
    assert shared.encodings == 3


def test_only_the_last_few_payloads_are_kept() -> None:
    shared = SharedBodies(kept=2)
    payloads = [bytes([i]) * 100 for i in range(5)]
    for payload in payloads:
        shared.encoded("DispatchBlocks", payload, Blocks(payload))
    assert len(shared._entries) == 2
    shared.encoded("DispatchBlocks", payloads[0], Blocks(payloads[0]))
    assert shared.encodings == 6  # the first was dropped
