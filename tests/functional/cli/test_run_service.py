"""`poolkeeper run --log-format json` as a service on the devnet, through faults.

One run, one devnet, the chain reached through a TCP proxy the test controls:
- a node answering JSON-RPC errors to reads during observe: the pass fails, is logged,
  the loop goes on and passes again;
- a hung node (the proxy holds every byte): the pass deadline turns it into an error
  naming where it waited; the loop goes on once the node answers;
- the chain going away and coming back (connections refused, the node restarted with
  its state, its pool emptied): errors, then passes again, without restarting `run`;
- a pRuntime unreachable, then back: its alert is logged by name when it starts and ends;
- SIGTERM: exit 0; every line of the output is JSON; the mnemonic appears nowhere.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests._ports import free_port
from tests.functional.cli.test_run_loop import PHRASE, cli, env, workdir

__all__ = ["workdir"]  # the fixture: a devnet up for a copy of inventory/


class StallingProxy:
    """Forwards TCP connections to ``target``; can hold every byte (``stall``) or go
    away entirely (``down``: listener closed, connections aborted) and come back."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = free_port()
        self.stalled = threading.Event()
        self._flowing = threading.Condition()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.up()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            # close() alone leaves the thread blocked in accept() holding the socket, which
            # then keeps accepting: the node would not be down at all. shutdown() wakes it.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        self._drop_all()

    def stall(self) -> None:
        self.stalled.set()

    def resume(self) -> None:
        """Stop holding bytes; the connections held meanwhile are dropped (their requests
        timed out on the client's side long ago)."""
        self.stalled.clear()
        self._drop_all()
        with self._flowing:
            self._flowing.notify_all()

    def _drop_all(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target), timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                with self._flowing:
                    while self.stalled.is_set():
                        self._flowing.wait(0.2)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)


def chain_rpc(port: int, method: str, params: list[Any] | None = None) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}
    answer = httpx.post(f"http://127.0.0.1:{port}", json=body, timeout=30).json()
    assert "error" not in answer, answer
    return answer["result"]


class JsonLog:
    """The run's output file, read as JSON lines as it grows."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def records(self) -> list[dict[str, Any]]:
        lines = self.path.read_text().splitlines()
        complete = lines if self.path.read_text().endswith("\n") else lines[:-1]
        return [json.loads(line) for line in complete if line.strip()]

    def wait(self, check: Callable[[dict[str, Any]], bool], seconds: float, after: int = 0) -> int:
        """Index of the first record past ``after`` that ``check`` accepts."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for i, record in enumerate(self.records()):
                if i >= after and check(record):
                    return i
            time.sleep(0.5)
        tail = "\n".join(self.path.read_text().splitlines()[-25:])
        raise AssertionError(f"not logged within {seconds}s; last lines:\n{tail}")


def event(name: str) -> Callable[[dict[str, Any]], bool]:
    return lambda r: r.get("event") == name


@pytest.fixture
def proxied(workdir: Path) -> Iterator[tuple[Path, StallingProxy, int, int]]:
    """The devnet of ``workdir``, its chain behind a proxy the inventory now points at;
    short loop interval and pass deadline."""
    settings = workdir / "inventory" / "settings.yaml"
    text = settings.read_text()
    chain_port = int(re.search(r"ws://127\.0\.0\.1:(\d+)", text)[1])  # type: ignore[index]
    proxy = StallingProxy(chain_port)
    text = text.replace(f"ws://127.0.0.1:{chain_port}", f"ws://127.0.0.1:{proxy.port}")
    text = text.replace(
        "    interval_seconds: 2\n",
        "    interval_seconds: 2\n    pass_timeout_seconds: 8\n    backoff_seconds: [1, 2]\n",
    )
    settings.write_text(text)
    worker_text = (workdir / "inventory" / "workers" / "rack-a.yaml").read_text()
    pruntime_port = int(re.search(r"http://127\.0\.0\.1:(\d+)", worker_text)[1])  # type: ignore[index]
    try:
        yield workdir, proxy, chain_port, pruntime_port
    finally:
        proxy.resume()
        proxy.down()


def test_run_survives_node_errors_a_hung_node_and_a_restart_and_logs_json(
    proxied: tuple[Path, StallingProxy, int, int],
) -> None:
    workdir, proxy, chain_port, pruntime_port = proxied
    assert cli("validate", "inventory", cwd=workdir).returncode == 0
    out = workdir / "run.jsonl"
    handle = out.open("w")
    run = subprocess.Popen(
        [sys.executable, "-m", "poolkeeper", "run", "inventory", "--log-format", "json"],
        cwd=workdir,
        env=env(),
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    log = JsonLog(out)
    try:
        at = log.wait(event("pass.done"), 120)

        # 1. JSON-RPC errors on the reads of observe.
        chain_rpc(chain_port, "devnet_failNext", [40, "state_"])
        failed = log.wait(event("pass.error"), 60, after=at)
        assert "injected fault" in log.records()[failed]["message"]
        chain_rpc(chain_port, "devnet_failNext", [0])
        at = log.wait(event("pass.done"), 60, after=failed)

        # 2. A hung node: every byte held by the proxy.
        proxy.stall()
        hung = log.wait(event("pass.timeout"), 60, after=at)
        message = log.records()[hung]["message"]
        assert "deadline of 8s" in message and "waiting in" in message
        assert log.records()[hung]["level"] == "ERROR"
        proxy.resume()
        at = log.wait(event("pass.done"), 90, after=hung)

        # 3. The chain goes away (connections refused) and comes back restarted.
        proxy.down()
        gone = log.wait(lambda r: r.get("event") in ("pass.error", "pass.timeout"), 60, after=at)
        chain_rpc(chain_port, "devnet_restart", [True])
        time.sleep(3)
        proxy.up()
        at = log.wait(event("pass.done"), 90, after=gone)

        # 4. An alert starts and ends, logged by name.
        # Any simulator port takes faults; worker 0's own drops connections once unreachable.
        fault = f"http://127.0.0.1:{pruntime_port + 1}/devnet/fault"
        httpx.post(fault, json={"worker": 0, "fault": "unreachable"}, timeout=10)
        started = log.wait(
            lambda r: r.get("event") == "alert.start" and "unreachable" in r.get("message", ""),
            60,
            after=at,
        )
        name = log.records()[started]["alert"]
        httpx.post(fault, json={"worker": 0, "fault": "clear"}, timeout=10)
        log.wait(lambda r: r.get("event") == "alert.end" and r.get("alert") == name, 60)
    finally:
        run.send_signal(signal.SIGTERM)
        code = run.wait(90)
        handle.close()
    text = out.read_text()
    assert code == 0, text[-3000:]
    records = [json.loads(line) for line in text.splitlines()]  # every line is JSON
    assert records[-1]["event"] == "loop.stopped"
    for record in records:
        assert {"ts", "level", "event", "message"} <= set(record)
    assert PHRASE not in text and " ".join(PHRASE.split()[:3]) not in text
