"""The product's one SCALE compact integer: round trips, mode boundaries, and scalecodec's bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scalecodec.base import RuntimeConfiguration, ScaleBytes
from scalecodec.type_registry import load_type_registry_preset

from poolkeeper.model.scale import compact, read_compact

_BOUNDARIES = [
    0,
    1,
    2**6 - 1,
    2**6,
    2**14 - 1,
    2**14,
    2**30 - 1,
    2**30,
    2**32 - 1,
    2**32,
    2**64 - 1,
    2**64,
    2**128 - 1,
    2**536 - 1,
]


def _scalecodec_compact(n: int) -> bytes:
    config = RuntimeConfiguration()
    config.update_type_registry(load_type_registry_preset("legacy"))
    return bytes(config.create_scale_object("Compact<u128>").encode(n).data)


@pytest.mark.parametrize("n", _BOUNDARIES)
def test_round_trip_at_each_mode_boundary(n: int) -> None:
    encoded = compact(n)
    assert read_compact(encoded) == (n, len(encoded))
    assert read_compact(b"\xff" + encoded + b"\x00", 1) == (n, 1 + len(encoded))


@pytest.mark.parametrize(
    ("n", "size"),
    [(2**6 - 1, 1), (2**6, 2), (2**14 - 1, 2), (2**14, 4), (2**30 - 1, 4), (2**30, 5)],
)
def test_mode_changes_exactly_at_the_boundaries(n: int, size: int) -> None:
    assert len(compact(n)) == size


@pytest.mark.parametrize("n", [n for n in _BOUNDARIES if n < 2**128])
def test_bytes_are_scalecodecs(n: int) -> None:
    assert compact(n) == _scalecodec_compact(n)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=2**536 - 1))
def test_any_unsigned_round_trips(n: int) -> None:
    encoded = compact(n)
    assert read_compact(memoryview(encoded)) == (n, len(encoded))


def test_out_of_range_values_are_refused() -> None:
    with pytest.raises(ValueError, match="unsigned"):
        compact(-1)
    with pytest.raises(ValueError, match="67"):
        compact(2**536)


@pytest.mark.parametrize("n", [2**6, 2**14, 2**30, 2**64])
def test_truncated_input_raises_index_error(n: int) -> None:
    encoded = compact(n)
    with pytest.raises(IndexError):
        read_compact(encoded[:-1])
    with pytest.raises(IndexError):
        read_compact(b"")


def test_decoded_from_scalecodec_bytes() -> None:
    config = RuntimeConfiguration()
    config.update_type_registry(load_type_registry_preset("legacy"))
    for n in _BOUNDARIES[:-1]:
        raw = _scalecodec_compact(n)
        assert config.create_scale_object("Compact<u128>", data=ScaleBytes(raw)).decode() == n
        assert read_compact(raw) == (n, len(raw))
