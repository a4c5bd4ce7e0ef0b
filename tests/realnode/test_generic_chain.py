"""The generic chain behaviour poolkeeper relies on, checked on every chain peer.

Each test runs on chopsticks executing the real Asset Hub runtime and on the devnet
simulator, with substrate-interface 1.8 unmodified over the websocket. A difference
between the two is either a difference between runtimes the peer declares (address
format, the error name of an overdraft, node error texts) or a simulator bug.
"""

from __future__ import annotations

import time

import pytest
from substrateinterface import Keypair, SubstrateInterface
from substrateinterface.base import ExtrinsicReceipt
from substrateinterface.exceptions import SubstrateRequestException

from tests.peers import (
    NODE_INVALID_TRANSACTION_TEXTS,
    ChainPeer,
    dispatch_error_name,
    event_names,
    events_named,
    extrinsic_failure,
    fee_paid,
    free_balance,
    invalid_transaction_kind,
)


def transfer(substrate: SubstrateInterface, dest: Keypair, value: int) -> object:
    return substrate.compose_call(
        "Balances", "transfer_keep_alive", {"dest": dest.ss58_address, "value": value}
    )


def submit(substrate: SubstrateInterface, call: object, signer: Keypair) -> ExtrinsicReceipt:
    return substrate.submit_extrinsic(
        substrate.create_signed_extrinsic(call, signer), wait_for_inclusion=True
    )


def failing_item(substrate: SubstrateInterface, stranger: Keypair) -> object:
    """A call that fails the same way on every runtime: removing a proxy never added."""
    return substrate.compose_call(
        "Proxy",
        "remove_proxy",
        {"delegate": stranger.ss58_address, "proxy_type": "Any", "delay": 0},
    )


ITEM_ERROR = "Proxy.NotFound"


def require_call(substrate: SubstrateInterface, pallet: str, call: str) -> None:
    names = [c.name for c in substrate.get_metadata_module(pallet).calls]
    if call not in names:
        version = substrate.runtime_version
        pytest.skip(
            f"this runtime (spec {version}) has no {pallet}.{call}; its {pallet} calls: {names}"
        )


def test_metadata_has_what_the_product_uses(peer: ChainPeer, substrate: SubstrateInterface) -> None:
    substrate.init_runtime()
    assert substrate.runtime_version > 0
    assert substrate.metadata.value[1]["V14"] is not None
    pallets = {p.name for p in substrate.metadata.pallets}
    assert {"System", "Balances", "TransactionPayment", "Utility", "Proxy"} <= pallets
    assert substrate.get_constant("System", "SS58Prefix").value == peer.ss58_format
    assert substrate.get_constant("Balances", "ExistentialDeposit").value > 0
    header = substrate.get_block_header()["header"]
    assert header["number"] >= 0


def test_query_and_paged_query_map_of_system_account(
    peer: ChainPeer, substrate: SubstrateInterface
) -> None:
    accounts = [peer.new_account("query-map", tokens=3 + index) for index in range(3)]
    for index, account in enumerate(accounts):
        info = substrate.query("System", "Account", [account.ss58_address]).value
        assert info["data"]["free"] == (3 + index) * peer.unit
        assert info["nonce"] == 0
    seen = {
        key.value: value.value["data"]["free"]
        for key, value in substrate.query_map("System", "Account", page_size=2)
    }
    assert len(seen) > 2, "fewer accounts than one page: paging was not exercised"
    for index, account in enumerate(accounts):
        assert seen[account.ss58_address] == (3 + index) * peer.unit
    for dev in peer.dev_accounts.values():
        assert dev.ss58_address in seen


def test_transfer_keep_alive_included_with_its_transfer_event(
    peer: ChainPeer, substrate: SubstrateInterface
) -> None:
    sender, dest = peer.new_account("sender", 10), peer.new_account("dest", 1)
    receipt = submit(substrate, transfer(substrate, dest, 2 * peer.unit), sender)
    assert receipt.is_success, extrinsic_failure(substrate, receipt)
    assert receipt.block_hash is not None
    assert events_named(receipt, "Balances.Transfer") == [
        {"from": sender.ss58_address, "to": dest.ss58_address, "amount": 2 * peer.unit}
    ]
    assert "System.ExtrinsicSuccess" in event_names(receipt)
    assert free_balance(substrate, dest.ss58_address) == 3 * peer.unit
    assert substrate.get_account_nonce(sender.ss58_address) == 1


def test_quoted_fee_is_positive_and_is_what_is_charged(
    peer: ChainPeer, substrate: SubstrateInterface
) -> None:
    sender, dest = peer.new_account("fee-payer", 10), peer.new_account("fee-dest", 1)
    call = transfer(substrate, dest, peer.unit)
    quoted = substrate.get_payment_info(call, sender)
    assert quoted["partialFee"] > 0
    receipt = submit(substrate, call, sender)
    assert receipt.is_success
    paid = fee_paid(receipt, sender.ss58_address)
    assert paid == quoted["partialFee"]
    assert free_balance(substrate, sender.ss58_address) == 10 * peer.unit - peer.unit - paid


def test_overdraft_fails_with_the_runtimes_insufficient_balance_error(
    peer: ChainPeer, substrate: SubstrateInterface
) -> None:
    sender, dest = peer.new_account("overdraft", 5), peer.new_account("overdraft-dest", 1)
    receipt = submit(substrate, transfer(substrate, dest, 50 * peer.unit), sender)
    assert not receipt.is_success
    paid = fee_paid(receipt, sender.ss58_address)
    assert paid > 0
    assert free_balance(substrate, sender.ss58_address) == 5 * peer.unit - paid
    assert free_balance(substrate, dest.ss58_address) == peer.unit
    assert extrinsic_failure(substrate, receipt) == peer.overdraft_error


def test_batch_all_fails_whole_with_the_failing_items_error(
    peer: ChainPeer, substrate: SubstrateInterface
) -> None:
    sender, dest = peer.new_account("batch-all", 10), peer.new_account("batch-all-dest", 1)
    good, bad = transfer(substrate, dest, peer.unit), failing_item(substrate, dest)
    batch = substrate.compose_call("Utility", "batch_all", {"calls": [good, bad, good]})
    receipt = submit(substrate, batch, sender)
    assert not receipt.is_success
    assert extrinsic_failure(substrate, receipt) == ITEM_ERROR
    assert "Utility.ItemCompleted" not in event_names(receipt)
    assert free_balance(substrate, dest.ss58_address) == peer.unit, "batch_all was not rolled back"
    assert free_balance(substrate, sender.ss58_address) == 10 * peer.unit - fee_paid(
        receipt, sender.ss58_address
    )


def test_batch_is_interrupted_at_the_failing_index(
    peer: ChainPeer, substrate: SubstrateInterface
) -> None:
    sender, dest = peer.new_account("batch", 10), peer.new_account("batch-dest", 1)
    good, bad = transfer(substrate, dest, peer.unit), failing_item(substrate, dest)
    batch = substrate.compose_call("Utility", "batch", {"calls": [good, bad, good]})
    receipt = submit(substrate, batch, sender)
    assert receipt.is_success
    assert event_names(receipt).count("Utility.ItemCompleted") == 1
    (interrupted,) = events_named(receipt, "Utility.BatchInterrupted")
    assert interrupted["index"] == 1
    assert dispatch_error_name(substrate, interrupted["error"]) == ITEM_ERROR
    assert free_balance(substrate, dest.ss58_address) == 2 * peer.unit


def test_force_batch_reports_item_failed_at_the_right_index(
    peer: ChainPeer, substrate: SubstrateInterface
) -> None:
    require_call(substrate, "Utility", "force_batch")
    sender, dest = peer.new_account("force-batch", 10), peer.new_account("force-batch-dest", 1)
    good = transfer(substrate, dest, peer.unit)
    overdraft = transfer(substrate, dest, 100 * peer.unit)
    batch = substrate.compose_call(
        "Utility",
        "force_batch",
        {"calls": [good, failing_item(substrate, dest), good, overdraft, good]},
    )
    receipt = submit(substrate, batch, sender)
    assert receipt.is_success
    items = [
        (f"{e.value['module_id']}.{e.value['event_id']}", e.value["attributes"])
        for e in receipt.triggered_events
        if e.value["event_id"] in ("ItemCompleted", "ItemFailed")
    ]
    assert [name for name, _ in items] == [
        "Utility.ItemCompleted",
        "Utility.ItemFailed",
        "Utility.ItemCompleted",
        "Utility.ItemFailed",
        "Utility.ItemCompleted",
    ]
    assert dispatch_error_name(substrate, items[1][1]["error"]) == ITEM_ERROR
    assert "Utility.BatchCompletedWithErrors" in event_names(receipt)
    assert free_balance(substrate, dest.ss58_address) == 4 * peer.unit
    assert free_balance(substrate, sender.ss58_address) == 7 * peer.unit - fee_paid(
        receipt, sender.ss58_address
    )
    assert dispatch_error_name(substrate, items[3][1]["error"]) == peer.overdraft_error


def test_proxy_added_then_used_by_the_delegate(
    peer: ChainPeer, substrate: SubstrateInterface
) -> None:
    real, delegate = peer.new_account("real", 20), peer.new_account("delegate", 2)
    dest = peer.new_account("proxied-dest", 1)
    add = substrate.compose_call(
        "Proxy", "add_proxy", {"delegate": delegate.ss58_address, "proxy_type": "Any", "delay": 0}
    )
    receipt = submit(substrate, add, real)
    assert receipt.is_success, extrinsic_failure(substrate, receipt)
    (added,) = events_named(receipt, "Proxy.ProxyAdded")
    assert (added["delegator"], added["delegatee"]) == (real.ss58_address, delegate.ss58_address)
    proxies, _deposit = substrate.query("Proxy", "Proxies", [real.ss58_address]).value
    assert [p["delegate"] for p in proxies] == [delegate.ss58_address]
    before = free_balance(substrate, real.ss58_address)
    proxy = substrate.compose_call(
        "Proxy",
        "proxy",
        {
            "real": real.ss58_address,
            "force_proxy_type": None,
            "call": transfer(substrate, dest, 3 * peer.unit),
        },
    )
    receipt = submit(substrate, proxy, delegate)
    assert receipt.is_success
    (executed,) = events_named(receipt, "Proxy.ProxyExecuted")
    assert "Ok" in executed["result"]
    assert events_named(receipt, "Balances.Transfer")[0]["from"] == real.ss58_address
    assert free_balance(substrate, real.ss58_address) == before - 3 * peer.unit
    assert free_balance(substrate, dest.ss58_address) == 4 * peer.unit
    stranger = peer.new_account("stranger", 2)
    receipt = submit(substrate, proxy, stranger)
    assert not receipt.is_success
    assert extrinsic_failure(substrate, receipt) == "Proxy.NotProxy"


def test_three_extrinsics_in_flight_with_explicit_nonces_are_all_included(
    peer: ChainPeer, substrate: SubstrateInterface
) -> None:
    sender, dest = peer.new_account("in-flight", 10), peer.new_account("in-flight-dest", 1)
    first_block = substrate.get_block_number(substrate.get_chain_head()) + 1
    nonce = substrate.get_account_nonce(sender.ss58_address)
    hashes = []
    for offset in range(3):
        extrinsic = substrate.create_signed_extrinsic(
            transfer(substrate, dest, (offset + 1) * peer.unit), sender, nonce=nonce + offset
        )
        hashes.append(substrate.submit_extrinsic(extrinsic).extrinsic_hash)
    deadline = time.monotonic() + 30
    while substrate.get_account_nonce(sender.ss58_address) < nonce + 3:
        assert time.monotonic() < deadline, "the three extrinsics were not all included"
        time.sleep(0.2)
    included: dict[str, ExtrinsicReceipt] = {}
    for number in range(first_block, substrate.get_block_number(substrate.get_chain_head()) + 1):
        block_hash = substrate.get_block_hash(number)
        for extrinsic in substrate.get_block(block_hash)["extrinsics"]:
            extrinsic_hash = (
                f"0x{extrinsic.extrinsic_hash.hex()}" if extrinsic.extrinsic_hash else ""
            )
            if extrinsic_hash in hashes:
                included[extrinsic_hash] = ExtrinsicReceipt(
                    substrate, extrinsic_hash=extrinsic_hash, block_hash=block_hash
                )
    assert sorted(included) == sorted(hashes)
    assert all(receipt.is_success for receipt in included.values())
    assert free_balance(substrate, dest.ss58_address) == 7 * peer.unit
    with pytest.raises(SubstrateRequestException) as stale:
        substrate.submit_extrinsic(
            substrate.create_signed_extrinsic(transfer(substrate, dest, 1), sender, nonce=nonce)
        )
    assert invalid_transaction_kind(stale.value.args[0]) == "stale"


def _assert_invalid(peer: ChainPeer, error: dict[str, object], kind: str) -> None:
    assert invalid_transaction_kind(error) == kind
    if peer.node_error_texts:
        assert error == {
            "code": 1010,
            "message": "Invalid Transaction",
            "data": NODE_INVALID_TRANSACTION_TEXTS[kind],
        }


def test_tampered_signature_is_rejected_as_bad_proof(
    peer: ChainPeer, substrate: SubstrateInterface
) -> None:
    sender, dest = peer.new_account("tamper", 5), peer.new_account("tamper-dest", 1)
    extrinsic = substrate.create_signed_extrinsic(transfer(substrate, dest, peer.unit), sender)
    signature = next(iter(extrinsic.value["signature"].values()))[2:]
    encoded = extrinsic.data.to_hex()
    at = encoded.index(signature) + len(signature) // 2
    tampered = encoded[:at] + ("0" if encoded[at] != "0" else "1") + encoded[at + 1 :]
    with pytest.raises(SubstrateRequestException) as rejected:
        substrate.rpc_request("author_submitExtrinsic", [tampered])
    _assert_invalid(peer, rejected.value.args[0], "badProof")
    assert substrate.get_account_nonce(sender.ss58_address) == 0
    assert free_balance(substrate, sender.ss58_address) == 5 * peer.unit


def test_signer_without_funds_is_rejected_at_submission(
    peer: ChainPeer, substrate: SubstrateInterface
) -> None:
    penniless, dest = peer.new_account("penniless"), peer.new_account("penniless-dest", 1)
    with pytest.raises(SubstrateRequestException) as rejected:
        submit(substrate, transfer(substrate, dest, 1), penniless)
    _assert_invalid(peer, rejected.value.args[0], "payment")
    assert free_balance(substrate, dest.ss58_address) == peer.unit


def test_new_block_hook_produces_a_block(peer: ChainPeer, substrate: SubstrateInterface) -> None:
    before = substrate.get_block_number(substrate.get_chain_head())
    peer.new_block()
    deadline = time.monotonic() + 10
    while substrate.get_block_number(substrate.get_chain_head()) <= before:
        assert time.monotonic() < deadline, "new_block produced no block"
        time.sleep(0.1)
