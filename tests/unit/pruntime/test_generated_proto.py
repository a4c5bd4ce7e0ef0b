"""The committed pRuntime code is what scripts/gen-proto makes of proto/pruntime_rpc.proto.

The .proto is the one source of the pRuntime wire format; both distributions carry a
generated copy. Regenerating into a temporary tree and comparing byte for byte means an
edit to the .proto without regenerating (or a hand edit of generated code) fails here.
"""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
_SCRIPT = runpy.run_path(str(ROOT / "scripts" / "gen-proto"))  # its targets, not a copy
TARGETS: tuple[Path, ...] = _SCRIPT["TARGETS"]
NAMES: tuple[str, ...] = _SCRIPT["GENERATED"]


def test_committed_generated_code_matches_the_proto(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen-proto"), str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert len(TARGETS) == 2  # the product and the devnet
    stale = [
        f"{target}/{name}"
        for target in TARGETS
        for name in NAMES
        if (tmp_path / target / name).read_bytes() != (ROOT / target / name).read_bytes()
    ]
    assert not stale, f"run scripts/gen-proto: {stale} differ from proto/pruntime_rpc.proto"


def test_product_and_devnet_share_one_set_of_classes() -> None:
    from poolkeeper.pruntime import pruntime_rpc_pb2 as product_pb2
    from poolkeeper_devnet.pruntime import pruntime_rpc_pb2 as devnet_pb2

    assert product_pb2.DESCRIPTOR.serialized_pb == devnet_pb2.DESCRIPTOR.serialized_pb
    shared: object = devnet_pb2.PhactoryInfo
    assert product_pb2.PhactoryInfo is shared
