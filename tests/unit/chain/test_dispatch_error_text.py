"""How the chain adapter names a DispatchError in an action's result: module errors by
their pallet and name, the other kinds (Token, Arithmetic, ...) as ``Kind.Variant``."""

from __future__ import annotations

from typing import Any

import pytest

from poolkeeper.chain._events import dispatch_error_text


class _NoMetadata:
    """Non-module errors need no metadata: touching it fails the test."""

    @property
    def metadata(self) -> Any:
        raise AssertionError("metadata read for a non-module error")


@pytest.mark.parametrize(
    ("error", "text"),
    [
        ({"Token": "FundsUnavailable"}, "Token.FundsUnavailable"),
        ({"Token": "NotExpendable"}, "Token.NotExpendable"),
        ({"Arithmetic": "Overflow"}, "Arithmetic.Overflow"),
        ("BadOrigin", "BadOrigin"),
        ({"CannotLookup": None}, "CannotLookup"),
    ],
)
def test_non_module_errors_read_as_kind_and_variant(error: Any, text: str) -> None:
    assert dispatch_error_text(_NoMetadata(), error) == text  # type: ignore[arg-type]
