"""Amount parsing: human text in, exact plancks out, clear errors for everything else."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poolkeeper.model.amounts import PLANCKS_PER_PHA, AmountError, format_pha, parse_amount


@pytest.mark.parametrize(
    ("text", "plancks"),
    [
        ("5000 PHA", 5000 * PLANCKS_PER_PHA),
        ("0.5 PHA", PLANCKS_PER_PHA // 2),
        ("0.000000000001 PHA", 1),
        ("1_000 pha", 1000 * PLANCKS_PER_PHA),
        ("12 planck", 12),
        (7, 7),
        ("7", 7),
    ],
)
def test_parses_valid_amounts(text: str | int, plancks: int) -> None:
    assert parse_amount(text) == plancks


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-1 PHA", "negative"),
        (-5, "negative"),
        ("0.0000000000001 PHA", "more than 12 decimals"),
        ("5 DOT", "unknown unit"),
        ("1.5 planck", "whole number of plancks"),
        ("lots", "cannot read"),
        (1.5, "string with a unit"),
        (True, "expected an amount"),
        (None, "expected an amount"),
    ],
)
def test_rejects_bad_amounts_with_a_reason(text: object, message: str) -> None:
    with pytest.raises(AmountError, match=message):
        parse_amount(text)


@given(st.integers(min_value=0, max_value=10**30))
def test_format_then_parse_is_identity(plancks: int) -> None:
    assert parse_amount(format_pha(plancks)) == plancks


def test_format_drops_trailing_zeros() -> None:
    assert format_pha(12_500_000_000_000) == "12.5 PHA"
    assert format_pha(3 * PLANCKS_PER_PHA) == "3 PHA"
