"""Fault-injection helpers: devnet admin knobs over JSON-RPC, and the chain's own record.

Duplicates are counted from the chain's blocks, fetched over JSON-RPC one by one
(``chain_getBlockHash`` / ``chain_getBlock``) and decoded with the devnet's codec, never
from the journal the product keeps: the journal is what is under test.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from poolkeeper._crash_points import ENV
from poolkeeper_devnet.chain.server import DevnetChain
from tests.functional.apply._world import PHRASE, REPO, World, _flatten, _hex


def rpc(url: str, method: str, params: list[Any] | None = None) -> Any:
    """One JSON-RPC request over HTTP to the devnet (it serves HTTP on its ws port)."""
    http = url.replace("ws://", "http://", 1)
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
    request = urllib.request.Request(
        http, body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        reply: dict[str, Any] = json.loads(answer.read())
    if "error" in reply:
        raise RuntimeError(f"{method}: {reply['error']}")
    return reply.get("result")


def best_number(url: str) -> int:
    return int(rpc(url, "chain_getHeader")["number"], 16)


def calls_in_blocks(handle: DevnetChain, first: int = 1) -> Iterator[tuple[int, dict[str, Any]]]:
    """(block number, call) for every call of every signed extrinsic from ``first`` to the
    best block, batches and proxies unwrapped; blocks read over RPC."""
    chain = handle.chain
    for number in range(first, best_number(handle.url) + 1):
        block_hash = rpc(handle.url, "chain_getBlockHash", [number])
        block = rpc(handle.url, "chain_getBlock", [block_hash])["block"]
        for raw in block["extrinsics"]:
            try:
                xt = chain.decode_extrinsic(bytes.fromhex(raw[2:]), check_signature=False)
            except Exception:  # inherents and unsigned messages do not decode here
                continue
            for call in _flatten(xt.call):
                yield number, call


def counted(calls: Iterator[tuple[int, dict[str, Any]]], modules: set[str]) -> Counter[str]:
    """Calls of ``modules`` with their arguments, counted."""
    counts: Counter[str] = Counter()
    for _, call in calls:
        if call["call_module"] in modules:
            counts[json.dumps(call, sort_keys=True, default=_hex)] += 1
    return counts


def transfers_to(handle: DevnetChain, dest_hex: str, first: int = 1) -> list[int]:
    """Amounts of every Balances transfer to ``dest_hex`` in blocks from ``first``."""
    out = []
    for _, call in calls_in_blocks(handle, first):
        if call["call_module"] != "Balances" or not str(call["call_function"]).startswith(
            "transfer"
        ):
            continue
        dest = call["args"].get("dest")
        target = dest.get("Id") if isinstance(dest, dict) else dest
        if _hex(target) == dest_hex:
            out.append(int(call["args"]["value"]))
    return out


def wait_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s waiting for {what}")
        time.sleep(0.05)


def start_apply(
    world: World, *, wait: float = 40, crash_at: str | None = None
) -> subprocess.Popen[str]:
    env = {ENV: crash_at} if crash_at else {}
    return subprocess.Popen(
        world.command("apply", str(world.inventory), "--auto-approve", "--wait", str(wait)),
        env=world.env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def start_run(directory: Path) -> subprocess.Popen[str]:
    """``poolkeeper run DIRECTORY`` as the operator starts it: the master secret from the
    environment, output (stdout and stderr together) for ``Lines`` to read."""
    return subprocess.Popen(
        [sys.executable, "-m", "poolkeeper", "run", str(directory)],
        env={
            "POOLKEEPER_MNEMONIC": PHRASE,
            "PYTHONPATH": str(REPO / "src"),
            "NO_COLOR": "1",
            "PATH": "/usr/bin:/bin",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def pool_holds(handle: DevnetChain, module: str) -> bool:
    """Whether the node's pool holds an extrinsic with a call of ``module`` (over RPC)."""
    for raw in rpc(handle.url, "author_pendingExtrinsics"):
        try:
            xt = handle.chain.decode_extrinsic(bytes.fromhex(raw[2:]), check_signature=False)
        except Exception:
            continue
        if any(c["call_module"] == module for c in _flatten(xt.call)):
            return True
    return False


class Lines:
    """Collects a subprocess's output lines as they come (a reader thread)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self._lines: list[str] = []
        self._lock = threading.Lock()
        assert process.stdout is not None
        stream = process.stdout

        def read() -> None:
            for line in stream:
                with self._lock:
                    self._lines.append(line)

        self._thread = threading.Thread(target=read, daemon=True)
        self._thread.start()

    def text(self) -> str:
        self._thread.join(timeout=5)
        with self._lock:
            return "".join(self._lines)

    def has(self, fragment: str) -> bool:
        with self._lock:
            return any(fragment in line for line in self._lines)

    def count(self, fragment: str) -> int:
        """Lines so far holding ``fragment``."""
        with self._lock:
            return sum(fragment in line for line in self._lines)
