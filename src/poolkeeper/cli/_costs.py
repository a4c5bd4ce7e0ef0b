"""Estimated fees of a live plan: one estimate per batch the executor would send, split
over its calls.

The planner is pure and cannot ask the node; the live ``plan`` asks it here, grouping
chain actions exactly as the executor batches them (per signer and proxy, at most
``MAX_BATCH`` calls, ``Utility.force_batch``), and gives each call an equal share of its
batch's ``payment_queryInfo`` fee. Only public keys are needed: no secret is loaded.
"""

from __future__ import annotations

from poolkeeper.apply.executor import MAX_BATCH, UnsupportedAction, call_for
from poolkeeper.chain import SubstrateChain
from poolkeeper.chain.ports import CallSpec
from poolkeeper.model.actions import Action, Plan
from poolkeeper.model.desired import Desired
from poolkeeper.model.ss58 import AddressError, decode_address


class _PublicSigner:
    """An account known by its address only: enough to estimate a fee, never to sign."""

    def __init__(self, address: str) -> None:
        self._address = address
        self._public = decode_address(address)[1]

    @property
    def address(self) -> str:
        return self._address

    @property
    def public_key(self) -> bytes:
        return self._public

    def sign(self, payload: bytes) -> bytes:
        raise RuntimeError("a public-only signer cannot sign")


async def with_fees(plan: Plan, desired: Desired) -> tuple[Plan, str | None]:
    """``plan`` with each chain action's estimated ``fee``, and a note when some fees could
    not be estimated (the plan is still shown, without them)."""
    addresses = {a.name: a.address for a in desired.accounts if a.address}
    groups: dict[tuple[str, str | None], list[tuple[Action, CallSpec]]] = {}
    for action in plan.actions:
        if action.signer is None:
            continue
        try:
            call = call_for(action)
        except UnsupportedAction:
            continue
        groups.setdefault((action.signer, action.proxy_for), []).append((action, call))
    if not groups:
        return plan, None
    fees: dict[str, int] = {}
    missing: list[str] = []
    chain = SubstrateChain(desired.settings.chain.endpoints[0])
    try:
        for (signer, proxy_for), items in groups.items():
            address = addresses.get(signer)
            real = addresses.get(proxy_for) if proxy_for else None
            if address is None or (proxy_for and real is None):
                missing.append(signer)
                continue
            try:
                public = _PublicSigner(address)
            except AddressError:
                missing.append(signer)
                continue
            for start in range(0, len(items), MAX_BATCH):
                chunk = items[start : start + MAX_BATCH]
                try:
                    fee = await chain.estimate_fee(public, [c for _, c in chunk], proxy_for=real)
                except Exception:  # any node or encoding trouble: show the plan without it
                    missing.append(signer)
                    break
                share, extra = divmod(fee, len(chunk))
                for index, (action, _) in enumerate(chunk):
                    fees[action.id] = share + (extra if index == 0 else 0)
    finally:
        await chain.close()
    actions = tuple(
        a.model_copy(update={"fee": fees[a.id]}) if a.id in fees else a for a in plan.actions
    )
    note = None
    if missing:
        note = "fees not estimated for the calls of " + ", ".join(sorted(set(missing)))
    return plan.model_copy(update={"actions": actions}), note
