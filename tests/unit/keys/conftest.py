"""Shared fixtures for the keys tests: a well-known test mnemonic and its secret forms."""

from __future__ import annotations

import pytest

DEV_PHRASE = "bottom drive obey lake curtain smoke basket hold race lonely fit walk"
"""Substrate's public development mnemonic: never holds value on a real network."""


@pytest.fixture
def dev_phrase() -> str:
    return DEV_PHRASE
