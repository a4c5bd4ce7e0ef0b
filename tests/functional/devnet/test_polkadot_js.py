"""polkadot.js (@polkadot/api, the client most Substrate tools use) against the devnet chain:
its default flows (ApiPromise.create without options, new and finalized heads, Phala
storage decoded from the served metadata, queryMulti, a storage subscription, a signed
transfer and a Utility.batch sent with signAndSend's defaults and watched to Finalized) run
in Node (tools/polkadot-js/flows.mjs); what the script saw is checked against the chain.

Skipped, saying why, only when node or npm is absent; scripts/setup installs the package.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from substrateinterface import SubstrateInterface

from poolkeeper_devnet.chain.server import DevnetChain
from tests.functional.devnet.conftest import dev_key

TOOLS = Path(__file__).resolve().parents[3] / "tools" / "polkadot-js"
PHA = 10**12


SPECS = {"khala": 1251, "phala": 1250}


@pytest.fixture(scope="module", params=sorted(SPECS))
def devnet(request: pytest.FixtureRequest) -> Iterator[DevnetChain]:
    """Khala's layout, then Phala's: polkadot.js resolves every index from the metadata."""
    handle = DevnetChain.start(
        "demo", block_time="0.5s", finality_lag=2, runtime_name=request.param
    )
    try:
        yield handle
    finally:
        handle.stop()


def _node() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node or npm is not installed: the polkadot.js client cannot run")
    if not (TOOLS / "node_modules" / "@polkadot" / "api").is_dir():
        pytest.fail(f"@polkadot/api is not installed in {TOOLS}: run scripts/setup")
    return node


@pytest.fixture(scope="module")
def seen(devnet: DevnetChain) -> dict[str, Any]:
    node = _node()
    run = subprocess.run(
        [node, "flows.mjs", devnet.url],
        cwd=TOOLS,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    if run.returncode != 0:
        pytest.fail(f"polkadot.js flows failed (exit {run.returncode}):\n{run.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return result


def _hex(value: Any) -> str:
    return value if isinstance(value, str) else "0x" + bytes(value).hex()


def test_api_connects_and_follows_heads(
    seen: dict[str, Any], substrate: SubstrateInterface, devnet: DevnetChain
) -> None:
    name = devnet.chain.runtime_version["specName"]
    assert (seen["specName"], seen["specVersion"], seen["ss58Format"]) == (name, SPECS[name], 30)
    assert seen["genesisHash"] == substrate.get_block_hash(0)
    heads, finalized = seen["heads"], seen["finalized"]
    assert heads == list(range(heads[0], heads[0] + 3)), heads
    assert finalized[1] == finalized[0] + 1 and finalized[0] <= heads[-1] - 2
    assert seen["derivedHead"] >= heads[-1]


def test_phala_storage_as_polkadot_js_decodes_it(
    seen: dict[str, Any], substrate: SubstrateInterface
) -> None:
    assert seen["pools"] == [[0, "stakePool"]]
    workers = sorted(_hex(k.value) for k, _ in substrate.query_map("PhalaRegistry", "Workers"))
    assert seen["workers"] == workers and len(workers) == 4
    assert seen["assignments"] == [[w, 0] for w in workers]
    bindings = sorted(
        (_hex(k.value), v.value)
        for k, v in substrate.query_map("PhalaComputation", "WorkerBindings")
    )
    assert [tuple(b) for b in seen["bindings"]] == bindings
    sessions = {
        k.value: v.value["state"] for k, v in substrate.query_map("PhalaComputation", "Sessions")
    }
    assert dict(seen["sessions"]) == sessions
    assert set(sessions.values()) == {"Ready"}
    assert seen["coolDown"] == 60
    assert seen["multiSubscribed"] == 2


def test_transfer_and_batch_sent_with_defaults_reach_finalized(
    seen: dict[str, Any], substrate: SubstrateInterface
) -> None:
    for sent in (seen["transfer"], seen["batch"]):
        # polkadot.js maps each watch status to a result through rxjs switchMap after
        # fetching the block's events: a Finalized that arrives while InBlock's events are
        # still being fetched supersedes it (submittable/createClass.js), which a loaded
        # machine makes happen at 0.5 s blocks. That the devnet sends inBlock on the wire is
        # held by test_chain_methods and test_node_subscriptions.
        assert sent["statuses"] in (["Ready", "InBlock", "Finalized"], ["Ready", "Finalized"])
        assert sent["events"][-1] == "system.ExtrinsicSuccess"
        assert substrate.get_block_number(sent["block"]) is not None
    assert "balances.Transfer" in seen["transfer"]["events"]
    assert seen["batch"]["events"].count("utility.ItemCompleted") == 2
    assert int(seen["bobFreeSubscribed"]) - int(seen["bobFreeBefore"]) == PHA
    assert int(seen["paymentInfo"]) > 10**9  # the devnet's base fee, plus the length fee
    assert seen["aliceNonce"] == 2
    bob = substrate.query("System", "Account", [dev_key("Bob").ss58_address])
    assert bob.value["data"]["free"] == int(seen["bobFreeSubscribed"])
