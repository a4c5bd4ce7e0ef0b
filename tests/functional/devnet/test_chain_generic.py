"""substrate-interface, unmodified, against the devnet chain over a websocket: the generic
runtime (balances, batches, proxies, nonces, fees, signatures, errors)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from substrateinterface import Keypair, SubstrateInterface
from substrateinterface.exceptions import SubstrateRequestException

from poolkeeper_devnet.chain.server import DevnetChain
from tests.functional.devnet.conftest import dev_key

PHA = 10**12


def free_of(substrate: SubstrateInterface, key: Keypair) -> int:
    return int(substrate.query("System", "Account", [key.ss58_address]).value["data"]["free"])


def new_funded(substrate: SubstrateInterface, amount: int = 100 * PHA) -> Keypair:
    key = Keypair.create_from_mnemonic(Keypair.generate_mnemonic(), ss58_format=30)
    call = substrate.compose_call(
        "Balances", "transfer_keep_alive", {"dest": key.ss58_address, "value": amount}
    )
    receipt = substrate.submit_extrinsic(
        substrate.create_signed_extrinsic(call, dev_key("Alice")), wait_for_inclusion=True
    )
    assert receipt.is_success, receipt.error_message
    return key


def event_ids(receipt: Any) -> list[str]:
    return [f"{e.value['module_id']}.{e.value['event_id']}" for e in receipt.triggered_events]


def dispatch_error(receipt: Any) -> Any:
    """The raw DispatchError of System.ExtrinsicFailed (substrate-interface names module
    errors only: its ``error_message`` is None for ``Token(..)``)."""
    (failed,) = [
        e.value["attributes"]["dispatch_error"]
        for e in receipt.triggered_events
        if e.value["event_id"] == "ExtrinsicFailed"
    ]
    return failed


def existential_deposit(substrate: SubstrateInterface) -> int:
    return int(substrate.get_constant("Balances", "ExistentialDeposit").value)


def test_connect_reports_phala_properties(substrate: SubstrateInterface) -> None:
    substrate.init_runtime()
    assert substrate.ss58_format == 30
    assert substrate.token_decimals == 12
    assert substrate.token_symbol == "PHA"
    assert substrate.get_constant("System", "SS58Prefix").value == 30


def test_query_and_query_map_of_system_account(substrate: SubstrateInterface) -> None:
    alice = substrate.query("System", "Account", [dev_key("Alice").ss58_address]).value
    assert alice["data"]["free"] > 0
    accounts = {k.value: v.value for k, v in substrate.query_map("System", "Account", page_size=2)}
    assert dev_key("Ferdie").ss58_address in accounts
    assert len(accounts) >= 6


def test_transfer_keep_alive_charges_the_quoted_fee(substrate: SubstrateInterface) -> None:
    sender, dest = new_funded(substrate), new_funded(substrate, 2 * PHA)
    before_sender, before_dest = free_of(substrate, sender), free_of(substrate, dest)
    call = substrate.compose_call(
        "Balances", "transfer_keep_alive", {"dest": dest.ss58_address, "value": PHA}
    )
    quoted = substrate.rpc_request(
        "payment_queryInfo", [str(substrate.create_signed_extrinsic(call, sender).data)]
    )["result"]
    receipt = substrate.submit_extrinsic(
        substrate.create_signed_extrinsic(call, sender), wait_for_inclusion=True
    )
    assert receipt.is_success
    assert "Balances.Transfer" in event_ids(receipt)
    assert receipt.total_fee_amount == int(quoted["partialFee"]) > 0
    assert free_of(substrate, dest) == before_dest + PHA
    assert free_of(substrate, sender) == before_sender - PHA - receipt.total_fee_amount


def test_overdraft_fails_with_token_funds_unavailable(substrate: SubstrateInterface) -> None:
    """Khala's fungible-based pallet_balances: not a module error but Token(FundsUnavailable)."""
    sender = new_funded(substrate, 5 * PHA)
    call = substrate.compose_call(
        "Balances",
        "transfer_allow_death",
        {"dest": dev_key("Bob").ss58_address, "value": 50 * PHA},
    )
    receipt = substrate.submit_extrinsic(
        substrate.create_signed_extrinsic(call, sender), wait_for_inclusion=True
    )
    assert not receipt.is_success
    assert dispatch_error(receipt) == {"Token": "FundsUnavailable"}
    assert free_of(substrate, sender) == 5 * PHA - receipt.total_fee_amount


def test_keep_alive_below_the_existential_deposit_is_not_expendable(
    substrate: SubstrateInterface,
) -> None:
    sender = new_funded(substrate, 5 * PHA)
    bob = dev_key("Bob").ss58_address
    balance = free_of(substrate, sender)

    def keep_alive(value: int) -> Any:
        call = substrate.compose_call(
            "Balances", "transfer_keep_alive", {"dest": bob, "value": value}
        )
        return substrate.create_signed_extrinsic(call, sender)

    fee = int(
        substrate.rpc_request("payment_queryInfo", [str(keep_alive(balance - PHA).data)])["result"][
            "partialFee"
        ]
    )
    # after the fee, half the existential deposit would remain
    amount = balance - fee - existential_deposit(substrate) // 2
    receipt = substrate.submit_extrinsic(keep_alive(amount), wait_for_inclusion=True)
    assert receipt.total_fee_amount == fee
    assert dispatch_error(receipt) == {"Token": "NotExpendable"}
    amount = free_of(substrate, sender) - fee - existential_deposit(substrate) // 2
    # the same amount may leave through transfer_allow_death: the account is reaped
    call = substrate.compose_call(
        "Balances", "transfer_allow_death", {"dest": bob, "value": amount}
    )
    receipt = substrate.submit_extrinsic(
        substrate.create_signed_extrinsic(call, sender), wait_for_inclusion=True
    )
    assert receipt.is_success
    assert "System.KilledAccount" in event_ids(receipt)
    assert free_of(substrate, sender) == 0


def test_transfer_below_the_existential_deposit_to_a_new_account_is_below_minimum(
    substrate: SubstrateInterface,
) -> None:
    sender = new_funded(substrate, 5 * PHA)
    fresh = Keypair.create_from_mnemonic(Keypair.generate_mnemonic(), ss58_format=30)
    call = substrate.compose_call(
        "Balances",
        "transfer_keep_alive",
        {"dest": fresh.ss58_address, "value": existential_deposit(substrate) - 1},
    )
    receipt = substrate.submit_extrinsic(
        substrate.create_signed_extrinsic(call, sender), wait_for_inclusion=True
    )
    assert dispatch_error(receipt) == {"Token": "BelowMinimum"}
    assert free_of(substrate, fresh) == 0


def test_reserve_failures_keep_the_balances_module_error(substrate: SubstrateInterface) -> None:
    """Currency::reserve (the proxy deposit) still reports Balances.InsufficientBalance;
    an account holding a reserve cannot drop below the existential deposit (Token.Frozen)."""
    deposit = int(substrate.get_constant("Proxy", "ProxyDepositBase").value) + int(
        substrate.get_constant("Proxy", "ProxyDepositFactor").value
    )
    poor = new_funded(substrate, deposit // 2)
    add = substrate.compose_call(
        "Proxy",
        "add_proxy",
        {"delegate": dev_key("Bob").ss58_address, "proxy_type": "Any", "delay": 0},
    )
    receipt = substrate.submit_extrinsic(
        substrate.create_signed_extrinsic(add, poor), wait_for_inclusion=True
    )
    assert not receipt.is_success
    assert receipt.error_message["name"] == "InsufficientBalance"
    rich = new_funded(substrate, deposit + 5 * PHA)
    receipt = substrate.submit_extrinsic(
        substrate.create_signed_extrinsic(add, rich), wait_for_inclusion=True
    )
    assert receipt.is_success, receipt.error_message
    account = substrate.query("System", "Account", [rich.ss58_address]).value
    assert account["data"]["reserved"] == deposit
    assert account["consumers"] == 1
    free = int(account["data"]["free"])
    bob = dev_key("Bob").ss58_address

    def allow_death(value: int) -> Any:
        call = substrate.compose_call(
            "Balances", "transfer_allow_death", {"dest": bob, "value": value}
        )
        return substrate.create_signed_extrinsic(call, rich)

    quote = substrate.rpc_request("payment_queryInfo", [str(allow_death(free - PHA).data)])
    fee = int(quote["result"]["partialFee"])
    # after the fee, half the existential deposit would remain next to the reserve
    amount = free - fee - existential_deposit(substrate) // 2
    receipt = substrate.submit_extrinsic(allow_death(amount), wait_for_inclusion=True)
    assert receipt.total_fee_amount == fee
    assert dispatch_error(receipt) == {"Token": "Frozen"}


def test_force_batch_reports_the_failed_item(substrate: SubstrateInterface) -> None:
    sender = new_funded(substrate, 10 * PHA)
    bob = dev_key("Bob").ss58_address
    calls = [
        substrate.compose_call("Balances", "transfer_keep_alive", {"dest": bob, "value": PHA}),
        substrate.compose_call(
            "Balances", "transfer_keep_alive", {"dest": bob, "value": 1000 * PHA}
        ),
        substrate.compose_call("Balances", "transfer_keep_alive", {"dest": bob, "value": PHA}),
    ]
    batch = substrate.compose_call("Utility", "force_batch", {"calls": calls})
    receipt = substrate.submit_extrinsic(
        substrate.create_signed_extrinsic(batch, sender), wait_for_inclusion=True
    )
    assert receipt.is_success
    ids = event_ids(receipt)
    assert ids.count("Utility.ItemCompleted") == 2
    assert ids.count("Utility.ItemFailed") == 1
    assert "Utility.BatchCompletedWithErrors" in ids
    failed = next(e for e in receipt.triggered_events if e.value["event_id"] == "ItemFailed")
    assert failed.value["attributes"]["error"] == {"Token": "FundsUnavailable"}
    assert free_of(substrate, sender) == 8 * PHA - receipt.total_fee_amount


def test_batch_stops_and_batch_all_rolls_back(substrate: SubstrateInterface) -> None:
    sender = new_funded(substrate, 10 * PHA)
    bob = dev_key("Bob").ss58_address
    good = substrate.compose_call("Balances", "transfer_keep_alive", {"dest": bob, "value": PHA})
    bad = substrate.compose_call(
        "Balances", "transfer_keep_alive", {"dest": bob, "value": 1000 * PHA}
    )
    batch = substrate.compose_call("Utility", "batch", {"calls": [good, bad, good]})
    receipt = substrate.submit_extrinsic(
        substrate.create_signed_extrinsic(batch, sender), wait_for_inclusion=True
    )
    assert receipt.is_success
    assert "Utility.BatchInterrupted" in event_ids(receipt)
    after_batch = free_of(substrate, sender)
    assert after_batch == 9 * PHA - receipt.total_fee_amount
    batch_all = substrate.compose_call("Utility", "batch_all", {"calls": [good, bad]})
    receipt = substrate.submit_extrinsic(
        substrate.create_signed_extrinsic(batch_all, sender), wait_for_inclusion=True
    )
    assert not receipt.is_success
    assert dispatch_error(receipt) == {"Token": "FundsUnavailable"}
    assert free_of(substrate, sender) == after_batch - receipt.total_fee_amount


def test_proxy_executes_for_the_real_account(substrate: SubstrateInterface) -> None:
    real, delegate = new_funded(substrate), new_funded(substrate)
    add = substrate.compose_call(
        "Proxy",
        "add_proxy",
        {"delegate": delegate.ss58_address, "proxy_type": "Any", "delay": 0},
    )
    receipt = substrate.submit_extrinsic(
        substrate.create_signed_extrinsic(add, real), wait_for_inclusion=True
    )
    assert receipt.is_success, receipt.error_message
    proxies = substrate.query("Proxy", "Proxies", [real.ss58_address]).value
    assert proxies[0][0]["delegate"] == delegate.ss58_address
    before = free_of(substrate, real)
    inner = substrate.compose_call(
        "Balances", "transfer_keep_alive", {"dest": dev_key("Bob").ss58_address, "value": PHA}
    )
    proxy = substrate.compose_call(
        "Proxy", "proxy", {"real": real.ss58_address, "force_proxy_type": None, "call": inner}
    )
    receipt = substrate.submit_extrinsic(
        substrate.create_signed_extrinsic(proxy, delegate), wait_for_inclusion=True
    )
    assert receipt.is_success
    executed = next(e for e in receipt.triggered_events if e.value["event_id"] == "ProxyExecuted")
    assert "Ok" in executed.value["attributes"]["result"]
    assert free_of(substrate, real) == before - PHA


def test_stake_pool_manager_proxy_may_not_transfer(substrate: SubstrateInterface) -> None:
    real, delegate = new_funded(substrate), new_funded(substrate)
    add = substrate.compose_call(
        "Proxy",
        "add_proxy",
        {"delegate": delegate.ss58_address, "proxy_type": "StakePoolManager", "delay": 0},
    )
    assert substrate.submit_extrinsic(
        substrate.create_signed_extrinsic(add, real), wait_for_inclusion=True
    ).is_success
    before = free_of(substrate, real)
    inner = substrate.compose_call(
        "Balances", "transfer_keep_alive", {"dest": delegate.ss58_address, "value": PHA}
    )
    proxy = substrate.compose_call(
        "Proxy", "proxy", {"real": real.ss58_address, "force_proxy_type": None, "call": inner}
    )
    receipt = substrate.submit_extrinsic(
        substrate.create_signed_extrinsic(proxy, delegate), wait_for_inclusion=True
    )
    assert receipt.is_success
    executed = next(e for e in receipt.triggered_events if e.value["event_id"] == "ProxyExecuted")
    assert "Err" in executed.value["attributes"]["result"]
    assert free_of(substrate, real) == before
    stranger = new_funded(substrate)
    receipt = substrate.submit_extrinsic(
        substrate.create_signed_extrinsic(proxy, stranger), wait_for_inclusion=True
    )
    assert not receipt.is_success
    assert receipt.error_message["name"] == "NotProxy"


def test_three_transactions_in_flight_and_a_future_nonce(
    devnet: DevnetChain, substrate: SubstrateInterface
) -> None:
    sender = new_funded(substrate)
    bob = dev_key("Bob").ss58_address
    nonce = substrate.get_account_nonce(sender.ss58_address)
    call = substrate.compose_call("Balances", "transfer_keep_alive", {"dest": bob, "value": PHA})
    devnet.call(lambda: setattr(devnet.server.faults, "paused", True))
    try:
        for offset in (2, 0, 1):
            substrate.submit_extrinsic(
                substrate.create_signed_extrinsic(call, sender, nonce=nonce + offset)
            )
        pending = substrate.rpc_request("system_accountNextIndex", [sender.ss58_address])
        assert pending["result"] == nonce + 3
    finally:
        devnet.call(lambda: setattr(devnet.server.faults, "paused", False))
    devnet.new_block()
    assert substrate.get_account_nonce(sender.ss58_address) == nonce + 3
    with pytest.raises(SubstrateRequestException) as info:
        substrate.submit_extrinsic(substrate.create_signed_extrinsic(call, sender, nonce=nonce))
    assert info.value.args[0]["code"] == 1010
    assert info.value.args[0]["data"] == "Transaction is outdated"


def test_bad_signature_is_rejected(substrate: SubstrateInterface) -> None:
    sender = dev_key("Charlie")
    call = substrate.compose_call(
        "Balances", "transfer_keep_alive", {"dest": dev_key("Bob").ss58_address, "value": PHA}
    )
    xt = substrate.create_signed_extrinsic(call, sender)
    raw = bytearray(xt.data.data)
    raw[40] ^= 0xFF  # inside the signature, after the length, version and address
    with pytest.raises(SubstrateRequestException) as info:
        substrate.rpc_request("author_submitExtrinsic", ["0x" + raw.hex()])
    assert info.value.args[0] == {
        "code": 1010,
        "message": "Invalid Transaction",
        "data": "Transaction has a bad signature",
    }


def test_unfunded_sender_cannot_pay_fees(substrate: SubstrateInterface) -> None:
    poor = Keypair.create_from_mnemonic(Keypair.generate_mnemonic(), ss58_format=30)
    call = substrate.compose_call(
        "Balances", "transfer_keep_alive", {"dest": dev_key("Bob").ss58_address, "value": 1}
    )
    with pytest.raises(SubstrateRequestException) as info:
        substrate.submit_extrinsic(substrate.create_signed_extrinsic(call, poor))
    assert info.value.args[0]["data"].startswith("Inability to pay some fees")


def test_blocks_link_and_carry_events(substrate: SubstrateInterface) -> None:
    sender = new_funded(substrate)
    block_hash = substrate.get_chain_head()
    block = substrate.get_block(block_hash)
    parent = substrate.get_block(block["header"]["parentHash"])
    assert parent["header"]["number"] == block["header"]["number"] - 1
    events = substrate.get_events(block_hash)
    assert any(e.value["event_id"] == "ExtrinsicSuccess" for e in events)
    assert sender.ss58_address in json.dumps([e.value for e in events], default=str)


def test_finalized_blocks_have_grandpa_justifications(
    devnet: DevnetChain, substrate: SubstrateInterface
) -> None:
    devnet.new_block()
    devnet.new_block()
    finalized = substrate.get_chain_finalised_head()
    raw = substrate.rpc_request("chain_getBlock", [finalized])["result"]
    assert raw["justifications"][0][0] == "FRNK"
    head = substrate.rpc_request("chain_getBlock", [substrate.get_chain_head()])["result"]
    assert head["justifications"] is None
    number = substrate.get_block_number(finalized)
    proof = substrate.rpc_request("grandpa_proveFinality", [number])["result"]
    assert proof.startswith(finalized)


def test_new_heads_subscription_sees_blocks(
    devnet: DevnetChain, substrate: SubstrateInterface
) -> None:
    seen: list[int] = []

    def handler(header: Any, update_nr: int, subscription_id: str) -> Any:
        seen.append(header["header"]["number"])
        if update_nr == 0:
            devnet.call(devnet.server.produce_block)
        return True if len(seen) >= 2 else None

    deadline = time.monotonic() + 10
    substrate.subscribe_block_headers(handler)
    assert seen[1] == seen[0] + 1
    assert time.monotonic() < deadline


def test_expired_mortal_era_and_another_genesis_are_bad_signatures(
    devnet: DevnetChain, substrate: SubstrateInterface, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender = new_funded(substrate, 5 * PHA)
    call = substrate.compose_call(
        "Balances", "transfer_keep_alive", {"dest": dev_key("Bob").ss58_address, "value": PHA}
    )
    mortal = substrate.create_signed_extrinsic(call, sender, era={"period": 4})
    for _ in range(6):
        devnet.new_block()
    with pytest.raises(SubstrateRequestException) as expired:
        substrate.submit_extrinsic(mortal)
    # as on a node: CheckMortality takes the era's birth block relative to the current
    # block, a later block than the one signed for, so the signature no longer matches
    assert expired.value.args[0]["data"] == "Transaction has a bad signature"
    fresh = substrate.create_signed_extrinsic(call, sender, era={"period": 64})
    assert substrate.submit_extrinsic(fresh, wait_for_inclusion=True).is_success
    # signed for another chain (the genesis hash in the signed payload)
    real_block_hash = substrate.get_block_hash

    def other_genesis(block_id: int | None = None) -> str:
        return "0x" + "42" * 32 if block_id == 0 else str(real_block_hash(block_id))

    monkeypatch.setattr(substrate, "get_block_hash", other_genesis)
    other_chain = substrate.create_signed_extrinsic(call, sender)
    monkeypatch.undo()
    with pytest.raises(SubstrateRequestException) as bad:
        substrate.submit_extrinsic(other_chain)
    assert bad.value.args[0]["data"] == "Transaction has a bad signature"
