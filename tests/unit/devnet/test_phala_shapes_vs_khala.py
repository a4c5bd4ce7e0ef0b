"""The Phala pallets' storage values and events have the real Khala shapes.

Checked against the real Khala metadata and against the devnet's own metadata.

Every storage change a full pool lifecycle produces is SCALE-encoded with the storage
key and value types of the real Khala metadata, and every event's field names are
compared with the metadata's: what the engine will encode cannot drift from Khala.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import pytest
from scalecodec.base import RuntimeConfiguration, ScaleBytes
from scalecodec.type_registry import load_type_registry_preset

from poolkeeper_devnet.chain._metadata import build_metadata
from tests.unit.devnet._phala_chain import PHA, Chain, account, make_worker

KHALA_METADATA = Path(
    os.environ.get("POOLKEEPER_KHALA_METADATA")
    or Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "khala_metadata.scale"
)


@pytest.fixture(scope="module", params=["khala", "devnet"])
def khala(request: pytest.FixtureRequest) -> tuple[RuntimeConfiguration, Any]:
    """The real Khala metadata, then the devnet's own (what the engine encodes with)."""
    if request.param == "khala":
        if not KHALA_METADATA.exists():
            pytest.skip(f"real Khala metadata not found at {KHALA_METADATA}")
        raw = KHALA_METADATA.read_bytes()
    else:
        raw = build_metadata()
    config = RuntimeConfiguration()
    config.update_type_registry(load_type_registry_preset("legacy"))
    config.update_type_registry(load_type_registry_preset("core"))
    metadata = config.create_scale_object("MetadataVersioned", data=ScaleBytes(raw))
    metadata.decode()
    config.add_portable_registry(metadata)
    return config, metadata


@functools.cache
def full_lifecycle() -> tuple[Chain, list[tuple[str, str, tuple[Any, ...], Any]]]:
    chain = Chain({"phala": {"cool_down_period": 60, "heartbeat_interval": 2}})
    changes = list(chain.genesis_changes)
    owner, worker = account("owner"), make_worker("w")
    chain.register(worker, owner)
    chain.bench(worker, 2000)
    pid = chain.create_pool(owner)
    chain.fund_pool(owner, pid, 10_000 * PHA)
    chain.call("PhalaStakePoolv2", "set_cap", owner, pid=pid, cap=50_000 * PHA)
    chain.call("PhalaStakePoolv2", "set_payout_pref", owner, pid=pid, payout_commission=100_000)
    chain.call("PhalaStakePoolv2", "add_worker", owner, pid=pid, pubkey=worker.pubkey)
    chain.call(
        "PhalaStakePoolv2",
        "start_computing",
        owner,
        pid=pid,
        worker=worker.pubkey,
        stake=1000 * PHA,
    )
    chain.next_block()
    chain.next_block()
    chain.heartbeat(worker, 10_000)
    chain.call("PhalaStakePoolv2", "stop_computing", owner, pid=pid, worker=worker.pubkey)
    chain.next_block(seconds=120)
    chain.call("PhalaStakePoolv2", "reclaim_pool_worker", owner, pid=pid, worker=worker.pubkey)
    chain.call("PhalaStakePoolv2", "remove_worker", owner, pid=pid, worker=worker.pubkey)
    changes += chain.drain()
    return chain, changes


def test_every_storage_change_encodes_with_khala_types(
    khala: tuple[RuntimeConfiguration, Any],
) -> None:
    config, metadata = khala
    _chain, changes = full_lifecycle()
    seen = set()
    for pallet_name, item, key, value in changes:
        if pallet_name in ("Balances", "ParachainInfo"):
            continue
        storage = metadata.get_metadata_pallet(pallet_name).get_storage_function(item)
        assert storage is not None, f"{pallet_name}.{item} is not in Khala's metadata"
        params = storage.get_params_type_string()
        assert len(params) == len(key), f"{pallet_name}.{item} key arity"
        for type_string, key_value in zip(params, key, strict=True):
            config.create_scale_object(type_string).encode(key_value)
        if value is not None:
            encoded = config.create_scale_object(storage.get_value_type_string()).encode(value)
            decoded = config.create_scale_object(storage.get_value_type_string(), data=encoded)
            decoded.decode()
        seen.add(f"{pallet_name}.{item}")
    for expected in (
        "PhalaRegistry.Workers",
        "PhalaRegistry.WorkerAddedAt",
        "PhalaComputation.Sessions",
        "PhalaComputation.Stakes",
        "PhalaComputation.WorkerBindings",
        "PhalaComputation.SessionBindings",
        "PhalaBasePool.Pools",
        "PhalaStakePoolv2.WorkerAssignments",
        "PhalaStakePoolv2.SubAccountPreimages",
        "Assets.Account",
        "PhalaMq.OffchainIngress",
        "PhalaMq.OutboundMessages",
    ):
        assert expected in seen


def test_every_event_has_khala_field_names(khala: tuple[RuntimeConfiguration, Any]) -> None:
    _config, metadata = khala
    chain, _changes = full_lifecycle()
    checked = 0
    for event in [*chain.past_events, *chain.ctx.events]:
        pallet = metadata.get_metadata_pallet(event.pallet)
        by_name = {e.value["name"]: e.value for e in pallet.events}
        assert event.event in by_name, f"{event.pallet}.{event.event} is not a Khala event"
        fields = [f["name"] for f in by_name[event.event]["fields"]]
        assert sorted(event.attributes) == sorted(fields), f"{event.pallet}.{event.event}"
        checked += 1
    assert checked > 15


def test_error_names_exist_in_khala(khala: tuple[RuntimeConfiguration, Any]) -> None:
    """Every error name the pallet sources raise is one of Khala's errors of that pallet."""
    import re

    _config, metadata = khala
    source_dir = Path(__file__).resolve().parents[3] / "src/poolkeeper_devnet/chain/pallets"
    pattern = re.compile(r'DispatchError\(\s*(?:self\.name|"(\w+)"|base\.name),\s*"(\w+)"')
    owners = {
        "phala_mq.py": "PhalaMq",
        "phala_registry.py": "PhalaRegistry",
        "phala_computation.py": "PhalaComputation",
        "phala_stakepool.py": "PhalaStakePoolv2",
        "assets.py": "Assets",
    }
    found = 0
    for file, default_owner in owners.items():
        text = (source_dir / file).read_text()
        for match in pattern.finditer(text):
            explicit, error = match.group(1), match.group(2)
            owner = explicit or default_owner
            if "base.name" in match.group(0):
                owner = "PhalaBasePool"
            if owner == "System":
                continue
            names = {e.value["name"] for e in metadata.get_metadata_pallet(owner).errors}
            if owner == "Assets" and file == "assets.py" and error not in names:
                owner = "PhalaWrappedBalances"
                names = {e.value["name"] for e in metadata.get_metadata_pallet(owner).errors}
            assert error in names, f"{owner}.{error} ({file}) is not a Khala error"
            found += 1
    assert found > 30
