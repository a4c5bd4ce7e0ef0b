"""scalecodec's decoder classes are made once per type string (``_decoder_classes``):
decoding again makes no class, answers are what scalecodec alone gives, and a change
of the registry is seen."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest
from scalecodec.base import RuntimeConfigurationObject, ScaleBytes
from scalecodec.type_registry import load_type_registry_preset

from poolkeeper.chain._decoder_classes import CachingRuntimeConfiguration

METADATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "khala_metadata.scale"


def _config(cls: type[RuntimeConfigurationObject]) -> tuple[Any, Any]:
    """A configuration holding Khala's registry, and Khala's decoded metadata."""
    if not METADATA.exists():
        pytest.skip(f"the Khala metadata is not at {METADATA} (../shared beside the project)")
    config = cls(ss58_format=30)
    config.update_type_registry(load_type_registry_preset("legacy"))
    config.update_type_registry(load_type_registry_preset("core"))
    metadata = config.create_scale_object(
        "MetadataVersioned", data=ScaleBytes(METADATA.read_bytes())
    )
    metadata.decode()
    config.add_portable_registry(metadata)
    return config, metadata


def _classes() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, type))


def _batch(config: Any, metadata: Any) -> Any:
    """Utility.batch of two System.remark_with_event calls, encoded then decoded."""
    remark = {
        "call_module": "System",
        "call_function": "remark_with_event",
        "call_args": {"remark": "0x01"},
    }
    call = config.create_scale_object("Call", metadata=metadata)
    data = call.encode(
        {
            "call_module": "Utility",
            "call_function": "batch",
            "call_args": {"calls": [remark, remark]},
        }
    )
    decoded = config.create_scale_object("Call", data=data, metadata=metadata)
    decoded.decode()
    return decoded.value


def test_decoding_again_makes_no_class_and_decodes_the_same() -> None:
    plain, plain_metadata = _config(RuntimeConfigurationObject)
    caching, metadata = _config(CachingRuntimeConfiguration)
    expected = _batch(plain, plain_metadata)
    assert _batch(caching, metadata) == expected
    before = _classes()
    for _ in range(20):
        assert _batch(caching, metadata) == expected
    assert _classes() - before == 0
    # scalecodec alone makes classes on each decode (what the cache exists for)
    before = _classes()
    gc.disable()
    try:
        for _ in range(20):
            _batch(plain, plain_metadata)
        made = sum(1 for o in gc.get_objects() if isinstance(o, type))
    finally:
        gc.enable()
    assert made - before >= 20


def test_a_registry_change_is_seen() -> None:
    caching, _ = _config(CachingRuntimeConfiguration)
    assert caching.get_decoder_class("PoolkeeperProbe") is None
    caching.update_type_registry_types({"PoolkeeperProbe": "u32"})
    first = caching.get_decoder_class("PoolkeeperProbe")
    assert first is not None and first.__name__.lower() == "u32"
    caching.update_type_registry_types({"PoolkeeperProbe": "u64"})
    second = caching.get_decoder_class("PoolkeeperProbe")
    assert second is not None and second.__name__.lower() == "u64"
    # given again as they are: nothing changes, nothing is made
    vec = caching.get_decoder_class("Vec<PoolkeeperProbe>")
    caching.update_type_registry_types({"PoolkeeperProbe": "u64"})
    assert caching.get_decoder_class("Vec<PoolkeeperProbe>") is vec
    caching.clear_type_registry()
    assert caching.get_decoder_class("PoolkeeperProbe") is None


def test_a_returned_class_follows_the_configuration_that_answered() -> None:
    caching, _ = _config(CachingRuntimeConfiguration)
    other = RuntimeConfigurationObject()
    vec = caching.get_decoder_class("Vec<u8>")
    assert vec.runtime_config is caching
    other.get_decoder_class("Vec")  # scalecodec points the shared base class at `other`
    shared = caching.get_decoder_class("Vec")
    assert shared.runtime_config is caching
