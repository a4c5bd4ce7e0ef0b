"""Assets (W-PHA) and PhalaWrappedBalances: wrap, unwrap, transfers and their errors."""

from __future__ import annotations

from poolkeeper_devnet.chain.pallets.assets import WRAPPED_BALANCES_ACCOUNT
from tests.unit.devnet._phala_chain import PHA, Chain, account


def test_wrap_and_unwrap_move_pha_against_wpha() -> None:
    chain = Chain()
    alice = account("alice")
    chain.balances.deposit(alice, 100 * PHA)
    chain.call("PhalaWrappedBalances", "wrap", alice, amount=40 * PHA)
    assets = chain.pallet("Assets")
    assert assets.balance(10000, alice) == 40 * PHA
    assert chain.balances.free(alice) == 60 * PHA
    assert chain.balances.free(WRAPPED_BALANCES_ACCOUNT) == 40 * PHA
    assert "0x" + b"wpha/".hex() + "00" * 27 == WRAPPED_BALANCES_ACCOUNT
    assert chain.events()[-1] == (
        "PhalaWrappedBalances",
        "Wrapped",
        {"user": alice, "amount": 40 * PHA},
    )
    changes = chain.drain()
    assert (
        "Assets",
        "Account",
        (10000, alice),
        {"balance": 40 * PHA, "is_frozen": False, "reason": "Sufficient", "extra": ()},
    ) in changes
    chain.call("PhalaWrappedBalances", "unwrap", alice, amount=15 * PHA)
    assert assets.balance(10000, alice) == 25 * PHA
    assert chain.balances.free(alice) == 75 * PHA
    chain.call("PhalaWrappedBalances", "unwrap_all", alice)
    assert assets.balance(10000, alice) == 0
    assert chain.balances.free(alice) == 100 * PHA
    assert ("Assets", "Account", (10000, alice), None) in chain.drain()


def test_wrap_and_unwrap_errors() -> None:
    chain = Chain()
    alice = account("alice")
    chain.balances.deposit(alice, 10 * PHA)
    assert chain.error_of("PhalaWrappedBalances", "wrap", alice, amount=11 * PHA) == (
        "Token.FundsUnavailable"
    )
    assert chain.error_of("PhalaWrappedBalances", "unwrap", alice, amount=PHA) == (
        "PhalaWrappedBalances.StakerAccountNotFound"
    )
    chain.call("PhalaWrappedBalances", "wrap", alice, amount=5 * PHA)
    assert chain.error_of("PhalaWrappedBalances", "unwrap", alice, amount=6 * PHA) == (
        "PhalaWrappedBalances.UnwrapAmountExceedsAvaliableStake"
    )
    assert chain.error_of("PhalaWrappedBalances", "wrap", None, amount=PHA) == "System.BadOrigin"
    assert chain.error_of(
        "PhalaWrappedBalances", "vote", alice, aye_amount=0, nay_amount=0, vote_id=0
    ) == ("PhalaWrappedBalances.CallNotSupported")


def test_asset_transfer() -> None:
    chain = Chain()
    alice, bob = account("alice"), account("bob")
    chain.balances.deposit(alice, 10 * PHA)
    chain.call("PhalaWrappedBalances", "wrap", alice, amount=5 * PHA)
    chain.call("Assets", "transfer_keep_alive", alice, id=10000, target={"Id": bob}, amount=2 * PHA)
    assert chain.pallet("Assets").balance(10000, bob) == 2 * PHA
    assert chain.events()[-1] == (
        "Assets",
        "Transferred",
        {"asset_id": 10000, "from": alice, "to": bob, "amount": 2 * PHA},
    )
    assert chain.error_of("Assets", "transfer", bob, id=10000, target=alice, amount=3 * PHA) == (
        "Assets.BalanceLow"
    )
