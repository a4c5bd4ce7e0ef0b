"""Splits a pRuntime's egress (SCALE) into the signed messages the chain must receive.

``GetEgressMessages`` answers ``Vec<(MessageOrigin, Vec<SignedMessage>)>``; the relay
needs each message's sender, sequence and exact bytes to submit it with
``PhalaMq.sync_offchain_message``. The shapes are fixed (PROTOCOL.md §1.4), so a
hand-written reader is enough and keeps relays independent of any SCALE library.
"""

from __future__ import annotations

from dataclasses import dataclass

from poolkeeper.chain._scale import read_compact
from poolkeeper.chain.ports import CallSpec

_FIXED_32 = {1, 2, 3, 6}
_BYTES = {0, 4}


class EgressDecodeError(ValueError):
    """The egress bytes do not have the documented shape."""


@dataclass(frozen=True)
class EgressMessage:
    """One signed message from a worker, ready to submit."""

    sender: bytes
    """SCALE ``MessageOrigin``."""
    sequence: int
    signed_message: bytes
    """SCALE ``SignedMessage``, exactly as the worker produced it."""

    def call(self) -> CallSpec:
        return CallSpec("PhalaMq", "sync_offchain_message", raw_args=self.signed_message)


def _origin_end(data: bytes, offset: int) -> int:
    variant = data[offset]
    offset += 1
    if variant in _FIXED_32:
        return offset + 32
    if variant in _BYTES:
        length, offset = read_compact(data, offset)
        return offset + length
    if variant == 5:
        return offset
    raise EgressDecodeError(f"unknown MessageOrigin variant {variant}")


def _skip_bytes(data: bytes, offset: int) -> int:
    length, offset = read_compact(data, offset)
    return offset + length


def split_egress(data: bytes) -> list[EgressMessage]:
    """All messages in ``Vec<(MessageOrigin, Vec<SignedMessage>)>``, in order."""
    out: list[EgressMessage] = []
    try:
        groups, offset = read_compact(data, 0)
        for _ in range(groups):
            start = offset
            offset = _origin_end(data, offset)
            sender = data[start:offset]
            count, offset = read_compact(data, offset)
            for _ in range(count):
                msg_start = offset
                offset = _origin_end(data, offset)  # message.sender
                offset = _skip_bytes(data, offset)  # destination topic
                offset = _skip_bytes(data, offset)  # payload
                sequence = int.from_bytes(data[offset : offset + 8], "little")
                offset += 8
                offset = _skip_bytes(data, offset)  # signature
                if offset > len(data):
                    raise EgressDecodeError("egress ends inside a message")
                out.append(EgressMessage(sender, sequence, data[msg_start:offset]))
    except IndexError as exc:
        raise EgressDecodeError("egress ends early") from exc
    if offset != len(data):
        raise EgressDecodeError(f"{len(data) - offset} trailing bytes after egress")
    return out
