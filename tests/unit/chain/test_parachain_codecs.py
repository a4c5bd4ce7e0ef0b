"""The relay's parachain-mode codecs: ``Paras.Heads`` keys, header numbers, validation data."""

from __future__ import annotations

import pytest
import xxhash

from poolkeeper.chain import _scale as scale

# twox128("Paras") ++ twox128("Heads"), as every Polkadot-SDK relay chain has it.
PARAS_HEADS_PREFIX = "0xcd710b30bd2eab0352ddcc26417aa1941b3c252fcb29d88eff4f3de5de4476c3"


@pytest.mark.parametrize("para_id", [2004, 2035, 0, 2**32 - 1])
def test_paras_heads_key_is_prefix_then_twox64concat_of_the_u32(para_id: int) -> None:
    key = scale.paras_heads_key(para_id)
    assert key.startswith(PARAS_HEADS_PREFIX)
    tail = bytes.fromhex(key[len(PARAS_HEADS_PREFIX) :])
    encoded = para_id.to_bytes(4, "little")
    assert tail[8:] == encoded
    assert tail[:8] == xxhash.xxh64_intdigest(encoded, 0).to_bytes(8, "little")


@pytest.mark.parametrize("number", [0, 1, 63, 64, 16383, 16384, 10_000_000])
def test_header_number_reads_the_compact_after_the_parent_hash(number: int) -> None:
    header = b"\x11" * 32 + scale.compact(number) + b"\x22" * 64 + scale.compact(0)
    assert scale.header_number(header) == number


def test_relay_parent_number_skips_the_parent_head() -> None:
    parent_head = b"\x33" * 99
    data = scale.bytes_(parent_head) + (123_456).to_bytes(4, "little") + b"\x44" * 32 + bytes(4)
    assert scale.relay_parent_number(data) == 123_456


def test_relay_parent_number_of_truncated_data_is_an_error() -> None:
    with pytest.raises(ValueError, match="too short"):
        scale.relay_parent_number(scale.bytes_(b"\x01\x02") + b"\x05\x00")
    with pytest.raises(ValueError, match="runs past"):
        scale.read_bytes(scale.compact(10) + b"abc")


def test_read_bytes_returns_the_next_offset() -> None:
    data = scale.bytes_(b"hello") + scale.bytes_(b"")
    first, offset = scale.read_bytes(data)
    second, end = scale.read_bytes(data, offset)
    assert (first, second, end) == (b"hello", b"", len(data))
