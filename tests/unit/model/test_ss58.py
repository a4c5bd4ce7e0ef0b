"""SS58 handling agrees with substrate-interface and catches typos and wrong networks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scalecodec.utils.ss58 import ss58_encode

from poolkeeper.model.ss58 import AddressError, check_address, decode_address, encode_address


@given(st.binary(min_size=32, max_size=32), st.sampled_from([0, 2, 30, 42, 64, 255, 1000]))
def test_encoding_matches_scalecodec_and_round_trips(account: bytes, prefix: int) -> None:
    ours = encode_address(account, prefix)
    assert ours == ss58_encode(account, ss58_format=prefix)
    assert decode_address(ours) == (prefix, account)


def test_checksum_typo_is_caught() -> None:
    address = encode_address(bytes(range(32)), 30)
    index = 10
    replacement = "2" if address[index] != "2" else "3"
    typo = address[:index] + replacement + address[index + 1 :]
    with pytest.raises(AddressError, match="checksum"):
        decode_address(typo)


def test_wrong_network_prefix_is_named() -> None:
    generic = encode_address(bytes(32), 42)
    with pytest.raises(AddressError, match="prefix 42, expected 30"):
        check_address(generic, 30)


def test_non_base58_character() -> None:
    with pytest.raises(AddressError, match="not base58"):
        decode_address("0OIl")
