"""The engine's own V14 reader sees the same structure scalecodec decodes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from scalecodec.base import RuntimeConfigurationObject, ScaleBytes
from scalecodec.type_registry import load_type_registry_preset

from poolkeeper_devnet.chain._metadata import build_metadata
from poolkeeper_devnet.chain._v14 import parse_v14

KHALA = Path(__file__).resolve().parents[3] / "../shared/data/khala_metadata.scale"


def scalecodec_view(data: bytes) -> dict[str, Any]:
    config = RuntimeConfigurationObject()
    config.update_type_registry(load_type_registry_preset("core"))
    metadata = config.create_scale_object("MetadataVersioned", data=ScaleBytes(data))
    metadata.decode()
    value: dict[str, Any] = metadata.value_object[1].value_object[1].value
    return value


def sources() -> list[bytes]:
    found = [build_metadata()]
    if KHALA.exists():
        found.append(KHALA.read_bytes())
    else:
        print(f"skipping the Khala metadata: {KHALA} is absent")
    return found


@pytest.mark.parametrize("data", sources(), ids=lambda d: f"{len(d)}-bytes")
def test_reader_matches_scalecodec(data: bytes) -> None:
    ours, theirs = parse_v14(data), scalecodec_view(data)
    assert ours["types"] == {t["id"]: t["type"] for t in theirs["types"]["types"]}
    assert ours["extrinsic"] == theirs["extrinsic"]
    for mine, reference in zip(ours["pallets"], theirs["pallets"], strict=True):
        assert mine["name"] == reference["name"]
        assert mine["index"] == reference["index"]
        for kind in ("calls", "event", "error"):
            assert mine[kind] == reference[kind]
        mine_entries = (mine["storage"] or {}).get("entries", [])
        their_entries = (reference["storage"] or {}).get("entries", [])
        assert [(e["name"], e["modifier"], e["type"]) for e in mine_entries] == [
            (e["name"], e["modifier"], e["type"]) for e in their_entries
        ]
        assert [c["name"] for c in mine["constants"]] == [c["name"] for c in reference["constants"]]
