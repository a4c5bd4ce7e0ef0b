"""``poolkeeper run`` keeps going when the node answers a JSON-RPC error while observing.

A node may answer a request with an error (busy, restarting, state pruned) rather than
drop the connection. ``run`` (a subprocess, on the devnet) is made to meet one such error
on each of the chain adapter's two paths: a request substrate-interface makes as the codec
(``chain_getFinalizedHead`` for the head) and one made directly on the pipelined socket
(``state_queryStorageAt`` for the accounts). Each must be one clear log line naming the
node and the method (a ``ChainNodeError``, temporary), with no Python traceback, and the
next pass must succeed.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from poolkeeper.keys import Mnemonic, derive_keys
from poolkeeper_devnet.chain.server import DevnetChain
from tests.faults._faults import Lines, rpc, start_run, wait_for
from tests.functional.apply._world import PHRASE

KEYS = derive_keys(Mnemonic(PHRASE), ["funding"], 30)
FUNDING = KEYS["funding"].address


def inventory(chain_url: str, state_dir: Path) -> str:
    return f"""\
settings:
  network: devnet
  chain: {{endpoints: ['{chain_url}'], wait_for: inclusion}}
  secrets: {{env: POOLKEEPER_MNEMONIC}}
  state_dir: '{state_dir}'
  loop: {{interval_seconds: 1, backoff_seconds: [0.5, 1]}}
accounts:
  - {{name: funding, role: funding, derivation: funding, address: {FUNDING},
      warn_below: 1000 PHA, critical_below: 100 PHA}}
"""


@pytest.fixture
def devnet() -> Iterator[DevnetChain]:
    genesis = {
        "chain_name": "Khala Devnet",
        "block_time": "0.5s",
        "finality_lag": 1,
        "balances": {"//Alice": "1000000 PHA", FUNDING: "10000 PHA"},
    }
    handle = DevnetChain.start(genesis)
    try:
        yield handle
    finally:
        handle.stop()


def test_a_node_error_during_observe_is_one_line_and_the_loop_goes_on(
    devnet: DevnetChain, tmp_path: Path
) -> None:
    directory = tmp_path / "inventory"
    directory.mkdir()
    (directory / "inventory.yaml").write_text(inventory(devnet.url, tmp_path / "state"), "utf-8")
    loop = start_run(directory)
    lines = Lines(loop)
    try:
        wait_for(lambda: lines.has("action(s) planned"), 90, "a first pass")
        for method in ("chain_getFinalizedHead", "state_queryStorageAt"):
            recovered = lines.count("pass succeeded again")
            rpc(devnet.url, "devnet_failNext", [1, method])
            wait_for(lambda m=method: lines.has(f"{m} on {devnet.url}"), 60, f"{method} failing")
            wait_for(
                lambda n=recovered: lines.count("pass succeeded again") > n,
                60,
                f"a good pass after {method} failed",
            )
    finally:
        loop.send_signal(signal.SIGINT)
        loop.wait(60)
    out = lines.text()
    assert "Traceback" not in out, out[-3000:]
    for method in ("chain_getFinalizedHead", "state_queryStorageAt"):
        failed = [line for line in out.splitlines() if f"{method} on {devnet.url}" in line]
        assert len(failed) == 1, (method, out[-3000:])
        assert "pass failed" in failed[0] and "chain node error" in failed[0], failed
        assert "injected fault" in failed[0], failed
    assert loop.returncode == 0, out[-3000:]
