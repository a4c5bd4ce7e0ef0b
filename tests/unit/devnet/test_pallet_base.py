"""The engine ↔ pallet contract: change journal, rollback snapshots, the test context."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from poolkeeper_devnet.chain.pallets import (
    BadOrigin,
    BlockContext,
    DispatchError,
    Pallet,
    SimpleBlockContext,
    phala_pallet_classes,
)


class Counter(Pallet):
    name = "Counter"

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, int] = {}

    def dispatch(
        self, ctx: BlockContext, signer: str | None, call: str, args: Mapping[str, Any]
    ) -> None:
        if signer is None:
            raise BadOrigin()
        if call != "bump":
            raise DispatchError("Counter", "UnknownCall")
        self.values[signer] = self.values.get(signer, 0) + int(args["by"])
        self.record_change("Values", (signer,), self.values[signer])
        ctx.emit("Counter", "Bumped", who=signer, by=args["by"])


def test_changes_are_drained_last_value_wins() -> None:
    pallet, ctx = Counter(), SimpleBlockContext()
    pallet.dispatch(ctx, "0x01", "bump", {"by": 2})
    pallet.dispatch(ctx, "0x01", "bump", {"by": 3})
    assert list(pallet.take_storage_changes()) == [("Values", ("0x01",), 5)]
    assert list(pallet.take_storage_changes()) == []
    assert [e.attributes for e in ctx.events] == [
        {"who": "0x01", "by": 2},
        {"who": "0x01", "by": 3},
    ]


def test_restore_undoes_state_and_journal() -> None:
    pallet, ctx = Counter(), SimpleBlockContext()
    saved = pallet.snapshot()
    pallet.dispatch(ctx, "0x01", "bump", {"by": 2})
    pallet.restore(saved)
    assert pallet.values == {}
    assert list(pallet.take_storage_changes()) == []


def test_errors_carry_names() -> None:
    with pytest.raises(DispatchError) as info:
        Counter().dispatch(SimpleBlockContext(), None, "bump", {})
    assert (info.value.pallet, info.value.error) == ("System", "BadOrigin")
    assert isinstance(SimpleBlockContext(), BlockContext)


def test_phala_pallet_classes_are_pallets() -> None:
    assert all(issubclass(cls, Pallet) for cls in phala_pallet_classes())
