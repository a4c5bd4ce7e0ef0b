"""A full devnet scenario never shows the master secret, anywhere.

With a known mnemonic in ``POOLKEEPER_MNEMONIC`` this runs, as an operator would
(real console entry point, separate processes): ``accounts generate``, ``devnet up``,
live ``plan`` (text, JSON, ``-o``), ``apply --auto-approve --wait``, ``status`` (text
and JSON), ``list workers|accounts|pools --format json``, ``accounts list``, an error
path (``apply`` with the chain gone after ``devnet down``), and a webhook receiving
alerts; and, in this process, the TUI against the same live devnet (read-only: the
workers, accounts and event-log views and the plan preview, as screenshots). Every
command logs at DEBUG level (all libraries) into a log file. Then every
stdout/stderr, every log, every TUI screen, the journal SQLite files (with WAL), the
devnet's own logs, the saved plan, the alert state and the webhook bodies are
searched for any three consecutive words of the mnemonic, its BIP39 seed and every
derived private key (hex, either case, and the raw bytes in binary files): none may
appear.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from substrateinterface import Keypair

from tests._ports import free_port_run
from tests.functional._webhook import Hook

pytestmark = pytest.mark.slow

SRC = Path(__file__).resolve().parents[3] / "src"
# A public BIP39 test vector; it must never hold value.
PHRASE = "legal winner thank year wave sausage worth useful legal winner thank yellow"
LABELS = ("owner//pool-a", "operator//pool-a", "relay//0", "funding")

RUN = """
import logging, sys
logging.basicConfig(filename=sys.argv[1], level=logging.DEBUG,
                    format="%(asctime)s %(name)s %(levelname)s %(message)s")
from poolkeeper.cli import main
sys.argv = ["poolkeeper", *sys.argv[2:]]
main()
"""


def inventory_text(chain_port: int, worker_ports: list[int], state: Path, hook: str) -> str:
    workers = "".join(
        f"  - name: w{i}\n    endpoint: http://127.0.0.1:{port}\n    pool: pool-a\n"
        for i, port in enumerate(worker_ports)
    )
    return f"""\
# no-leak scenario
settings:
  network: devnet
  chain: {{endpoints: ['ws://127.0.0.1:{chain_port}']}}
  state_dir: '{state}'
  relay: {{attestation_provider: none}}
  alerts: {{webhook_url: '{hook}', debounce_seconds: 0}}
pools:
  - name: pool-a
    pid: 0
    owner: owner
    operator: operator
    default_stake: 100 PHA
workers:
{workers}accounts:
  - name: owner
    role: owner
    derivation: owner//pool-a
  - name: operator
    role: operator
    derivation: operator//pool-a
    top_up: {{from: funding, to: 2000 PHA, max_per_day: 1500 PHA}}
  - name: relay
    role: relay_signer
    derivation: relay//0
  - name: funding
    role: funding
    derivation: funding
    warn_below: 50000 PHA
  - name: treasury
    role: watch
    address: 447okwgqnpaKuseEXECNcXK8KUMPpgM1cjczMvKx9T7c5MXr
    warn_below: 50000 PHA
"""


def forbidden_text() -> list[re.Pattern[str]]:
    words = PHRASE.split()
    patterns = [
        re.compile(r"\s+".join(words[i : i + 3]), re.IGNORECASE) for i in range(len(words) - 2)
    ]
    return patterns + [re.compile(re.escape(s.hex()), re.IGNORECASE) for s in secret_bytes()]


def secret_bytes() -> list[bytes]:
    seed = Keypair.create_from_mnemonic(PHRASE).seed_hex
    found = [seed if isinstance(seed, bytes) else bytes.fromhex(seed.removeprefix("0x"))]
    for label in LABELS:
        pair = Keypair.create_from_uri(f"{PHRASE}//poolkeeper//{label}")
        found.append(bytes(pair.private_key[:32]))
    return found


async def tui_screens(inventory: Path) -> list[str]:
    """The TUI's views (workers, accounts, event log) and plan preview, live, read-only."""
    from poolkeeper.inventory import load_inventory
    from poolkeeper_tui._data import LiveSource
    from poolkeeper_tui.app import PoolkeeperApp
    from tests.tui.conftest import svg_text

    source = LiveSource(inventory, load_inventory(inventory), readonly=True)
    app = PoolkeeperApp(source, readonly=True)
    screens: list[str] = []
    async with app.run_test(size=(200, 60)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        for keys in (["1"], ["2"], ["3"], ["escape", "p"]):
            await pilot.press(*keys)
            await pilot.pause()
            screens.append(svg_text(app.export_screenshot()))
    return screens


@pytest.fixture
def hook() -> Iterator[Hook]:
    receiver = Hook()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def test_a_devnet_scenario_never_shows_the_secret(
    tmp_path: Path, hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain_port, *worker_ports = free_port_run(3)
    inventory = tmp_path / "inventory"
    inventory.mkdir()
    state = tmp_path / "state"
    (inventory / "inventory.yaml").write_text(
        inventory_text(chain_port, worker_ports, state, hook.url), encoding="utf-8"
    )
    devnet_state = tmp_path / "devnet"
    logs = tmp_path / "logs"
    logs.mkdir()
    env = {
        "PYTHONPATH": str(SRC),
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path / "home"),
        "POOLKEEPER_MNEMONIC": PHRASE,
        "COLUMNS": "250",
        "NO_COLOR": "1",
    }
    outputs: dict[str, str] = {}

    def start(name: str, *args: str) -> subprocess.Popen[str]:
        log = logs / f"{len(started):02d}-{name.replace(' ', '_')}.log"
        started.append(name)
        return subprocess.Popen(
            [sys.executable, "-c", RUN, str(log), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tmp_path,
        )

    def finish(name: str, process: subprocess.Popen[str], codes: tuple[int, ...]) -> str:
        stdout, stderr = process.communicate(timeout=120)
        outputs[name] = stdout + "\n" + stderr
        assert process.returncode in codes, (name, process.returncode, stdout, stderr)
        return stdout

    def run(name: str, *args: str, codes: tuple[int, ...] = (0,)) -> str:
        return finish(name, start(name, *args), codes)

    def run_together(
        commands: dict[str, tuple[tuple[str, ...], tuple[int, ...]]],
    ) -> dict[str, str]:
        """Read-only commands in parallel (each waits mostly on the network)."""
        running = {name: start(name, *args) for name, (args, _) in commands.items()}
        return {name: finish(name, p, commands[name][1]) for name, p in running.items()}

    started: list[str] = []
    inv = str(inventory)
    run("accounts generate", "accounts", "generate", inv)
    run("devnet up", "devnet", "up", inv, "--state-dir", str(devnet_state))
    try:
        plan = json.loads(run("plan --json", "plan", inv, "--json", "-o", str(tmp_path / "p.json")))
        assert plan["format_version"] == 1 and plan["actions"]
        run("apply", "apply", inv, "--auto-approve", "--wait", "6", "--no-color", codes=(0, 1))
        assert "top_up:account/operator: done" in outputs["apply"], outputs["apply"]
        ok = (0,)
        seen = run_together(
            {
                "plan": (("plan", inv, "--no-color"), (0,)),
                "status": (("status", inv), ok),
                "status --json": (("status", inv, "--json"), ok),
                "list workers": (("list", "workers", inv, "--format", "json"), ok),
                "list accounts": (("list", "accounts", inv, "--format", "json"), ok),
                "list pools": (("list", "pools", inv, "--format", "json"), ok),
                "accounts list": (("accounts", "list", inv, "--format", "json"), ok),
            }
        )
        assert len(json.loads(seen["status --json"])["workers"]) == 2
        monkeypatch.setenv("POOLKEEPER_MNEMONIC", PHRASE)
        screens = asyncio.run(tui_screens(inventory))
        assert any("w0" in text for text in screens), screens
        outputs.update({f"tui screen {i}": text for i, text in enumerate(screens)})
        for kind in ("workers", "accounts", "pools"):
            document = json.loads(seen[f"list {kind}"])
            assert document["format_version"] == 1 and document[kind]
    finally:
        run("devnet down", "devnet", "down", "--state-dir", str(devnet_state))
    # Error paths with the chain gone: exception texts must not carry secrets either.
    run("apply, chain down", "apply", inv, "--auto-approve", "--wait", "1", codes=(1,))

    assert hook.bodies, "the webhook received no alert: nothing to check there"
    assert "account/treasury" in hook.bodies[0]
    texts = dict(outputs)
    texts.update({f"webhook #{i}": body for i, body in enumerate(hook.bodies)})
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"journal.sqlite", "alerts.json", "p.json", "chain.log"} <= names, names
    assert any(n.startswith("pruntime-") for n in names), names
    assert sum(1 for p in (logs).iterdir() if p.stat().st_size > 0) >= 5
    patterns = forbidden_text()
    raw = secret_bytes()
    for name, text in texts.items():
        for pattern in patterns:
            assert not pattern.search(text), f"{name} shows a secret ({pattern.pattern[:12]}...)"
    for path in files:
        data = path.read_bytes()
        text = data.decode("utf-8", errors="replace")
        for pattern in patterns:
            assert not pattern.search(text), f"{path} shows a secret"
        for secret in raw:
            assert secret not in data, f"{path} holds a secret's raw bytes"
    # The search can fail: the inventory holds the derived addresses, and the same
    # search finds the phrase where it is (the environment given to the commands).
    assert any(p.search(" ".join(env.values())) for p in patterns)
