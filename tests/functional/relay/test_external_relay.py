"""External relays supervised by poolkeeper, with a stand-in for pherry (stand_in_pherry.py).

The stand-in takes pherry-like flags and does what its control file says: run and print,
exit with a code, ignore SIGTERM (hang), start a grandchild. Through the supervisor and the
reconciler's option factory, a crashed relay is restarted with growing delays, its output
lands in a per-worker log with the key masked, the key reaches it only as a 0600 file and an
environment variable (never argv; the master secret's variable is withheld), its state is
reported, and stopping leaves no process behind, also when ``poolkeeper relay`` is stopped.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from poolkeeper.model.desired import Settings, WorkerSpec
from poolkeeper.model.observed import (
    ChainHead,
    Observed,
    PRuntimeInfo,
    PRuntimeObservation,
    RelayStatus,
)
from poolkeeper.relay.external import ExternalRelayFactory, ExternalState
from poolkeeper.relay.supervisor import RelaySupervisor

STAND_IN = Path(__file__).with_name("stand_in_pherry.py")
RELAY_KEY = "//Relayer//stand-in-key-7f3a"
MASTER_VAR = "POOLKEEPER_TEST_MASTER"
TEMPLATE = [
    sys.executable,
    str(STAND_IN),
    "--pruntime-endpoint",
    "{endpoint}",
    "--substrate-ws-endpoint",
    "{chain}",
    "--key-file",
    "{key_file}",
    "--work-dir",
    "{work_dir}",
]


def settings(backoff: tuple[float, ...] = (0.3, 0.6, 1.2)) -> Settings:
    return Settings.model_validate(
        {
            "secrets": {"env": MASTER_VAR},
            "relay": {
                "mode": "external",
                "external_command": TEMPLATE,
                "external_key": {"env": "POOLKEEPER_TEST_RELAY_KEY"},
                "external_backoff_seconds": list(backoff),
            },
        }
    )


def factory(state_dir: Path, backoff: tuple[float, ...] = (0.3, 0.6, 1.2)) -> ExternalRelayFactory:
    environ = dict(os.environ, POOLKEEPER_TEST_RELAY_KEY=RELAY_KEY)
    environ[MASTER_VAR] = "must never reach a relay"
    return ExternalRelayFactory(settings(backoff), "ws://127.0.0.1:9", state_dir, environ=environ)


def worker(name: str) -> WorkerSpec:
    return WorkerSpec(name=name, endpoint=f"http://127.0.0.1:9/{name}", pool=None)


def starts(work_dir: Path) -> list[dict[str, Any]]:
    path = work_dir / "starts.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


async def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def gone(pid: int) -> bool:
    """No such process, or only its zombie (no reaper in some containers)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True
    return state in ("Z", "X")


def supervisor() -> RelaySupervisor:
    # External relays need neither the chain source nor the pRuntime transport.
    return RelaySupervisor(cast(Any, None), cast(Any, None), lambda _name: None)


async def test_crashed_relay_is_restarted_with_backoff_and_its_log_masks_the_key(
    tmp_path: Path,
) -> None:
    make = factory(tmp_path)
    options = make.options(worker("w0"), tuple(TEMPLATE), None)
    work = tmp_path / "relays" / "w0"
    (work / "control").write_text("exit 3")
    relays = supervisor()
    relays.reconcile({"w0": ("http://127.0.0.1:9/w0", options)})
    try:
        await wait_for(lambda: len(starts(work)) >= 4, 15, "four starts of a crashing relay")
        relay = relays.external("w0")
        assert relay is not None
        assert relay.status.last_exit == 3
        assert relays.statuses()["w0"] in (RelayStatus.BACKING_OFF, RelayStatus.RUNNING)
        (work / "control").write_text("run")
        await wait_for(lambda: relay.status.state is ExternalState.RUNNING, 15, "running again")
        assert relays.statuses()["w0"] is RelayStatus.RUNNING
        assert "running" in relays.details()["w0"]
        assert "last exited with code 3" in relays.details()["w0"]
    finally:
        await relays.stop_all()

    records = starts(work)
    times = [r["time"] for r in records]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # Delays 0.3, 0.6, 1.2 s, each jittered by at most 20 %, plus the start-up time.
    for gap, delay in zip(gaps, (0.3, 0.6, 1.2), strict=False):
        assert gap >= delay * 0.8, gaps
    assert gaps[2] > gaps[0], f"backoff did not grow: {gaps}"
    for record in records:
        assert record["key_file_matches_env"], "the key reaches the relay as file and env"
        assert record["key_file_mode"] == "0o600"
        assert not record["master_secret_in_env"]
        assert RELAY_KEY not in " ".join(record["argv"])
    log = (tmp_path / "relays" / "w0.log").read_text()
    assert "signing with [redacted]" in log
    assert RELAY_KEY not in log
    assert "exited with code 3" in log
    assert not (tmp_path / "relays" / "w0.key").exists(), "key file left behind"


async def test_stopping_ends_a_hung_relay_and_everything_it_started(tmp_path: Path) -> None:
    make = factory(tmp_path)
    relays = supervisor()
    names = ["h0", "h1"]
    for name in names:
        (tmp_path / "relays" / name).mkdir(parents=True)
        (tmp_path / "relays" / name / "control").write_text("hang spawn")
    relays.reconcile(
        {
            n: (f"http://127.0.0.1:9/{n}", make.options(worker(n), tuple(TEMPLATE), None))
            for n in names
        }
    )
    works = [tmp_path / "relays" / n for n in names]
    await wait_for(lambda: all(starts(w) for w in works), 15, "both relays started")
    pids = [p for w in works for r in starts(w) for p in (r["pid"], r["grandchild"])]
    assert all(not gone(pid) for pid in pids)
    # The plan no longer wants h1: it is stopped although it ignores SIGTERM.
    relays.reconcile(
        {"h0": ("http://127.0.0.1:9/h0", make.options(worker("h0"), tuple(TEMPLATE), None))}
    )
    started = time.monotonic()
    await relays.stop_all()
    assert time.monotonic() - started < 12
    await wait_for(lambda: all(gone(pid) for pid in pids), 5, "no relay process left")


def test_poolkeeper_relay_stops_its_external_relays_on_sigterm(tmp_path: Path) -> None:
    from poolkeeper_devnet.chain.server import DevnetChain

    chain = DevnetChain.start("dev", block_time=0.5, finality_lag=1)
    inventory = tmp_path / "inventory"
    inventory.mkdir()
    state = tmp_path / "state"
    doc = {
        "settings": {
            "network": "devnet",
            "chain": {"endpoints": [chain.url]},
            "secrets": {"env": MASTER_VAR},
            "relay": {
                "attestation_provider": "none",
                "external_command": TEMPLATE,
                "external_key": {"env": "POOLKEEPER_TEST_RELAY_KEY"},
            },
            "state_dir": str(state),
            "pruntime_timeout_seconds": 1,
        },
        "workers": [
            {
                "name": "x0",
                "endpoint": "http://127.0.0.1:9/x0",
                "state": "sync_only",
                "relay": {"mode": "external"},
            },
            {
                "name": "x1",
                "endpoint": "http://127.0.0.1:9/x1",
                "state": "sync_only",
                "relay": {"mode": "external"},
            },
            {"name": "i0", "endpoint": "http://127.0.0.1:9/i0", "state": "sync_only"},
        ],
    }
    (inventory / "all.yaml").write_text(json.dumps(doc), encoding="utf-8")
    src = Path(__file__).resolve().parents[3] / "src"
    env = dict(
        os.environ,
        PYTHONPATH=str(src),
        POOLKEEPER_TEST_RELAY_KEY=RELAY_KEY,
        **{MASTER_VAR: "bottom drive obey lake curtain smoke basket hold race lonely fit walk"},
    )
    works = [state / "relays" / n for n in ("x0", "x1")]
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "poolkeeper", "relay", str(inventory), "--interval", "0.3"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and process.poll() is None:
                if all(starts(w) for w in works):
                    break
                time.sleep(0.2)
            time.sleep(0.5)
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
    finally:
        chain.stop()
    records = [r for w in works for r in starts(w)]
    assert len(records) >= 2, output
    assert process.returncode == 0, output
    assert "x0: external, running" in output
    assert RELAY_KEY not in output
    for record in records:
        assert "--substrate-ws-endpoint" in record["argv"]
        assert chain.url in record["argv"]
        assert not record["master_secret_in_env"]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not all(gone(r["pid"]) for r in records):
        time.sleep(0.1)
    assert all(gone(r["pid"]) for r in records), "a relay process outlived poolkeeper"


def observation(endpoint: str, blocknum: int, finalized: int) -> Observed:
    info = PRuntimeInfo(initialized=True, headernum=blocknum, blocknum=blocknum)
    return Observed(
        read_at=datetime.now(UTC),
        head=ChainHead(best_number=finalized + 2, finalized_number=finalized),
        pruntimes={endpoint: PRuntimeObservation(endpoint=endpoint, info=info)},
    )


async def test_a_running_relay_whose_pruntime_does_not_move_is_reported_stalled(
    tmp_path: Path,
) -> None:
    endpoint = "http://127.0.0.1:9/w3"
    options = replace(
        factory(tmp_path).options(worker("w3"), tuple(TEMPLATE), None), stall_seconds=0.6
    )
    (tmp_path / "relays" / "w3").mkdir(parents=True, exist_ok=True)
    (tmp_path / "relays" / "w3" / "control").write_text("run")
    relays = supervisor()
    relays.reconcile({"w3": (endpoint, options)})
    try:
        relay = relays.external("w3")
        assert relay is not None
        await wait_for(lambda: relay.status.state is ExternalState.RUNNING, 15, "running")
        # Moving while behind: running. Then stuck behind the chain: stalled after 0.6 s.
        for blocknum in (10, 20, 20):
            relays.note_observation(observation(endpoint, blocknum, finalized=500))
            assert relays.statuses()["w3"] is RelayStatus.RUNNING
        await asyncio.sleep(0.7)
        relays.note_observation(observation(endpoint, 20, finalized=510))
        assert relays.statuses()["w3"] is RelayStatus.STALLED
        assert "stalled: pRuntime at #20" in relays.details()["w3"], relays.details()
        # It moves again: the condition clears at once.
        relays.note_observation(observation(endpoint, 21, finalized=510))
        assert relays.statuses()["w3"] is RelayStatus.RUNNING
        assert "stalled" not in relays.details()["w3"]
        # At the tip, not moving is not a stall.
        relays.note_observation(observation(endpoint, 510, finalized=510))
        await asyncio.sleep(0.7)
        relays.note_observation(observation(endpoint, 510, finalized=512))
        assert relays.statuses()["w3"] is RelayStatus.RUNNING
    finally:
        await relays.stop_all()
