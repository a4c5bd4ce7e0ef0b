"""The relay decision is pure planning: which workers get a relay, of which kind, and
whether it registers, from the inventory, the observed world and the known addresses."""

from __future__ import annotations

from datetime import UTC, datetime

from poolkeeper.keys import KeyRing, Mnemonic
from poolkeeper.model.desired import Desired
from poolkeeper.model.observed import (
    ChainHead,
    ChainWorker,
    Observed,
    PRuntimeInfo,
    PRuntimeObservation,
)
from poolkeeper.model.ss58 import decode_address
from poolkeeper.plan import ATTESTATION_PROVIDER_BYTES, wanted_relays

PHRASE = "bottom drive obey lake curtain smoke basket hold race lonely fit walk"


def desired() -> Desired:
    return Desired.model_validate(
        {
            "settings": {"relay": {"attestation_provider": "ias", "sync_blocks": 32}},
            "accounts": [{"name": "owner", "role": "owner", "derivation": "owner"}],
            "pools": [
                {"name": "p", "pid": 1, "owner": "owner"},
                {"name": "d", "pid": 2, "owner": "owner", "state": "draining"},
            ],
            "workers": [
                {"name": "new", "endpoint": "http://h:1", "pool": "p"},
                {"name": "known", "endpoint": "http://h:2", "pool": "p"},
                {"name": "sync", "endpoint": "http://h:3", "pool": "p", "state": "sync_only"},
                {"name": "gone", "endpoint": "http://h:4", "pool": "p", "state": "removed"},
                {"name": "drained", "endpoint": "http://h:5", "pool": "d"},
                {"name": "forked", "endpoint": "http://h:6", "pool": "p"},
                {
                    "name": "ext",
                    "endpoint": "http://h:7",
                    "pool": "p",
                    "relay": {"mode": "external", "external_command": ["prb", "{operator}"]},
                },
            ],
        }
    )


def observed() -> Observed:
    def prt(endpoint: str, key: str, **info: object) -> PRuntimeObservation:
        return PRuntimeObservation(
            endpoint=endpoint,
            info=PRuntimeInfo(initialized=True, public_key=key, **info),
            read_at=datetime(2026, 1, 1, tzinfo=UTC),
        )

    return Observed(
        head=ChainHead(best_number=100, finalized_number=98),
        pruntimes={
            "http://h:1": prt("http://h:1", "01" * 32),
            "http://h:2": prt("http://h:2", "02" * 32),
            "http://h:6": prt(
                "http://h:6", "06" * 32, genesis_block=5, genesis_block_hash="ff" * 32
            ),
        },
        chain_workers={"02" * 32: ChainWorker(pubkey="02" * 32)},
        genesis_hashes={5: "0x" + "aa" * 32},
        read_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_relays_wanted_by_inventory_and_world() -> None:
    inventory = desired()
    ring = KeyRing(inventory, Mnemonic(PHRASE))
    owner = ring.address("owner")
    wanted = wanted_relays(inventory, observed(), ring.addresses())
    assert sorted(wanted) == ["ext", "known", "new", "sync"]  # not removed/drained/forked
    new, known, sync, ext = wanted["new"], wanted["known"], wanted["sync"], wanted["ext"]
    assert new.register and not known.register and not sync.register
    assert new.operator == decode_address(owner)[1]
    assert new.sync_blocks == 32
    assert new.attestation_provider == ATTESTATION_PROVIDER_BYTES["ias"] == b"\x01\x01"
    assert new.external_command is None
    assert ext.external_command == ("prb", "{operator}") and ext.owner_address == owner


def test_without_known_addresses_no_operator_is_embedded() -> None:
    wanted = wanted_relays(desired(), observed(), {})
    assert wanted["new"].operator is None and wanted["ext"].owner_address is None


def test_each_pool_owner_is_decoded_for_its_own_workers() -> None:
    """Owners are decoded once per owner: workers of two pools with different owners
    (one of them not an address) each get their own pool owner's account id."""
    inventory = Desired.model_validate(
        {
            "accounts": [
                {"name": "a", "role": "owner", "derivation": "a"},
                {"name": "b", "role": "owner", "derivation": "b"},
                {"name": "c", "role": "owner", "derivation": "c"},
            ],
            "pools": [
                {"name": "pa", "pid": 1, "owner": "a"},
                {"name": "pb", "pid": 2, "owner": "b"},
                {"name": "pc", "pid": 3, "owner": "c"},
            ],
            "workers": [
                {"name": f"w{i}", "endpoint": f"http://h:{i}", "pool": pool}
                for i, pool in enumerate(["pa", "pb", "pa", "pc", "pb", "pc"])
            ],
        }
    )
    ring = KeyRing(inventory, Mnemonic(PHRASE))
    addresses = {**ring.addresses(), "c": "not an address"}
    wanted = wanted_relays(inventory, observed(), addresses)
    a, b = (decode_address(ring.address(n))[1] for n in ("a", "b"))
    assert a != b
    assert [wanted[f"w{i}"].operator for i in range(6)] == [a, b, a, None, b, None]
