"""Which relays the inventory needs: a pure function of desired, observed and addresses.

The relay decision is planning (like every other action, it is recomputed from scratch
each pass), so it lives with the planner and is unit-testable without any I/O: the
reconcile loop turns each ``WantedRelay`` into the options of an in-process relay or of
an external relay process, and hands them to the relay supervisor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from poolkeeper.model.conditions import genesis_mismatch
from poolkeeper.model.desired import Desired, WorkerState, external_relay_command
from poolkeeper.model.observed import Observed
from poolkeeper.model.ss58 import decode_address

ATTESTATION_PROVIDER_BYTES: Mapping[str, bytes | None] = {
    "none": None,
    "ias": b"\x01\x01",
    "dcap": b"\x01\x02",
}
"""SCALE ``Option<AttestationProvider>`` of each ``settings.relay.attestation_provider``."""


@dataclass(frozen=True)
class WantedRelay:
    """One worker's relay, as the inventory and the observed world need it."""

    worker: str
    endpoint: str
    external_command: tuple[str, ...] | None = None
    """The argv template when the relay is an external process, else None (in-process)."""
    owner_address: str | None = None
    """The pool owner's address, when known (external relays' ``{operator}``)."""
    operator: bytes | None = None
    """The pool owner's 32-byte account id, when known (in-process relays)."""
    sync_blocks: int = 64
    attestation_provider: bytes | None = None
    register: bool = False
    """Whether the relay registers the worker (it should compute or idle, and is not on
    chain yet)."""


def wanted_relays(
    desired: Desired, observed: Observed, addresses: Mapping[str, str]
) -> dict[str, WantedRelay]:
    """The relays ``desired`` needs by worker name. ``addresses`` maps account names to
    their known addresses. Removed workers, draining pools and pRuntimes initialized on
    another chain get no relay."""
    settings = desired.settings
    provider = ATTESTATION_PROVIDER_BYTES[settings.relay.attestation_provider]
    wanted: dict[str, WantedRelay] = {}
    operators: dict[str, bytes | None] = {}  # owner address → account id, decoded once
    for worker in desired.workers:
        pool = desired.pools_by_name.get(worker.pool) if worker.pool else None
        if worker.state is WorkerState.REMOVED or (pool is not None and pool.draining):
            continue
        owner = addresses.get(pool.owner) if pool else None
        template = external_relay_command(settings, worker)
        if template is not None:
            wanted[worker.name] = WantedRelay(
                worker.name, worker.endpoint, external_command=template, owner_address=owner
            )
            continue
        operator: bytes | None = None
        if owner is not None:
            if owner not in operators:
                try:
                    operators[owner] = decode_address(owner)[1]
                except ValueError:
                    operators[owner] = None
            operator = operators[owner]
        info = observed.pruntimes.get(worker.endpoint)
        if genesis_mismatch(info.info if info else None, observed):
            continue  # on another chain: feeding it this chain's blocks cannot work
        pubkey = info.info.public_key if info and info.info else None
        on_chain = pubkey is not None and pubkey.lower() in observed.chain_workers
        wanted[worker.name] = WantedRelay(
            worker.name,
            worker.endpoint,
            owner_address=owner,
            operator=operator,
            sync_blocks=settings.relay.sync_blocks,
            attestation_provider=provider,
            register=worker.state in (WorkerState.COMPUTING, WorkerState.IDLE) and not on_chain,
        )
    return wanted
