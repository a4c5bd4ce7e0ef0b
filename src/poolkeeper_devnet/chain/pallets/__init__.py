"""The pallets the devnet chain runs, and how the engine finds them.

``base`` is the engine ↔ pallet contract. The engine's own pallets (System, Balances,
Utility, Proxy, ...) live next to the engine; the Phala pallets live in this package.
They are found through ``phala_pallet_classes()``: the module named by
``PHALA_PALLETS_MODULE`` exposes ``PALLETS``, a sequence of ``Pallet`` subclasses.
Until that module exists the chain runs without Phala pallets and their calls fail
with a clear error.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from poolkeeper_devnet.chain.pallets.base import (
    AccountHex,
    BadOrigin,
    BalancesApi,
    BlockContext,
    DispatchError,
    Pallet,
    SimpleBlockContext,
    StorageChange,
    TokenError,
    balances,
)

PHALA_PALLETS_MODULE = "poolkeeper_devnet.chain.pallets.phala"


def phala_pallet_classes() -> list[type[Pallet]]:
    """The Phala pallet classes, or [] while their module is not there."""
    try:
        module = importlib.import_module(PHALA_PALLETS_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != PHALA_PALLETS_MODULE:
            raise
        return []
    classes: Sequence[type[Pallet]] = module.PALLETS
    return list(classes)


__all__ = [
    "PHALA_PALLETS_MODULE",
    "AccountHex",
    "BadOrigin",
    "BalancesApi",
    "BlockContext",
    "DispatchError",
    "Pallet",
    "SimpleBlockContext",
    "StorageChange",
    "TokenError",
    "balances",
    "phala_pallet_classes",
]
