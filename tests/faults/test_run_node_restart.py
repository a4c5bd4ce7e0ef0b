"""``poolkeeper run`` keeps going when the node restarts and loses the transaction pool.

``run`` (a subprocess) sends a top-up while the devnet makes no blocks, so the transfer
waits in the pool; then the node restarts keeping its state but not its pool
(``devnet_restart [true]``). Every pass re-resolves unsettled extrinsics by the one rule
(``apply.settlement``), so ``run`` converges by itself, without being restarted:

- *restart*: the pass finds the transfer in no block, its nonce unused and its era alive:
  pending, its bytes are re-submitted, and it is included once blocks resume;
- *restart, era passes*: 70 blocks (more than the 64-block era) are made right after the
  restart, so the pass finds the era ended with no block holding it: proven dropped, the
  top-up is planned and sent again.

Either way the chain's blocks (read over RPC) hold exactly one transfer of 100 PHA (the
daily cap is 150 PHA), within the era bound: 64 blocks, 19 s at the devnet's 0.3 s.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from poolkeeper.keys import Mnemonic, derive_keys
from poolkeeper.model.ss58 import decode_address
from poolkeeper_devnet.chain.server import DevnetChain
from tests.faults._faults import Lines, pool_holds, rpc, start_run, transfers_to, wait_for
from tests.functional.apply._world import PHRASE

PHA = 10**12
BLOCK_TIME = 0.3
ERA_BLOCKS = 64
KEYS = derive_keys(Mnemonic(PHRASE), ["funding", "top-up//0"], 30)
FUNDING = KEYS["funding"].address
TARGET = KEYS["top-up//0"].address


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
  - {{name: tu, role: watch, derivation: top-up//0, address: {TARGET},
      top_up: {{from: funding, to: 100 PHA, max_per_day: 150 PHA}}}}
"""


@pytest.fixture
def devnet() -> Iterator[DevnetChain]:
    genesis = {
        "chain_name": "Khala Devnet",
        "block_time": f"{BLOCK_TIME}s",
        "finality_lag": 1,
        "balances": {"//Alice": "1000000 PHA", FUNDING: "10000 PHA"},
    }
    handle = DevnetChain.start(genesis)
    try:
        yield handle
    finally:
        handle.stop()


def free_of(handle: DevnetChain, address: str) -> int:
    account = "0x" + decode_address(address)[1].hex()
    return int(handle.call(lambda: handle.chain.pallets["Balances"].free(account)))  # type: ignore[attr-defined]


@pytest.mark.parametrize("era_passes", [False, True], ids=["restart", "restart-era-passes"])
def test_extrinsic_lost_in_a_node_restart_is_resolved_by_the_running_loop(
    devnet: DevnetChain, tmp_path: Path, era_passes: bool
) -> None:
    directory = tmp_path / "inventory"
    directory.mkdir()
    (directory / "inventory.yaml").write_text(inventory(devnet.url, tmp_path / "state"), "utf-8")
    rpc(devnet.url, "devnet_pauseBlocks")
    loop = start_run(directory)
    lines = Lines(loop)
    try:
        wait_for(lambda: pool_holds(devnet, "Balances"), 60, "the top-up in the pool")
        rpc(devnet.url, "devnet_restart", [True])
        restarted = time.monotonic()
        assert not pool_holds(devnet, "Balances")  # the restart lost it
        if era_passes:
            rpc(devnet.url, "dev_newBlock", [{"count": ERA_BLOCKS + 6}])
        rpc(devnet.url, "devnet_resumeBlocks")
        wait_for(lambda: free_of(devnet, TARGET) >= 100 * PHA, 90, "the top-up on chain")
        took = time.monotonic() - restarted
        # The loop also says so: a pass that has nothing left to do.
        wait_for(lambda: lines.has("0 action(s) planned"), 30, "a pass with nothing to do")
    finally:
        loop.send_signal(signal.SIGINT)
        loop.wait(60)
    out = lines.text()
    assert "Traceback" not in out, out[-3000:]
    assert transfers_to(devnet, decode_address(TARGET)[1].hex()) == [100 * PHA], out[-3000:]
    assert free_of(devnet, TARGET) == 100 * PHA
    # Within the era bound (64 blocks of 0.3 s), plus process and pass slack.
    assert took < ERA_BLOCKS * BLOCK_TIME + 20, (took, out[-3000:])
    if era_passes and "mortal era ended" not in out:
        # The loop's pass came before the 70 blocks: re-submitted, still exactly once.
        assert "re-submitted" in out or "pool holds it" in out, out[-3000:]
