"""Transfers sent by given accounts since a moment, read from the chain, cheaply.

The daily top-up cap is kept by the journal; a journal lost or reset during the day
would forget the top-ups already sent, and the cap would allow them again. So the
chain itself is asked: which ``Balances.Transfer`` events did the funding accounts
emit since 00:00 UTC?

Walking every block of a day (7,200 on a 12 s chain) would be slow. Instead: the first
block of the day is found by bisecting ``Timestamp.Now`` (about log2(height) reads), and
the blocks where a funding account did anything are found by bisecting its nonce
(``System.Account``) between that block and the head: each extrinsic it signed costs
about log2(blocks today) reads, and only those blocks' events are read. A transfer made
for the account by someone else (a proxy) does not move its nonce and is not seen:
poolkeeper signs top-ups with the funding account itself.

These reads need the state of past blocks: a node pruning state younger than a day
answers with an error, which the caller treats as "cap unknown".
"""

from __future__ import annotations

from typing import Any

from substrateinterface import SubstrateInterface

from poolkeeper.chain.ports import Transfer, TransferScan, account_hex


class _Reader:
    def __init__(self, s: SubstrateInterface) -> None:
        self.s = s
        self.reads = 0
        self._hashes: dict[int, str] = {}

    def block_hash(self, number: int) -> str:
        if number not in self._hashes:
            self.reads += 1
            self._hashes[number] = str(self.s.rpc_request("chain_getBlockHash", [number])["result"])
        return self._hashes[number]

    def head(self) -> int:
        self.reads += 1
        return int(self.s.rpc_request("chain_getHeader", [])["result"]["number"], 16)

    def timestamp_ms(self, number: int) -> int:
        h = self.block_hash(number)
        self.reads += 1
        value = self.s.query("Timestamp", "Now", block_hash=h).value
        return int(value or 0)

    def nonce(self, address: str, number: int) -> int:
        h = self.block_hash(number)
        self.reads += 1
        value: Any = self.s.query("System", "Account", [address], block_hash=h).value
        return int(value["nonce"]) if value else 0

    def transfers_in(self, number: int, senders: set[str]) -> list[Transfer]:
        h = self.block_hash(number)
        self.reads += 1
        found = []
        for record in self.s.get_events(h):
            event = record.value
            if (event.get("module_id"), event.get("event_id")) != ("Balances", "Transfer"):
                continue
            attrs = event.get("attributes") or {}
            if isinstance(attrs, list | tuple):  # runtimes with unnamed event fields
                attrs = dict(zip(("from", "to", "amount"), attrs, strict=False))
            sender = account_hex(str(attrs["from"]))
            if sender in senders:
                found.append(
                    Transfer(number, sender, account_hex(str(attrs["to"])), int(attrs["amount"]))
                )
        return found


def first_block_since(r: _Reader, since_ms: int, head: int) -> int:
    """The first block whose timestamp is at or after ``since_ms`` (``head + 1`` if none)."""
    if r.timestamp_ms(head) < since_ms:
        return head + 1
    lo, hi = 0, head  # invariant: the answer is in [lo, hi]
    while lo < hi:
        mid = (lo + hi) // 2
        if r.timestamp_ms(mid) >= since_ms:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _nonce_moves(
    r: _Reader, address: str, low: tuple[int, int], high: tuple[int, int]
) -> list[int]:
    """Blocks in (low, high] where ``address``'s nonce changed (each end: block, nonce)."""
    (lo, n_lo), (hi, n_hi) = low, high
    if n_lo == n_hi:
        return []
    if hi == lo + 1:
        return [hi]
    mid = (lo + hi) // 2
    middle = (mid, r.nonce(address, mid))
    return _nonce_moves(r, address, low, middle) + _nonce_moves(r, address, middle, high)


def scan_transfers(
    s: SubstrateInterface, senders: list[str], *, since_ms: int, after_block: int | None
) -> TransferScan:
    """Transfers from ``senders`` (SS58) in the blocks after ``after_block``, or from the
    first block at or after ``since_ms`` (Unix milliseconds) when it is ``None``."""
    r = _Reader(s)
    head = r.head()
    first = after_block + 1 if after_block is not None else first_block_since(r, since_ms, head)
    if first > head or not senders:
        return TransferScan((), first, head, r.reads)
    wanted = {account_hex(a): a for a in senders}
    blocks: set[int] = set()
    base = first - 1
    for address in wanted.values():
        n_base = r.nonce(address, base) if base >= 0 else 0
        blocks.update(_nonce_moves(r, address, (base, n_base), (head, r.nonce(address, head))))
    transfers: list[Transfer] = []
    for number in sorted(blocks):
        transfers.extend(r.transfers_in(number, set(wanted)))
    return TransferScan(tuple(transfers), first, head, r.reads)
