"""`poolkeeper run --metrics-addr` on the devnet with the example inventory: /metrics is
scraped over HTTP, parsed with prometheus_client's parser, and its workers computing and
account balances are checked against the chain's own values (read with substrate-interface
at the block the pass saw)."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from substrateinterface import SubstrateInterface

from poolkeeper.chain import SubstrateChain
from poolkeeper.inventory import load_inventory
from poolkeeper.keys import KeyRing, Mnemonic
from poolkeeper.model.observed import SessionState
from tests._ports import free_port_run
from tests.functional.cli.test_run_loop import PHRASE, ROOT, cli, env

Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[tuple[Path, int, int, int]]:
    chain_port, *pr_ports, metrics_port = free_port_run(10)
    inventory = tmp_path / "inventory"
    shutil.copytree(ROOT / "inventory", inventory)
    for path in inventory.rglob("*.yaml"):
        text = path.read_text()
        text = text.replace("ws://127.0.0.1:9944", f"ws://127.0.0.1:{chain_port}")
        for i in range(8):
            text = text.replace(f"http://127.0.0.1:{8100 + i}", f"http://127.0.0.1:{pr_ports[i]}")
        text = text.replace("interval_seconds: 30", "interval_seconds: 2")
        path.write_text(text)
    up = cli(
        "devnet",
        "up",
        "inventory",
        "--state-dir",
        "devnet",
        "--cool-down",
        "4",
        cwd=tmp_path,
        timeout=240,
    )
    assert up.returncode == 0, up.stderr
    try:
        yield tmp_path, chain_port, metrics_port, pr_ports[0]
    finally:
        down = cli("devnet", "down", "--state-dir", "devnet", cwd=tmp_path, timeout=240)
        assert down.returncode == 0, down.stderr


def scrape(port: int) -> tuple[Samples, float]:
    started = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    elapsed = time.perf_counter() - started
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out, elapsed


def rpc(url: str, method: str) -> None:
    substrate = SubstrateInterface(url=url)
    try:
        substrate.rpc_request(method, [])
    finally:
        substrate.close()


def wait_for_gauge(port: int, name: str, value: float, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    seen = None
    while time.monotonic() < deadline:
        seen = scrape(port)[0].get(name, {}).get(())
        if seen == value:
            return
        time.sleep(1)
    raise AssertionError(f"{name} stayed {seen}, not {value}, for {seconds}s")


def fault(pruntime_port: int, name: str) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{pruntime_port}/devnet/fault",
        data=json.dumps({"worker": 0, "fault": name}).encode(),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def rcu_busy(samples: Samples) -> bool:
    return any(
        dict(k).get("reason") == "RcuBusy" and v >= 1
        for k, v in samples.get("poolkeeper_worker_conditions", {}).items()
    )


def computing_on_chain(url: str) -> int:
    async def read() -> int:
        adapter = SubstrateChain(url)
        try:
            state = await adapter.read_state([0, 1], ())
        finally:
            await adapter.close()
        return sum(1 for w in state.workers.values() if w.session_state is SessionState.WORKER_IDLE)

    return asyncio.run(read())


def test_metrics_match_the_chain(workdir: tuple[Path, int, int, int]) -> None:
    cwd, chain_port, port, first_pruntime = workdir
    url = f"ws://127.0.0.1:{chain_port}"
    log = (cwd / "run.log").open("w")
    loop = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "poolkeeper",
            "run",
            "inventory",
            "--metrics-addr",
            f"127.0.0.1:{port}",
        ],
        cwd=cwd,
        env=env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 180
        samples: Samples = {}
        while time.monotonic() < deadline:
            time.sleep(2)
            try:
                samples, _ = scrape(port)
            except OSError:
                continue
            computing = samples.get("poolkeeper_workers", {})
            if sum(v for k, v in computing.items() if ("phase", "Computing") in k) == 6:
                break
        else:
            raise AssertionError(f"6 workers never computing: {samples.get('poolkeeper_workers')}")
        by_pool = {
            dict(k)["pool"]: v
            for k, v in samples["poolkeeper_workers"].items()
            if dict(k)["phase"] == "Computing" and v
        }
        assert by_pool == {"pool-a": 3, "pool-b": 3}
        assert computing_on_chain(url) == 6

        samples, elapsed = scrape(port)
        print(f"scrape of /metrics at the example inventory: {elapsed * 1000:.1f} ms")
        best = int(samples["poolkeeper_chain_best_block_number"][()])
        desired = load_inventory(cwd / "inventory")
        ring = KeyRing(desired, Mnemonic(PHRASE))
        substrate = SubstrateInterface(url=url)
        try:
            block_hash = substrate.get_block_hash(best)
            for key, free in samples["poolkeeper_account_free_plancks"].items():
                address = ring.address(dict(key)["account"])
                account = substrate.query("System", "Account", [address], block_hash=block_hash)
                assert free == account.value["data"]["free"], (key, best)
        finally:
            substrate.close()
        assert len(samples["poolkeeper_account_free_plancks"]) == len(desired.accounts)
        assert samples["poolkeeper_chain_finalized_block_number"][()] <= best
        assert samples["poolkeeper_pruntime_up"] and all(
            v == 1 for v in samples["poolkeeper_pruntime_up"].values()
        )
        assert samples["poolkeeper_pass_duration_seconds_count"][()] >= 1
        assert samples["poolkeeper_extrinsics_total"][(("status", "in_block"),)] >= 1
        assert sum(samples["poolkeeper_fees_paid_plancks_total"].values()) > 0
        assert time.time() - samples["poolkeeper_last_good_pass_timestamp_seconds"][()] < 60
        assert elapsed < 1.0

        # Blocks stop: ChainStalled within ten measured block times; they resume: cleared.
        assert samples["poolkeeper_chain_stalled"][()] == 0
        rpc(url, "devnet_pauseBlocks")
        paused_at = time.monotonic()
        wait_for_gauge(port, "poolkeeper_chain_stalled", 1, 120)
        print(f"ChainStalled raised {time.monotonic() - paused_at:.0f} s after blocks paused")
        rpc(url, "devnet_resumeBlocks")
        wait_for_gauge(port, "poolkeeper_chain_stalled", 0, 60)

        # A pRuntime answering "RCU in progress" to its relay is diagnosed by name.
        fault(first_pruntime, "rcu")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not rcu_busy(scrape(port)[0]):
            time.sleep(1)
        assert rcu_busy(scrape(port)[0]), scrape(port)[0]["poolkeeper_worker_conditions"]
        fault(first_pruntime, "clear")
        assert loop.poll() is None
    finally:
        loop.send_signal(signal.SIGINT)
        code = loop.wait(60)
        log.close()
    output = (cwd / "run.log").read_text()
    assert code == 0, output
    assert f"metrics: http://127.0.0.1:{port}/metrics" in output
