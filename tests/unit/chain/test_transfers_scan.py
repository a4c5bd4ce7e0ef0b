"""The bounded transfer scan: the day's first block by timestamp bisection, the funding
account's active blocks by nonce bisection, events read only there."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from poolkeeper.chain.ports import account_hex
from poolkeeper.chain.transfers import scan_transfers
from poolkeeper.keys import Mnemonic, derive_keys

PHRASE = "bottom drive obey lake curtain smoke basket hold race lonely fit walk"
KEYS = derive_keys(Mnemonic(PHRASE), ["funding", "op", "stranger"], 30)
FUNDING, OP, STRANGER = (KEYS[k].address for k in ("funding", "op", "stranger"))
BLOCKS = 20_000
DAY_START_MS = 1_000_000 + 12_000 * 12_000  # block 12,000 is the first of the day


@dataclass
class Value:
    value: Any


class FakeSubstrate:
    """Blocks every 12 s; the funding account signs in a few of them."""

    def __init__(self, signed: dict[int, tuple[str, str, int]]) -> None:
        self.signed = signed  # block -> (from, to, amount)
        self.events_read: list[int] = []

    def rpc_request(self, method: str, params: list[Any]) -> dict[str, Any]:
        if method == "chain_getHeader":
            return {"result": {"number": hex(BLOCKS)}}
        assert method == "chain_getBlockHash"
        return {"result": f"0x{params[0]:064x}"}

    def query(self, module: str, item: str, params: Any = None, block_hash: str = "") -> Value:
        number = int(block_hash, 16)
        if (module, item) == ("Timestamp", "Now"):
            return Value(1_000_000 + number * 12_000)
        address = params[0]
        nonce = sum(1 for b, (frm, _, _) in self.signed.items() if b <= number and frm == address)
        return Value({"nonce": nonce})

    def get_events(self, block_hash: str) -> list[Value]:
        number = int(block_hash, 16)
        self.events_read.append(number)
        frm, to, amount = self.signed[number]
        transfer = {"from": frm, "to": to, "amount": amount}
        return [
            Value({"module_id": "System", "event_id": "ExtrinsicSuccess", "attributes": {}}),
            Value({"module_id": "Balances", "event_id": "Transfer", "attributes": transfer}),
        ]


def test_finds_today_s_transfers_with_a_few_dozen_reads() -> None:
    signed = {
        500: (FUNDING, OP, 7),  # yesterday: not counted
        12_003: (FUNDING, OP, 98),
        15_555: (STRANGER, OP, 1_000),  # another sender: never read
        19_999: (FUNDING, OP, 52),
    }
    s = FakeSubstrate(signed)
    scan = scan_transfers(s, [FUNDING], since_ms=DAY_START_MS, after_block=None)
    assert scan.first == 12_000 and scan.last == BLOCKS
    assert [(t.block, t.amount, t.dest) for t in scan.transfers] == [
        (12_003, 98, account_hex(OP)),
        (19_999, 52, account_hex(OP)),
    ]
    assert s.events_read == [12_003, 19_999]
    # log2(20,000) for the day's start, about 2 x log2(8,000) for the two transfers.
    assert scan.reads < 120, scan.reads


def test_an_incremental_scan_starts_after_the_last_block() -> None:
    s = FakeSubstrate({19_999: (FUNDING, OP, 52)})
    scan = scan_transfers(s, [FUNDING], since_ms=DAY_START_MS, after_block=19_990)
    assert scan.first == 19_991
    assert [t.block for t in scan.transfers] == [19_999]
    assert scan.reads < 20, scan.reads
