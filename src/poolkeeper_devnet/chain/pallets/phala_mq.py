"""PhalaMq: the message queue between the chain and workers (pRuntimes).

Worker → chain: the relay submits each signed egress message with
``sync_offchain_message``. As on Khala, the sender must be off-chain, the sequence must be
the next one for that sender (``OffchainIngress``), and the signature must verify, here
sr25519 by the worker key over ``SCALE(message) ++ SCALE(sequence u64)``
(docs/devnet-wire.md). The message then goes to the pallet owning its topic; as on Khala,
a handler's error does not fail the extrinsic (the sequence is consumed anyway).

Chain → worker: pallets push ``SystemEvent`` messages, which this pallet keeps in
``OutboundMessages`` for the current block; the engine's ``push_worker_message`` lands in
``push_outbound`` and ``on_initialize`` clears the list at the start of each block.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import sr25519

from poolkeeper_devnet.chain.pallets import _scale
from poolkeeper_devnet.chain.pallets._common import PhalaPallet
from poolkeeper_devnet.chain.pallets._values import (
    ensure_signed,
    key32,
    to_bytes,
    to_hex,
    to_int,
    variant,
)
from poolkeeper_devnet.chain.pallets.base import AccountHex, BlockContext, DispatchError

TOPIC_OWNERS: dict[bytes, str] = {
    b"phala/registry/event": "PhalaRegistry",
    b"phala/mining/report": "PhalaComputation",
}
"""Which pallet handles a worker → chain topic (a leading ``^``, as Khala writes it, is ignored)."""

_OFFCHAIN_ORIGINS = {"Worker", "Contract", "Gatekeeper", "Cluster"}


def message_value(sender: bytes, topic: bytes, payload: bytes) -> dict[str, Any]:
    """``Message{Pallet(sender), topic, payload}`` in value shape."""
    return {
        "sender": {"Pallet": to_hex(sender)},
        "destination": to_hex(topic),
        "payload": to_hex(payload),
    }


class PhalaMq(PhalaPallet):
    name = "PhalaMq"

    def __init__(self) -> None:
        super().__init__()
        self.offchain_ingress: dict[AccountHex, int] = {}
        """Next expected sequence per worker (only ``Worker`` senders are accepted)."""
        self.outbound: list[dict[str, Any]] = []

    def next_sequence(self, worker: AccountHex) -> int:
        return self.offchain_ingress.get(worker, 0)

    def push_outbound(self, sender: bytes, topic: bytes, payload: bytes) -> None:
        self.outbound = [*self.outbound, message_value(sender, topic, payload)]
        self.record_change("OutboundMessages", (), self.outbound)

    def on_initialize(self, ctx: BlockContext) -> None:
        if self.outbound:
            self.outbound = []
            self.record_change("OutboundMessages", (), None)

    def call_sync_offchain_message(
        self, ctx: BlockContext, signer: AccountHex | None, args: Mapping[str, Any]
    ) -> None:
        ensure_signed(signer)
        signed = args["signed_message"]
        message = signed["message"]
        try:
            origin, origin_key = variant(message["sender"])
        except ValueError:
            raise DispatchError(self.name, "BadSender") from None
        if origin not in _OFFCHAIN_ORIGINS:
            raise DispatchError(self.name, "BadSender")
        topic = to_bytes(message["destination"])
        if not topic:
            raise DispatchError(self.name, "BadDestination")
        if origin != "Worker":
            # Contracts, clusters and the gatekeeper sign with keys the devnet never has.
            raise DispatchError("PhalaRegistry", "CannotHandleUnknownMessage")
        worker = key32(origin_key)
        sequence = to_int(signed["sequence"])
        if sequence != self.next_sequence(worker):
            raise DispatchError(self.name, "BadSequence")
        signature = to_bytes(signed["signature"])
        if len(signature) != 64:
            raise DispatchError("PhalaRegistry", "InvalidSignatureLength")
        signed_data = _scale.signed_payload(message, sequence)
        if not sr25519.verify(signature, signed_data, bytes.fromhex(worker[2:])):
            raise DispatchError("PhalaRegistry", "InvalidSignature")
        self.offchain_ingress[worker] = sequence + 1
        self.record_change("OffchainIngress", ({"Worker": worker},), sequence + 1)
        owner = TOPIC_OWNERS.get(topic.removeprefix(b"^"))
        if owner is None:
            return
        # Khala ignores a failing handler. Handlers check everything before changing
        # state, so a failure leaves nothing half-done.
        with contextlib.suppress(DispatchError, ValueError):
            ctx.pallet(owner).on_worker_message(ctx, worker, topic, to_bytes(message["payload"]))
