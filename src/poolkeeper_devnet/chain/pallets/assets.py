"""Assets (W-PHA, asset 10000) and PhalaWrappedBalances (PHA ⇄ W-PHA) of the devnet chain.

Stake pools hold their stake as W-PHA in ``Assets.Account(10000, account)``; a pool's free
stake is the W-PHA balance of its ``pool_account_id``. Only what pool management needs is
simulated: balances, transfers and mint/burn by wrap/unwrap. Asset details, approvals,
freezing and the democracy-vote side of wrapped balances are not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from poolkeeper_devnet.chain.pallets._common import PhalaPallet
from poolkeeper_devnet.chain.pallets._values import ensure_signed, key32, to_int
from poolkeeper_devnet.chain.pallets.base import (
    AccountHex,
    BlockContext,
    DispatchError,
    balances,
)

WPHA_ASSET_ID = 10000
WRAPPED_BALANCES_ACCOUNT: AccountHex = "0x" + (b"wpha/" + bytes(27)).hex()
"""``PhalaWrappedBalances.WrappedBalancesAccountId``: holds the PHA backing all W-PHA."""


def asset_account_value(balance: int) -> dict[str, Any]:
    """``AssetAccount`` in value shape."""
    return {"balance": balance, "is_frozen": False, "reason": "Sufficient", "extra": ()}


class Assets(PhalaPallet):
    name = "Assets"

    def __init__(self) -> None:
        super().__init__()
        self.accounts: dict[tuple[int, AccountHex], int] = {}

    def genesis(self, config: Mapping[str, Any]) -> None:
        """``accounts: [{account, balance, asset_id (default 10000)}]``."""
        for entry in config.get("accounts", ()):
            asset_id = int(entry.get("asset_id", WPHA_ASSET_ID))
            account = key32(entry["account"])
            balance = self.accounts.get((asset_id, account), 0) + int(entry["balance"])
            self._set(asset_id, account, balance)

    def balance(self, asset_id: int, who: AccountHex) -> int:
        return self.accounts.get((asset_id, who), 0)

    def _set(self, asset_id: int, who: AccountHex, balance: int) -> None:
        if balance:
            self.accounts[(asset_id, who)] = balance
            self.record_change("Account", (asset_id, who), asset_account_value(balance))
        elif (asset_id, who) in self.accounts:
            del self.accounts[(asset_id, who)]
            self.record_change("Account", (asset_id, who), None)

    def mint(self, ctx: BlockContext, asset_id: int, who: AccountHex, amount: int) -> None:
        self._set(asset_id, who, self.balance(asset_id, who) + amount)
        ctx.emit(self.name, "Issued", asset_id=asset_id, owner=who, amount=amount)

    def burn(self, ctx: BlockContext, asset_id: int, who: AccountHex, amount: int) -> None:
        have = self.balance(asset_id, who)
        if amount > have:
            raise DispatchError(self.name, "BalanceLow")
        self._set(asset_id, who, have - amount)
        ctx.emit(self.name, "Burned", asset_id=asset_id, owner=who, balance=amount)

    def transfer(
        self, ctx: BlockContext, asset_id: int, src: AccountHex, dst: AccountHex, amount: int
    ) -> None:
        have = self.balance(asset_id, src)
        if amount > have:
            raise DispatchError(self.name, "BalanceLow")
        if src != dst:
            self._set(asset_id, src, have - amount)
            self._set(asset_id, dst, self.balance(asset_id, dst) + amount)
        ctx.emit(
            self.name, "Transferred", asset_id=asset_id, **{"from": src}, to=dst, amount=amount
        )

    def call_transfer(
        self, ctx: BlockContext, signer: AccountHex | None, args: Mapping[str, Any]
    ) -> None:
        who = ensure_signed(signer)
        self.transfer(ctx, to_int(args["id"]), who, key32(args["target"]), to_int(args["amount"]))

    call_transfer_keep_alive = call_transfer


class PhalaWrappedBalances(PhalaPallet):
    name = "PhalaWrappedBalances"

    def __init__(self) -> None:
        super().__init__()
        self.staker_accounts: set[AccountHex] = set()

    def _assets(self, ctx: BlockContext) -> Assets:
        assets = ctx.pallet("Assets")
        assert isinstance(assets, Assets)
        return assets

    def _note_staker(self, who: AccountHex) -> None:
        if who not in self.staker_accounts:
            self.staker_accounts.add(who)
            self.record_change("StakerAccounts", (who,), {"invest_pools": [], "locked": 0})

    def call_wrap(
        self, ctx: BlockContext, signer: AccountHex | None, args: Mapping[str, Any]
    ) -> None:
        user = ensure_signed(signer)
        amount = to_int(args["amount"])
        balances(ctx).transfer(user, WRAPPED_BALANCES_ACCOUNT, amount, True)
        self._assets(ctx).mint(ctx, WPHA_ASSET_ID, user, amount)
        self._note_staker(user)
        ctx.emit(self.name, "Wrapped", user=user, amount=amount)

    def _unwrap(self, ctx: BlockContext, user: AccountHex, amount: int) -> None:
        assets = self._assets(ctx)
        if amount > assets.balance(WPHA_ASSET_ID, user):
            raise DispatchError(self.name, "UnwrapAmountExceedsAvaliableStake")
        assets.burn(ctx, WPHA_ASSET_ID, user, amount)
        balances(ctx).transfer(WRAPPED_BALANCES_ACCOUNT, user, amount, False)
        ctx.emit(self.name, "Unwrapped", user=user, amount=amount)

    def call_unwrap(
        self, ctx: BlockContext, signer: AccountHex | None, args: Mapping[str, Any]
    ) -> None:
        user = ensure_signed(signer)
        if user not in self.staker_accounts:
            raise DispatchError(self.name, "StakerAccountNotFound")
        self._unwrap(ctx, user, to_int(args["amount"]))

    def call_unwrap_all(
        self, ctx: BlockContext, signer: AccountHex | None, args: Mapping[str, Any]
    ) -> None:
        user = ensure_signed(signer)
        if user not in self.staker_accounts:
            raise DispatchError(self.name, "StakerAccountNotFound")
        self._unwrap(ctx, user, self._assets(ctx).balance(WPHA_ASSET_ID, user))
