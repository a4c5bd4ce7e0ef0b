"""The devnet's one SCALE helper (``devnet.chain._codec``): compact integers and ``Reader``."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poolkeeper_devnet.codec import (
    Reader,
    ScaleError,
    decode_all,
    decode_compact,
    encode_bytes,
    encode_compact,
)

_BOUNDARIES = [0, 2**6 - 1, 2**6, 2**14 - 1, 2**14, 2**30 - 1, 2**30, 2**64, 2**536 - 1]


@pytest.mark.parametrize("n", _BOUNDARIES)
def test_compact_round_trips_at_each_boundary(n: int) -> None:
    encoded = encode_compact(n)
    assert decode_compact(encoded) == (n, len(encoded))
    assert decode_all(encoded, Reader.compact) == n


@pytest.mark.parametrize(
    ("n", "expected"),
    [(63, "fc"), (64, "0101"), (16383, "fdff"), (16384, "02000100"), (2**30, "0300000040")],
)
def test_compact_bytes_at_the_boundaries(n: int, expected: str) -> None:
    assert encode_compact(n).hex() == expected


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=2**536 - 1))
def test_any_unsigned_round_trips(n: int) -> None:
    assert Reader(memoryview(encode_compact(n))).compact() == n


def test_out_of_range_and_truncated() -> None:
    with pytest.raises(ScaleError):
        encode_compact(-1)
    with pytest.raises(ScaleError):
        encode_compact(2**536)
    for n in (2**6, 2**14, 2**30, 2**64):
        with pytest.raises(ScaleError):
            decode_compact(encode_compact(n)[:-1])
        with pytest.raises(ScaleError):
            Reader(encode_compact(n)[:-1]).compact()


def test_reader_vectors_options_and_trailing_bytes() -> None:
    data = encode_compact(2) + encode_bytes(b"ab") + encode_bytes(b"") + b"\x01" + b"\x07"
    reader = Reader(data)
    assert reader.vec(Reader.bytes_) == [b"ab", b""]
    assert reader.option(Reader.u8) == 7
    reader.end()
    with pytest.raises(ScaleError, match="trailing"):
        decode_all(data + b"\x00", lambda r: (r.vec(Reader.bytes_), r.option(Reader.u8)))
    with pytest.raises(ScaleError, match="exceeds"):
        Reader(encode_compact(10) + b"\x00").vec(Reader.u8)
