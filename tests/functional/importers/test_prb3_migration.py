"""A PRB v3 fleet moves to poolkeeper on the devnet, keys and proxy unchanged.

The chain already has what PRB ran with: two pools, one owned by an owner whose
StakePoolManager proxy (PRB's pool operator) signs for it, one whose operator is the
owner itself. PRB's ``GetAllPoolsWithWorkers`` and ``GetAllPoolOperators`` output (2
pools x 4 workers) is imported; the inventory validates; ``apply`` runs with only the
operators' keys in the environment (no master secret: nothing can be derived) and the
8 workers end computing in their pools, every pool call signed by PRB's operator keys.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from substrateinterface import Keypair

from poolkeeper.chain import SubstrateChain
from poolkeeper.chain.ports import ChainState
from poolkeeper.inventory import load_inventory
from poolkeeper.model.observed import SessionState
from poolkeeper.model.ss58 import encode_address
from poolkeeper_devnet.chain.server import DevnetChain
from poolkeeper_devnet.command import genesis_for
from poolkeeper_devnet.pruntime import SimulatorThread
from tests.functional.apply._world import REPO, _flatten, _hex

PHA = 10**12
OWNER_URI, OPERATOR_URI, SOLO_URI = "//PrbOwner", "//PrbOperator", "//PrbSoloOwner"


def _address(uri: str) -> str:
    return str(Keypair.create_from_uri(uri, ss58_format=30).ss58_address)


class Migration:
    """The devnet PRB ran against, PRB's export, and the imported inventory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sim = SimulatorThread(8, base_port=0, seed=b"prb-migration").start()
        self.inventory = root / "inventory"
        pools = [
            {
                "id": f"v{pid}",
                "name": name,
                "pid": pid,
                "enabled": True,
                "sync_only": False,
                "workers": [
                    {
                        "id": f"w{pid}{i}",
                        "name": f"{name}-w{i}",
                        "endpoint": self.sim.url(pid * 4 + i) + "/",
                        "stake": str(1000 * PHA),
                        "pid": pid,
                        "enabled": True,
                        "sync_only": False,
                        "gatekeeper": False,
                    }
                    for i in range(4)
                ],
            }
            for pid, name in ((0, "proxied pool"), (1, "solo pool"))
        ]
        operators = [
            {
                "pid": 0,
                "operator_account_id": _address(OPERATOR_URI),
                "proxied_account_id": _address(OWNER_URI),
            },
            {"pid": 1, "operator_account_id": _address(SOLO_URI), "proxied_account_id": None},
        ]
        (root / "pools.json").write_text(json.dumps(pools, indent=2))
        (root / "operators.json").write_text(json.dumps(operators, indent=2))
        self.import_output = self.cli(
            "import",
            "prb3",
            str(root / "pools.json"),
            str(root / "operators.json"),
            "--into",
            str(self.inventory),
            "--network",
            "devnet",
            "--chain",
            "ws://127.0.0.1:1",
        ).stdout
        desired = load_inventory(self.inventory)
        addresses = {a.name: a.address for a in desired.accounts if a.address}
        self.genesis = genesis_for(desired, addresses, cool_down=3)
        self.genesis["phala"].update(benchmark_duration=2, heartbeat_interval=5)
        self.chain = DevnetChain.start(self.genesis, block_time=0.3, finality_lag=1)
        settings = self.inventory / "settings.yaml"
        text = settings.read_text().replace("ws://127.0.0.1:1", self.chain.url)
        settings.write_text(text + f"  state_dir: {json.dumps(str(root / 'state'))}\n")

    def env(self) -> dict[str, str]:
        env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "NO_COLOR": "1"}
        env.pop("POOLKEEPER_MNEMONIC", None)
        return env

    def cli(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "poolkeeper", *args],
            env=env or self.env(),
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
        return done

    def close(self) -> None:
        self.chain.stop()
        self.sim.stop()


@pytest.fixture(scope="module")
def migration(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Migration]:
    m = Migration(tmp_path_factory.mktemp("prb"))
    try:
        yield m
    finally:
        m.close()


def test_the_export_imports_to_a_valid_inventory_naming_the_keys(migration: Migration) -> None:
    out = migration.import_output
    assert "valid (2 pools, 8 workers, 3 accounts)" in out
    assert "export POOLKEEPER_KEY_OPERATOR=" in out
    assert "export POOLKEEPER_KEY_OWNER_2=" in out
    assert migration.genesis["proxies"] == [
        {
            "real": _address(OWNER_URI),
            "delegate": _address(OPERATOR_URI),
            "proxy_type": "StakePoolManager",
        }
    ]


def test_apply_without_the_keys_stops_before_any_transaction(migration: Migration) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "poolkeeper",
            "apply",
            str(migration.inventory),
            "--auto-approve",
            "--wait",
            "5",
        ],
        env=migration.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "environment variable POOLKEEPER_KEY_OPERATOR holds no key" in done.stderr
    assert "Traceback" not in done.stderr


def test_apply_with_prb_keys_converges_without_deriving_any_key(migration: Migration) -> None:
    env = {
        **migration.env(),
        "POOLKEEPER_KEY_OPERATOR": OPERATOR_URI,
        "POOLKEEPER_KEY_OWNER_2": SOLO_URI,
    }
    done = migration.cli(
        "apply", str(migration.inventory), "--auto-approve", "--wait", "150", env=env
    )
    assert "FAILED" not in done.stdout, done.stdout[-4000:]
    state = asyncio.run(_read_state(migration.chain.url))
    for index in range(8):
        key = migration.sim.simulator.identity(index).public.hex()
        worker = state.workers.get(key)
        assert worker is not None, f"worker {index} not registered"
        assert key in state.pools[index // 4].workers
        assert worker.session_state is SessionState.WORKER_IDLE, (index, worker)
        assert worker.stake == 1000 * PHA
    # Pool calls were signed by PRB's operator keys only: the proxy for pool 0 (wrapped
    # in Proxy.proxy), the owner's own key for pool 1; the owner of pool 0 never signed.
    signers, proxied = migration.chain.call(_pool_call_signers(migration.chain))
    assert signers == {_address(OPERATOR_URI), _address(SOLO_URI)}, signers
    assert proxied > 0
    plan = migration.cli("plan", str(migration.inventory), "--json", env=env)
    kinds = {a["kind"] for a in json.loads(plan.stdout)["actions"]}
    assert kinds <= {"start_relay"}, kinds


async def _read_state(url: str) -> ChainState:
    adapter = SubstrateChain(url)
    try:
        return await adapter.read_state([0, 1], ())
    finally:
        await adapter.close()


def _pool_call_signers(handle: DevnetChain) -> Any:
    def get() -> tuple[set[str], int]:
        chain = handle.chain
        signers: set[str] = set()
        proxied = 0
        for number in sorted(chain.blocks):
            for raw in chain.blocks[number].extrinsics:
                try:
                    xt = chain.decode_extrinsic(raw, check_signature=False)
                except Exception:  # inherents and unsigned messages do not decode here
                    continue
                modules = {c["call_module"] for c in _flatten(xt.call)}
                if "PhalaStakePoolv2" in modules:
                    signers.add(encode_address(bytes.fromhex(_hex(xt.signer)), 30))
                    proxied += xt.call.get("call_module") == "Proxy"
        return signers, proxied

    return get
