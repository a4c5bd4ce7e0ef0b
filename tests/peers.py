"""Chain peers: the things that speak Substrate JSON-RPC which the generic chain tests run against.

poolkeeper's chain code must behave the same against the devnet chain simulator (which has
the Phala pallets) and against a real Substrate runtime (chopsticks executing Asset Hub's
wasm, which has none). A ``ChainPeer`` hides only what legitimately differs between them:
how accounts get funds, how a block is forced, the address format, and the exact texts a
peer uses for its errors. Everything else is exercised through substrate-interface,
unmodified, over the websocket, exactly as the product uses it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from substrateinterface import Keypair, SubstrateInterface
from substrateinterface.base import ExtrinsicReceipt

DEV_ACCOUNT_NAMES = ("Alice", "Bob", "Charlie", "Dave", "Eve", "Ferdie")

# sp_runtime's InvalidTransaction texts, as a production node puts them in the `data` of a
# 1010 "Invalid Transaction" JSON-RPC error; chopsticks instead puts the enum as JSON in
# `message` (e.g. {"invalid":{"badProof":null}}).
NODE_INVALID_TRANSACTION_TEXTS = {
    "payment": "Inability to pay some fees (e.g. account balance too low)",
    "badProof": "Transaction has a bad signature",
    "stale": "Transaction is outdated",
    "future": "Transaction will be valid in the future",
    "ancientBirthBlock": "Transaction has an ancient birth block",
}


@dataclass
class ChainPeer:
    """One running chain the generic tests can reach over the network."""

    name: str
    url: str
    ss58_format: int
    unit: int
    """Plancks in one token (10 ** tokenDecimals)."""
    dev_accounts: dict[str, Keypair]
    """Well-known dev accounts (//Alice ... //Ferdie), funded at start."""
    overdraft_error: str
    """What this runtime reports for a transfer above the free balance, as Pallet.Error."""
    node_error_texts: bool
    """Whether 1010 errors carry a production node's message/data texts."""
    _fund: Callable[[str, int], None] = field(repr=False)
    _new_block: Callable[[], None] = field(repr=False)
    known_deviations: dict[str, str] = field(default_factory=dict)
    """Test name -> why this peer is known to fail it (run as a strict xfail)."""
    report: Callable[[], str] = field(default=lambda: "", repr=False)
    """A line about the peer's start time and memory, printed when the session ends."""
    _serial: Iterator[int] = field(default_factory=itertools.count, repr=False)

    def fund(self, address: str, amount: int) -> None:
        """Add ``amount`` plancks to the free balance of ``address``."""
        self._fund(address, amount)

    def new_block(self) -> None:
        """Make the peer produce a block now (pending extrinsics go in it)."""
        self._new_block()

    def new_account(self, label: str, tokens: int = 0) -> Keypair:
        """A fresh keypair no other test uses, holding ``tokens`` tokens."""
        keypair = Keypair.create_from_uri(
            f"//poolkeeper-test//{label}//{next(self._serial)}", ss58_format=self.ss58_format
        )
        if tokens:
            self.fund(keypair.ss58_address, tokens * self.unit)
        return keypair

    def connect(self) -> SubstrateInterface:
        return SubstrateInterface(url=self.url, ss58_format=self.ss58_format)


# ---- reading results the same way on every peer ---------------------------------------


def event_names(receipt: ExtrinsicReceipt) -> list[str]:
    return [f"{e.value['module_id']}.{e.value['event_id']}" for e in receipt.triggered_events]


def events_named(receipt: ExtrinsicReceipt, name: str) -> list[dict[str, Any]]:
    """The attributes of every event ``Pallet.Event`` the extrinsic triggered, in order."""
    return [
        e.value["attributes"]
        for e in receipt.triggered_events
        if f"{e.value['module_id']}.{e.value['event_id']}" == name
    ]


def dispatch_error_name(substrate: SubstrateInterface, error: Any) -> str:
    """``Pallet.Error`` for a module error, ``Kind.Variant`` for Token/Arithmetic/...

    substrate-interface 1.8 names module errors only (``error_message`` is None for a
    Token error such as FundsUnavailable), so the tests decode the DispatchError value
    themselves against the peer's metadata.
    """
    if isinstance(error, str):
        return error
    kind, detail = next(iter(error.items()))
    if kind != "Module":
        return f"{kind}.{detail}" if detail is not None else str(kind)
    if isinstance(detail, tuple | list):
        pallet_index, raw_error = detail
    else:
        pallet_index, raw_error = detail["index"], detail["error"]
    error_index = int(raw_error[2:4], 16) if isinstance(raw_error, str) else int(raw_error)
    for pallet in substrate.metadata.pallets:
        if pallet.value["index"] == pallet_index:
            for variant in pallet.errors:
                if variant.value["index"] == error_index:
                    return f"{pallet.name}.{variant.value['name']}"
            return f"{pallet.name}.#{error_index}"
    return f"#{pallet_index}.#{error_index}"


def extrinsic_failure(substrate: SubstrateInterface, receipt: ExtrinsicReceipt) -> str | None:
    """The decoded error of a failed extrinsic (System.ExtrinsicFailed), None if it succeeded."""
    for attributes in events_named(receipt, "System.ExtrinsicFailed"):
        return dispatch_error_name(substrate, attributes["dispatch_error"])
    return None


def fee_paid(receipt: ExtrinsicReceipt, signer: str) -> int:
    """What the signer really paid in fees (after any refund of unused weight).

    With TransactionPayment.TransactionFeePaid the runtime says it; older runtimes (the
    Asset Hub one under chopsticks) only emit Balances.Withdraw of the estimate and a
    Balances.Deposit refund to the signer; substrate-interface's ``total_fee_amount``
    then counts the refund as fee, so it is not used here.
    """
    for attributes in events_named(receipt, "TransactionPayment.TransactionFeePaid"):
        if attributes["who"] == signer:
            return int(attributes["actual_fee"]) + int(attributes["tip"])
    withdrawn = sum(
        int(a["amount"]) for a in events_named(receipt, "Balances.Withdraw") if a["who"] == signer
    )
    refunded = sum(
        int(a["amount"]) for a in events_named(receipt, "Balances.Deposit") if a["who"] == signer
    )
    return withdrawn - refunded


def invalid_transaction_kind(error: dict[str, Any]) -> str:
    """The InvalidTransaction variant of a 1010 JSON-RPC error, whichever peer wrote it."""
    if error.get("code") != 1010:
        raise AssertionError(f"not an invalid-transaction error: {error}")
    data = error.get("data")
    for kind, text in NODE_INVALID_TRANSACTION_TEXTS.items():
        if data == text:
            return kind
    message = str(error.get("message", ""))
    for kind in NODE_INVALID_TRANSACTION_TEXTS:
        if f'"{kind}"' in message:
            return kind
    raise AssertionError(f"unrecognised invalid-transaction error: {error}")


def free_balance(substrate: SubstrateInterface, address: str) -> int:
    return int(substrate.query("System", "Account", [address]).value["data"]["free"])


# ---- the peers --------------------------------------------------------------------------


def _dev_accounts(ss58_format: int) -> dict[str, Keypair]:
    return {
        name: Keypair.create_from_uri(f"//{name}", ss58_format=ss58_format)
        for name in DEV_ACCOUNT_NAMES
    }


def _plain_json(value: Any) -> Any:
    """Integers as decimal strings (u128 values do not fit a JSON number safely)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain_json(v) for k, v in value.items()}
    return value


@contextmanager
def chopsticks_peer(workdir: Path) -> Iterator[ChainPeer]:
    """chopsticks running the real Asset Hub (Rococo) runtime, offline, on loopback."""
    from tests.realnode import _chopsticks

    spec = _chopsticks.extract_chain_spec(workdir)
    process = _chopsticks.start(workdir, spec)
    admin: SubstrateInterface | None = None
    try:
        admin = SubstrateInterface(url=process.url)
        admin.init_runtime()
        ss58_format = int(admin.get_constant("System", "SS58Prefix").value)
        admin.ss58_format = ss58_format
        client = admin

        def fund(address: str, amount: int) -> None:
            account = client.query("System", "Account", [address]).value
            account["providers"] = max(int(account["providers"]), 1)
            account["data"]["free"] = int(account["data"]["free"]) + amount
            client.rpc_request(
                "dev_setStorage", [{"System": {"Account": [[[address], _plain_json(account)]]}}]
            )

        def new_block() -> None:
            client.rpc_request("dev_newBlock", [])

        def report() -> str:
            current, peak = process.resident_memory_kib()
            return (
                f"chopsticks (Asset Hub runtime): started in {process.start_seconds:.1f} s, "
                f"resident memory {current // 1024} MiB (peak {peak // 1024} MiB)"
            )

        peer = ChainPeer(
            name="chopsticks",
            url=process.url,
            ss58_format=ss58_format,
            unit=10 ** int(admin.token_decimals),
            dev_accounts=_dev_accounts(ss58_format),
            overdraft_error="Balances.InsufficientBalance",
            node_error_texts=False,
            _fund=fund,
            _new_block=new_block,
            report=report,
        )
        for keypair in peer.dev_accounts.values():
            peer.fund(keypair.ss58_address, 1_000_000 * peer.unit)
        yield peer
    finally:
        if admin is not None:
            admin.close()
        process.stop()


@contextmanager
def devnet_peer() -> Iterator[ChainPeer]:
    """The devnet chain simulator (poolkeeper_devnet.chain) in-process, on loopback."""
    from poolkeeper_devnet.chain.server import DevnetChain

    handle = DevnetChain.start("dev", block_time="instant", finality_lag=1)
    admin: SubstrateInterface | None = None
    try:
        admin = SubstrateInterface(url=handle.url, ss58_format=30)
        client = admin
        dev_accounts = _dev_accounts(30)

        def fund(address: str, amount: int) -> None:
            call = client.compose_call(
                "Balances", "transfer_keep_alive", {"dest": address, "value": amount}
            )
            receipt = client.submit_extrinsic(
                client.create_signed_extrinsic(call, dev_accounts["Alice"]),
                wait_for_inclusion=True,
            )
            if not receipt.is_success:
                raise RuntimeError(f"devnet funding failed: {receipt.error_message}")

        def new_block() -> None:
            handle.new_block()

        yield ChainPeer(
            name="devnet",
            url=handle.url,
            ss58_format=30,
            unit=10**12,
            dev_accounts=dev_accounts,
            # Khala (spec 1251) runs the fungible-based pallet_balances: an overdraft fails
            # in can_withdraw with TokenError::FundsUnavailable, not a Balances module error.
            overdraft_error="Token.FundsUnavailable",
            node_error_texts=True,
            _fund=fund,
            _new_block=new_block,
        )
    finally:
        if admin is not None:
            admin.close()
        handle.stop()
