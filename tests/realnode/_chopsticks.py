"""Start and stop chopsticks running the real Asset Hub runtime, fully offline, on loopback.

The real-runtime tests need a genuine Substrate runtime (a cumulus parachain runtime
executed from its wasm) rather than our own simulator. chopsticks, installed from npm
into tools/chopsticks by scripts/setup, runs one from a raw chain spec. The chain spec
(GPL-3.0) comes from the npm package @substrate/connect-known-chains and is extracted at
test time into a temporary directory; it is never stored in this repository.

Offline: with ``--genesis=<file>`` chopsticks builds genesis from the spec's raw storage
and executes the runtime code found there; without ``--db`` it keeps blocks in memory.
It contacts no endpoint, so nothing is downloaded at run time.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests._ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_DIR = REPO_ROOT / "tools" / "chopsticks"
CHOPSTICKS_BIN = TOOLS_DIR / "node_modules" / "@acala-network" / "chopsticks" / "chopsticks.cjs"
KNOWN_CHAINS_DIR = TOOLS_DIR / "node_modules" / "@substrate" / "connect-known-chains"
CHAIN_SPEC_NAME = "rococo_v2_2_asset_hub"
START_TIMEOUT_S = 120.0
"""Generous: on a loaded 2-core machine chopsticks takes 3-15 s to compile the runtime."""

_LISTENING = re.compile(r"RPC listening on http://127\.0\.0\.1:(\d+)")


class ChopsticksError(RuntimeError):
    """chopsticks could not be started; the message carries the tail of its log."""


def unavailable_reason() -> str | None:
    """Why chopsticks cannot run on this machine, or None when it can."""
    if shutil.which("node") is None:
        return "node is not installed (chopsticks needs node; scripts/setup installs it via npm)"
    if not CHOPSTICKS_BIN.is_file():
        return (
            f"chopsticks is not installed: run `npm install` in {TOOLS_DIR.relative_to(REPO_ROOT)}"
        )
    if not KNOWN_CHAINS_DIR.is_dir():
        return (
            "@substrate/connect-known-chains is not installed: "
            f"run `npm install` in {TOOLS_DIR.relative_to(REPO_ROOT)}"
        )
    return None


def extract_chain_spec(directory: Path) -> Path:
    """Write the raw Asset Hub chain spec (with its runtime code) into ``directory``."""
    target = directory / f"{CHAIN_SPEC_NAME}.json"
    script = (
        "process.stdout.write(require("
        f"'@substrate/connect-known-chains/{CHAIN_SPEC_NAME}').chainSpec)"
    )
    with target.open("wb") as out:
        subprocess.run(["node", "-e", script], cwd=TOOLS_DIR, stdout=out, check=True, timeout=60)
    return target


@dataclass
class ChopsticksProcess:
    """A running chopsticks; ``stop`` ends its whole process group."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    start_seconds: float
    _stopped: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def resident_memory_kib(self) -> tuple[int, int]:
        """(current, peak) resident set size of the chopsticks process in KiB."""
        current = peak = 0
        status = Path(f"/proc/{self.process.pid}/status")
        with contextlib.suppress(OSError):
            for line in status.read_text().splitlines():
                if line.startswith("VmRSS:"):
                    current = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    peak = int(line.split()[1])
        return current, peak

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def start(workdir: Path, chain_spec: Path, block_mode: str = "Batch") -> ChopsticksProcess:
    """Start chopsticks on 127.0.0.1 and return once it answers JSON-RPC.

    ``Batch`` builds a block shortly after extrinsics arrive, with all of them in
    submission order (``Instant`` builds one block per extrinsic and drops an extrinsic
    whose nonce is not yet due, so several in flight from one signer would be lost).
    chopsticks moves to the next port when the requested one is taken, so the port it
    really listens on is read from its log.
    """
    log_path = workdir / "chopsticks.log"
    command = [
        "node",
        str(CHOPSTICKS_BIN),
        f"--genesis={chain_spec}",
        f"--build-block-mode={block_mode}",
        "--host=127.0.0.1",
        f"--port={free_port()}",
        "--runtime-log-level=0",
    ]
    started = time.monotonic()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    handle = ChopsticksProcess(process, 0, log_path, 0.0)
    try:
        handle.port = _wait_until_listening(handle, started + START_TIMEOUT_S)
        _wait_until_answering(handle, started + START_TIMEOUT_S)
    except BaseException:
        handle.stop()
        raise
    handle.start_seconds = time.monotonic() - started
    return handle


def _wait_until_listening(handle: ChopsticksProcess, deadline: float) -> int:
    while time.monotonic() < deadline:
        if handle.process.poll() is not None:
            raise ChopsticksError(
                f"chopsticks exited with {handle.process.returncode}:\n{handle.log_tail()}"
            )
        match = _LISTENING.search(handle.log_path.read_text(errors="replace"))
        if match:
            return int(match.group(1))
        time.sleep(0.1)
    raise ChopsticksError(
        f"chopsticks did not listen within {START_TIMEOUT_S:.0f} s:\n{handle.log_tail()}"
    )


def _wait_until_answering(handle: ChopsticksProcess, deadline: float) -> None:
    request = {"id": 1, "jsonrpc": "2.0", "method": "system_chain", "params": []}
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            answer = httpx.post(
                f"http://127.0.0.1:{handle.port}", json=request, timeout=5, trust_env=False
            )
            if "result" in answer.json():
                return
        time.sleep(0.2)
    raise ChopsticksError(f"chopsticks did not answer system_chain:\n{handle.log_tail()}")
