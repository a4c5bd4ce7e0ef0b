"""@phala/sdk's pRuntime client (``createPruntimeClient``: PhactoryAPI over pRPC/protobuf)
against one pRuntime simulator, in Node (tools/phala-sdk/phactory.mjs): GetInfo of a fresh
worker, an error it decodes as a PrpcError, then GetInfo and GetRuntimeInfo once the
worker is initialized; what it decoded is checked against the simulator.

Skipped, saying why, only when node or npm is absent; scripts/setup installs the package.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from poolkeeper.pruntime import InitRuntimeRequest
from poolkeeper_devnet.pruntime import SimulatorThread
from poolkeeper_devnet.pruntime.minichain import MiniChain

TOOLS = Path(__file__).resolve().parents[3] / "tools" / "phala-sdk"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorThread]:
    with SimulatorThread(1, base_port=0) as simulator:
        yield simulator


def _phactory(url: str, phase: str) -> dict[str, Any]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node or npm is not installed: the @phala/sdk client cannot run")
    if not (TOOLS / "node_modules" / "@phala" / "sdk").is_dir():
        pytest.fail(f"@phala/sdk is not installed in {TOOLS}: run scripts/setup")
    run = subprocess.run(
        [node, "phactory.mjs", url, phase],
        cwd=TOOLS,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if run.returncode != 0:
        pytest.fail(f"@phala/sdk script failed (exit {run.returncode}):\n{run.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return result


def test_phactory_api_of_the_sdk_decodes_info_errors_and_runtime_info(
    sim: SimulatorThread,
) -> None:
    url = sim.url(0)
    before = _phactory(url, "before")
    assert before["info"]["initialized"] is False
    assert before["info"]["canLoadChainState"] is True  # as a fresh phactory
    assert (before["info"]["headernum"], before["info"]["blocknum"]) == (0, 0)
    assert before["info"]["score"] == 1000 and before["info"]["version"]
    # the simulator's pRPC error body, decoded by the SDK as prpc.PrpcError
    assert before["error"] == "PrpcError: Runtime not initialized", before["error"]

    chain = MiniChain()
    request = InitRuntimeRequest(
        encoded_genesis_info=chain.genesis_info(), encoded_genesis_state=chain.genesis_state()
    )
    answer = httpx.post(
        f"{url}/prpc/PhactoryAPI.InitRuntime",
        content=request.encode(),
        headers={"Content-Type": "application/octet-stream"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text

    after = _phactory(url, "after")
    identity = sim.simulator.identity(0)
    info = after["info"]
    assert info["initialized"] is True and info["devMode"] is True
    assert info["publicKey"] == identity.public.hex() == info["systemPublicKey"]
    assert info["ecdhPublicKey"] == identity.ecdh_public.hex()
    assert info["genesisBlockHash"] == chain.hash(0).hex()
    assert (info["headernum"], info["paraHeadernum"], info["blocknum"]) == (1, 0, 1)
    runtime = after["runtimeInfo"]
    assert runtime["publicKey"] == identity.public.hex()
    assert runtime["ecdhPublicKey"] == identity.ecdh_public.hex()
    assert runtime["genesisBlockHash"] == chain.hash(0).hex()
    assert runtime["runtimeInfoBytes"] > 100 and runtime["attestation"] is None
