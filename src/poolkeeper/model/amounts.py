"""Amounts of PHA as operators write them and as the chain counts them.

Operators write ``"5000 PHA"`` or ``"0.5 PHA"``; the chain counts integer plancks
(1 PHA = 10**12 plancks). Everything past the inventory carries plain ``int`` plancks,
so no float ever touches a balance.
"""

from __future__ import annotations

import re
from decimal import Context, Decimal, InvalidOperation

PLANCKS_PER_PHA = 10**12
DECIMALS = 12

_AMOUNT = re.compile(r"^\s*(?P<num>[+-]?[0-9][0-9_]*(?:\.[0-9_]*)?)\s*(?P<unit>[A-Za-z]*)\s*$")
_EXACT = Context(prec=100)
_UNITS = {"PHA": PLANCKS_PER_PHA, "PLANCK": 1, "PLANCKS": 1, "": 1}


class AmountError(ValueError):
    """An amount that cannot be read. The message says what would be right."""


def parse_amount(value: object) -> int:
    """Read an amount: an integer of plancks, or a string ``"<number> PHA"`` / ``"<int> planck"``.

    Rejects negatives, more than 12 decimals, fractions of a planck, unknown units,
    booleans and floats (a float cannot carry 12 decimals exactly).
    """
    if isinstance(value, bool):
        raise AmountError(f"expected an amount like '5000 PHA', got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise AmountError(f"amount must not be negative, got {value}")
        return value
    if isinstance(value, float):
        raise AmountError(
            f"write amounts as a string with a unit, like '{value} PHA', not {value!r}"
        )
    if not isinstance(value, str):
        raise AmountError(f"expected an amount like '5000 PHA', got {type(value).__name__}")
    match = _AMOUNT.match(value)
    if match is None:
        raise AmountError(f"cannot read amount {value!r} (write e.g. '5000 PHA' or '0.5 PHA')")
    unit_text = match.group("unit")
    unit = unit_text.upper()
    if unit not in _UNITS:
        raise AmountError(f"unknown unit {unit_text!r} in {value!r} (use PHA or planck)")
    try:
        number = Decimal(match.group("num").replace("_", ""))
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only decimals
        raise AmountError(f"cannot read amount {value!r}") from exc
    if number < 0:
        raise AmountError(f"amount must not be negative, got {value!r}")
    exponent = number.as_tuple().exponent
    decimals = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    if unit == "PHA" and decimals > DECIMALS:
        raise AmountError(f"{value!r} has more than {DECIMALS} decimals (1 planck = 1e-12 PHA)")
    plancks = _EXACT.multiply(number, Decimal(_UNITS[unit]))
    if plancks != plancks.to_integral_value():
        raise AmountError(f"{value!r} is not a whole number of plancks")
    return int(plancks)


def format_pha(plancks: int) -> str:
    """Render plancks as PHA without losing precision: ``12500000000000 -> '12.5 PHA'``."""
    sign = "-" if plancks < 0 else ""
    whole, frac = divmod(abs(plancks), PLANCKS_PER_PHA)
    if frac == 0:
        return f"{sign}{whole} PHA"
    frac_text = f"{frac:0{DECIMALS}d}".rstrip("0")
    return f"{sign}{whole}.{frac_text} PHA"
