"""Outcomes of extrinsics, read from the events of the block that holds them.

Why a module of its own: what an extrinsic did (per batch item, through a proxy, its fee,
the dispatch error by name) is decided from events alone, the same way whether the
follower saw the block as it came or a later pass looks for a lost extrinsic. The events
are decoded by substrate-interface (the codec); nothing here opens a connection.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from substrateinterface import SubstrateInterface

from poolkeeper.chain.ports import ChainEvent, ItemResult, Outcome, TxStatus


def scan_block(
    s: SubstrateInterface, number: int, wanted: set[str], counts: dict[str, int]
) -> dict[str, Outcome]:
    """Outcomes of the ``wanted`` extrinsics (by hash) found in block ``number``;
    ``counts`` gives the number of calls each one batches."""
    block_hash = s.rpc_request("chain_getBlockHash", [number])["result"]
    raw = s.rpc_request("chain_getBlock", [block_hash])["result"]["block"]["extrinsics"]
    positions = {"0x" + _blake2_256(bytes.fromhex(x[2:])).hex(): i for i, x in enumerate(raw)}
    hits = {h: positions[h] for h in wanted if h in positions}
    if not hits:
        return {}
    events = s.get_events(block_hash)
    out: dict[str, Outcome] = {}
    for ext_hash, index in hits.items():
        mine = [e.value for e in events if e.value.get("extrinsic_idx") == index]
        out[ext_hash] = outcome_from_events(s, mine, number, block_hash, counts.get(ext_hash, 1))
    return out


def with_status(outcome: Outcome, status: TxStatus) -> Outcome:
    return Outcome(
        status=status,
        block_number=outcome.block_number,
        block_hash=outcome.block_hash,
        items=outcome.items,
        fee=outcome.fee,
        error=outcome.error,
    )


def _blake2_256(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def dispatch_error_text(s: SubstrateInterface, error: Any) -> str:
    """``Pallet.ErrorName`` for a module error, ``Kind.Variant`` for the other kinds that
    carry one (``Token.FundsUnavailable``, ``Arithmetic.Overflow``), else the variant name."""
    if isinstance(error, dict) and "Module" in error:
        module = error["Module"]
        if isinstance(module, tuple | list):
            index, err = module[0], module[1]
        else:
            index, err = module["index"], module["error"]
        if isinstance(err, str):
            err = int(err[2:4], 16)
        pallet = next((p for p in s.metadata.pallets if p.value["index"] == index), None)
        if pallet is None:
            return f"Module({index}, {err})"
        module_error = s.metadata.get_module_error(module_index=index, error_index=err)
        return f"{pallet.name}.{module_error.name}"
    if isinstance(error, dict) and len(error) == 1:
        kind, detail = next(iter(error.items()))
        if isinstance(detail, str):
            return f"{kind}.{detail}"
    if isinstance(error, dict):
        return "/".join(f"{k}({v})" if v not in (None, ()) else str(k) for k, v in error.items())
    return str(error)


def outcome_from_events(
    s: SubstrateInterface,
    events: Iterable[dict[str, Any]],
    number: int,
    block_hash: str,
    call_count: int,
) -> Outcome:
    items: list[ItemResult] = []
    failed: str | None = None
    proxy_ok: tuple[bool, str | None] | None = None
    fee: int | None = None
    batch = False
    interrupted = False
    withdrawn: int | None = None
    pending: list[ChainEvent] = []
    for event in events:
        module, name = event["module_id"], event["event_id"]
        attrs: dict[str, Any] = event.get("attributes") or {}
        if (module, name) == ("Utility", "ItemCompleted"):
            items.append(ItemResult(True, None, tuple(pending)))
            pending = []
            batch = True
        elif (module, name) in (("Utility", "ItemFailed"), ("Utility", "BatchInterrupted")):
            items.append(ItemResult(False, dispatch_error_text(s, attrs["error"])))
            pending = []
            interrupted = interrupted or name == "BatchInterrupted"
            batch = True
        elif (module, name) == ("Proxy", "ProxyExecuted"):
            result = attrs["result"]
            if isinstance(result, dict) and "Err" in result:
                proxy_ok = (False, dispatch_error_text(s, result["Err"]))
            else:
                proxy_ok = (True, None)
        elif (module, name) == ("System", "ExtrinsicFailed"):
            failed = dispatch_error_text(s, attrs["dispatch_error"])
        elif (module, name) == ("TransactionPayment", "TransactionFeePaid"):
            fee = int(attrs["actual_fee"])
        elif (module, name) == ("Balances", "Withdraw") and withdrawn is None:
            withdrawn = int(attrs["amount"])  # the fee, on runtimes without TransactionFeePaid
        elif module != "System":
            pending.append(ChainEvent(module, name, attrs))
    if fee is None:
        fee = withdrawn
    if failed is not None:
        return Outcome(
            TxStatus.FAILED, number, block_hash, (ItemResult(False, failed),), fee, failed
        )
    if not batch:
        ok, error = proxy_ok or (True, None)
        items = [ItemResult(ok, error, tuple(pending) if ok else ())]
    if interrupted:
        items.extend(
            ItemResult(False, "not executed: the batch was interrupted by an earlier item")
            for _ in range(call_count - len(items))
        )
    return Outcome(TxStatus.IN_BLOCK, number, block_hash, tuple(items), fee)
