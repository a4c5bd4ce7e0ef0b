"""A small Phala world for end-to-end apply tests: a devnet chain and simulated pRuntimes
in this process (threads), an inventory directory naming them, and the ``poolkeeper``
CLI run as a subprocess against them, exactly as an operator would run it.

The chain is read back directly (its blocks and storage) to judge what happened; the
product only ever reaches the peers over the network.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from poolkeeper.chain import SubstrateChain
from poolkeeper.chain.ports import ChainState
from poolkeeper.inventory import load_inventory
from poolkeeper.keys import KeyRing, Mnemonic
from poolkeeper_devnet.chain.server import DevnetChain
from poolkeeper_devnet.command import genesis_for
from poolkeeper_devnet.pruntime import SimulatorThread

PHRASE = "bottom drive obey lake curtain smoke basket hold race lonely fit walk"
REPO = Path(__file__).resolve().parents[3]

ACCOUNTS = """\
accounts:
  - {name: owner, role: owner, derivation: owner}
  - {name: operator-a, role: operator, derivation: operator//pool-a}
  - {name: operator-b, role: operator, derivation: operator//pool-b}
  - {name: relay-signer, role: relay_signer, derivation: relay}
"""
POOLS = """\
pools:
  - {name: pool-a, pid: 0, owner: owner, operator: operator-a, default_stake: 1000 PHA}
  - {name: pool-b, pid: 1, owner: owner, operator: operator-b, default_stake: 1000 PHA}
"""


def settings(chain_url: str, state_dir: Path) -> str:
    return f"""\
settings:
  network: devnet
  chain: {{endpoints: ["{chain_url}"], wait_for: inclusion}}
  secrets: {{env: POOLKEEPER_MNEMONIC}}
  relay: {{sync_blocks: 16, attestation_provider: none}}
  pruntime_concurrency: 100
  pruntime_timeout_seconds: 5
  state_dir: {state_dir}
"""


@dataclass
class WorkerLine:
    """One worker entry of the test inventory."""

    name: str
    endpoint: str
    pool: str
    state: str = "computing"
    stake: str | None = None

    def yaml(self) -> str:
        stake = f", stake: {self.stake}" if self.stake else ""
        return (
            f"  - {{name: {self.name}, endpoint: '{self.endpoint}', pool: {self.pool}, "
            f"state: {self.state}{stake}}}\n"
        )


class World:
    """Chain + pRuntimes + inventory directory; ``apply`` runs the CLI."""

    def __init__(
        self,
        root: Path,
        workers: int,
        *,
        block_time: float,
        cool_down: int,
        runtime: str = "khala",
        accounts: str = ACCOUNTS,
        phala: dict[str, Any] | None = None,
        pools: str = POOLS,
    ) -> None:
        self.root = root
        self.accounts_yaml = accounts
        self.pools_yaml = pools
        self.inventory = root / "inventory"
        self.inventory.mkdir(parents=True)
        self.state_dir = root / "state"
        self.sim = SimulatorThread(workers, base_port=0, seed=b"apply-world").start()
        self.workers = [
            WorkerLine(f"w{i:02d}", self.sim.url(i), "pool-a" if i < workers // 2 else "pool-b")
            for i in range(workers)
        ]
        self._write_static("ws://127.0.0.1:1")  # the real URL once the chain runs
        self.write_workers()
        desired = load_inventory(self.inventory)
        ring = KeyRing(desired, Mnemonic(PHRASE))
        self.addresses = {a.name: ring.address(a.name) for a in desired.accounts}
        genesis = genesis_for(desired, self.addresses, cool_down=cool_down)
        # Between two CLI runs no relay feeds the pRuntimes, so computing workers miss their
        # heartbeats. Going Unresponsive after N blocks made these tests depend on wall time
        # (1,000 blocks of 0.3 s were crossed on a busy machine: a saved plan's restart was
        # then, rightly, no longer planned); no test here is about unresponsiveness.
        genesis["phala"].update(
            benchmark_duration=2, heartbeat_interval=5, unresponsive_after=10**6
        )
        genesis["phala"].update(phala or {})
        self.chain = DevnetChain.start(
            genesis, block_time=block_time, finality_lag=1, runtime_name=runtime
        )
        self._write_static(self.chain.url)

    def _write_static(self, chain_url: str) -> None:
        (self.inventory / "accounts.yaml").write_text(self.accounts_yaml, encoding="utf-8")
        (self.inventory / "pools.yaml").write_text(self.pools_yaml, encoding="utf-8")
        (self.inventory / "settings.yaml").write_text(
            settings(chain_url, self.state_dir), encoding="utf-8"
        )

    def write_workers(self) -> None:
        text = "workers:\n" + "".join(w.yaml() for w in self.workers)
        (self.inventory / "workers.yaml").write_text(text, encoding="utf-8")

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "POOLKEEPER_MNEMONIC": PHRASE,
            "PYTHONPATH": str(REPO / "src"),
            "NO_COLOR": "1",
            **extra,
        }

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "poolkeeper", *args]

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``poolkeeper ARGS`` against this world, exit code unchecked."""
        return subprocess.run(
            self.command(*args),
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def apply(self, *extra: str, wait: float = 90, env: dict[str, str] | None = None) -> str:
        """``poolkeeper apply --auto-approve``; the output (it must exit 0)."""
        done = subprocess.run(
            self.command(
                "apply", str(self.inventory), "--auto-approve", "--wait", str(wait), *extra
            ),
            env=env or self.env(),
            capture_output=True,
            text=True,
            timeout=wait + 60,
            check=False,
        )
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
        return done.stdout

    def apply_saved(self, plan: Path, wait: float = 60) -> subprocess.CompletedProcess[str]:
        """``poolkeeper apply PLAN.json --inventory DIR --auto-approve``, exit code unchecked."""
        return subprocess.run(
            self.command(
                "apply",
                str(plan),
                "--inventory",
                str(self.inventory),
                "--auto-approve",
                "--wait",
                str(wait),
            ),
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=wait + 60,
            check=False,
        )

    def plan_json(self, *extra: str) -> dict[str, Any]:
        """A fresh live ``plan --json``."""
        done = subprocess.run(
            self.command("plan", str(self.inventory), "--json", *extra),
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode in (0, 2), done.stdout[-4000:] + done.stderr[-4000:]
        document: dict[str, Any] = json.loads(done.stdout)
        return document

    # ---- reading the chain back ----------------------------------------------------------

    def read(self, fn: Any) -> Any:
        return self.chain.call(fn)

    def chain_state(self, pids: Iterable[int] = (0, 1)) -> ChainState:
        """The chain as the product's adapter reads it, over the websocket."""

        async def read() -> ChainState:
            adapter = SubstrateChain(self.chain.url)
            try:
                return await adapter.read_state(list(pids), ())
            finally:
                await adapter.close()

        return asyncio.run(read())

    def stake_pool_calls(self) -> Counter[str]:
        """Every pool and registry call in every block, with its arguments, counted."""
        result: Counter[str] = self.read(_stake_pool_calls(self.chain))
        return result

    def close(self) -> None:
        self.chain.stop()
        self.sim.stop()


def _hex(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    return str(value).lower().removeprefix("0x")


def _stake_pool_calls(handle: DevnetChain) -> Any:
    def get() -> Counter[str]:
        chain = handle.chain
        counts: Counter[str] = Counter()
        for number in sorted(chain.blocks):
            for raw in chain.blocks[number].extrinsics:
                try:
                    xt = chain.decode_extrinsic(raw, check_signature=False)
                except Exception:  # inherents and unsigned messages do not decode here
                    continue
                for call in _flatten(xt.call):
                    if call["call_module"] in ("PhalaStakePoolv2", "PhalaRegistry"):
                        counts[json.dumps(call, sort_keys=True, default=_hex)] += 1
        return counts

    return get


def _flatten(call: dict[str, Any]) -> Iterator[dict[str, Any]]:
    raw = call.get("call_args") or {}
    args = dict(raw) if isinstance(raw, dict) else {a["name"]: a["value"] for a in raw}
    inner = args.get("calls")
    wrapped = args.get("call")
    if isinstance(inner, list):
        for c in inner:
            yield from _flatten(c)
    elif isinstance(wrapped, dict):
        yield from _flatten(wrapped)
    else:
        yield {
            "call_module": call.get("call_module"),
            "call_function": call.get("call_function"),
            "args": args,
        }
