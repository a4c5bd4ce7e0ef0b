"""``poolkeeper devnet up|down|chain|pruntime``: a local devnet matching an inventory.

This is the devnet distribution's front-end glue: the product's CLI finds it through the
``devnet`` entry point of group ``poolkeeper.frontends`` (as it finds the TUI) and hands
it the rest of the command line. Like the TUI it may import the product's public modules
(it reads the inventory and derives its accounts); the simulators it starts
(``poolkeeper_devnet.chain``, ``poolkeeper_devnet.pruntime``) import nothing of the product.

``up`` derives the inventory's accounts from the master secret, writes a genesis that
funds them, creates the declared pools (owned by the declared owners, with free stake
for every declared worker), grants the operators their StakePoolManager proxies, and
starts the chain simulator and one simulated pRuntime per worker endpoint as
background processes. ``down`` stops exactly those processes. The product then talks
to them over the network only, as it would to a real node and real workers.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlparse

import typer

from poolkeeper.errors import InventoryError, SecretError
from poolkeeper.inventory import load_inventory
from poolkeeper.keys import KeyRing, load_master_secret
from poolkeeper.model.amounts import PLANCKS_PER_PHA
from poolkeeper.model.desired import AccountRole, Desired

devnet_app = typer.Typer(
    name="devnet",
    help="A local devnet (chain + pRuntimes) to try poolkeeper.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # plain help, as the product's commands: no <bool> labels
    pretty_exceptions_show_locals=False,  # locals of a crash may hold secret bytes
)

STATE_FILE = "devnet.json"
STAKE_MARGIN = 2


def _fail(message: str) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(1)


def genesis_for(desired: Desired, addresses: dict[str, str], *, cool_down: int) -> dict[str, Any]:
    """A devnet genesis in which the inventory can converge."""
    balances: dict[str, str] = {"//Alice": "1000000 PHA"}
    for account in desired.accounts:
        address = addresses.get(account.name)
        if address is None:
            continue
        amount = {AccountRole.FUNDING: 100_000, AccountRole.WATCH: 20_000}.get(account.role, 1_000)
        balances[address] = f"{amount} PHA"
    pools_by_pid = {p.pid: p for p in desired.pools if p.pid is not None}
    phala_pools: list[dict[str, Any]] = []
    for pid in range(max(pools_by_pid, default=-1) + 1):
        pool = pools_by_pid.get(pid)
        owner = addresses.get(pool.owner) if pool else None
        stake = 0
        if pool is not None:
            stake = sum(desired.stake_of(w) or 0 for w in desired.workers if w.pool == pool.name)
        phala_pools.append(
            {"owner": owner or "//Alice", "free_stake": stake * STAKE_MARGIN + PLANCKS_PER_PHA}
        )
    proxies = [
        {
            "real": addresses[p.owner],
            "delegate": addresses[p.signer],
            "proxy_type": "StakePoolManager",
        }
        for p in desired.pools
        if p.proxied and p.owner in addresses and p.signer in addresses
    ]
    return {
        "chain_name": "Khala Devnet",
        "block_time": "1s",
        "finality_lag": 2,
        "cool_down_period": cool_down,
        "balances": balances,
        "proxies": proxies,
        "phala": {
            "pools": phala_pools,
            "benchmark_duration": 3,
            "none_attestation_enabled": True,
            "heartbeat_interval": 5,
            "unresponsive_after": 30,
        },
    }


def _addresses(desired: Desired, directory: Path) -> dict[str, str]:
    try:
        mnemonic = load_master_secret(desired.settings.secrets, base_dir=directory)
    except SecretError as error:
        if any(a.derivation for a in desired.accounts):
            raise _fail(f"error: {error}") from None
        mnemonic = None  # every account is declared by address (e.g. imported from PRB)
    ring = KeyRing(desired, mnemonic)
    out: dict[str, str] = {}
    for account in desired.accounts:
        try:
            out[account.name] = ring.address(account.name)
        except SecretError:
            continue
    return out


def _port_of(url: str) -> int:
    parsed = urlparse(url)
    if parsed.hostname not in ("127.0.0.1", "localhost") or parsed.port is None:
        raise _fail(f"error: devnet serves only loopback endpoints with a port, not {url}")
    return parsed.port


def _spawn(args: list[str], log: Path) -> int:
    out = log.open("ab")
    os.fchmod(out.fileno(), 0o600)  # a log that existed before the umask keeps no wider mode
    process = subprocess.Popen(
        [sys.executable, *args],
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    return process.pid


def _wait_ready(
    check: Any, what: str, seconds: float, children: dict[int, Path] | None = None
) -> None:
    """Poll `check` until it holds; fail at once, with the log's last lines, if a child died."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        for pid, log in (children or {}).items():
            if not _alive(pid):
                raise _fail(
                    f"error: {what}: process {pid} exited during start-up; last lines of {log}:\n"
                    + _tail(log)
                )
        time.sleep(0.2)
    raise _fail(f"error: {what} did not become ready in {seconds:.0f}s (see the logs)")


def _tail(log: Path, lines: int = 12) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        return f"  (log unreadable: {error.strerror})"
    return "\n".join("  " + line for line in text.splitlines()[-lines:])


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@devnet_app.command("up")
def up(
    inventory: Annotated[Path, typer.Argument(help="Inventory the devnet should match.")] = Path(
        "inventory"
    ),
    *,
    state_dir: Annotated[Path, typer.Option("--state-dir")] = Path(".poolkeeper/devnet"),
    cool_down: Annotated[int, typer.Option("--cool-down", help="CoolDownPeriod, seconds.")] = 30,
    ready_seconds: Annotated[
        float, typer.Option("--ready-timeout", help="How long to wait for the simulators.")
    ] = 120.0,
    parachain: Annotated[
        bool | None,
        typer.Option(
            "--parachain/--solo",
            help="Run a parachain and its relay chain (default: when the inventory names "
            "chain.relaychain_endpoints).",
        ),
    ] = None,
    runtime: Annotated[
        str,
        typer.Option(
            "--runtime",
            help="Whose pallet indices and runtime version the chain serves: khala or phala.",
        ),
    ] = "khala",
) -> None:
    """Start a chain simulator and the inventory's pRuntimes in the background."""
    if runtime not in ("khala", "phala"):
        raise _fail(f"error: --runtime must be khala or phala, not {runtime!r}")
    try:
        desired = load_inventory(inventory)
    except InventoryError as error:
        raise _fail("\n".join(error.problems)) from None
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    state_file = state_dir / STATE_FILE
    if state_file.exists():
        raise _fail(f"error: a devnet is already recorded in {state_file}: run `devnet down` first")
    chain_port = _port_of(desired.settings.chain.endpoints[0].replace("ws://", "http://"))
    relay_endpoints = desired.settings.chain.relaychain_endpoints
    if parachain is None:
        parachain = bool(relay_endpoints)
    if parachain and not relay_endpoints:
        raise _fail(
            "error: --parachain needs settings.chain.relaychain_endpoints in the inventory "
            "(the relay chain's websocket URL)"
        )
    relay_port = _port_of(relay_endpoints[0].replace("ws://", "http://")) if parachain else None
    genesis = genesis_for(desired, _addresses(desired, inventory), cool_down=cool_down)
    genesis_file = state_dir / "genesis.json"
    genesis_file.write_text(json.dumps(genesis, indent=2), encoding="utf-8")
    ports = sorted({_port_of(w.endpoint) for w in desired.workers})
    pids: list[int] = []
    chain_log = state_dir / "chain.log"
    chain_pid = _spawn(
        [
            "-m",
            "poolkeeper_devnet.chain",
            "--port",
            str(chain_port),
            "--genesis",
            str(genesis_file),
            *(["--relay-port", str(relay_port)] if relay_port is not None else []),
            "--runtime",
            runtime,
        ],
        chain_log,
    )
    pids.append(chain_pid)
    # One simulator process per contiguous run of ports.
    runs: list[tuple[int, int]] = []
    for port in ports:
        if runs and port == runs[-1][0] + runs[-1][1]:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((port, 1))
    simulators: dict[int, Path] = {}
    for base, count in runs:
        log = state_dir / f"pruntime-{base}.log"
        pid = _spawn(
            [
                "-m",
                "poolkeeper_devnet.pruntime",
                "--workers",
                str(count),
                "--base-port",
                str(base),
                "--seed",
                f"devnet-{base}",
            ],
            log,
        )
        pids.append(pid)
        simulators[pid] = log
    state_file.write_text(json.dumps({"pids": pids, "chain_port": chain_port}), encoding="utf-8")
    try:
        _wait_ready(
            lambda: _listening(chain_port) and (relay_port is None or _listening(relay_port)),
            "the chain simulator",
            ready_seconds,
            {chain_pid: chain_log},
        )
        _wait_ready(
            lambda: all(_listening(p) for p in ports),
            "the pRuntime simulators",
            ready_seconds,
            simulators,
        )
        for pid, log in {chain_pid: chain_log, **simulators}.items():
            if not _alive(pid):
                raise _fail(
                    f"error: process {pid} of the devnet exited during start-up; "
                    f"last lines of {log}:\n{_tail(log)}"
                )
    except typer.Exit:
        _stop(pids)
        state_file.unlink(missing_ok=True)
        raise
    relay_note = f" (parachain; relay chain ws://127.0.0.1:{relay_port})" if relay_port else ""
    typer.echo(
        f"devnet up: chain ws://127.0.0.1:{chain_port}{relay_note}, {len(ports)} pRuntime(s) "
        f"on ports {ports[0]}..{ports[-1]}; state in {state_dir}"
    )


@devnet_app.command("down")
def down(
    state_dir: Annotated[Path, typer.Option("--state-dir")] = Path(".poolkeeper/devnet"),
) -> None:
    """Stop the devnet processes started by `devnet up`."""
    state_file = state_dir / STATE_FILE
    if not state_file.exists():
        typer.echo("devnet down: nothing recorded; nothing to stop")
        return
    pids = json.loads(state_file.read_text(encoding="utf-8"))["pids"]
    _stop(pids)
    state_file.unlink()
    typer.echo(f"devnet down: stopped {len(pids)} process(es)")


def _stop(pids: list[int]) -> None:
    """SIGTERM each process group, then SIGKILL what is still alive after 10 s."""
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + 10
    for pid in pids:
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return waited == 0


@devnet_app.command(
    "chain",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def chain(ctx: typer.Context) -> None:
    """Run the chain simulator in the foreground (options: --port, --genesis FILE|dev|demo,
    --block-time, --finality-lag, fault knobs; see docs/devnet.md)."""
    from poolkeeper_devnet.chain.__main__ import main as chain_main

    raise typer.Exit(chain_main(list(ctx.args)))


@devnet_app.command(
    "pruntime",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def pruntime(ctx: typer.Context) -> None:
    """Run simulated pRuntimes in the foreground (options: --workers N, --base-port P or
    --port P, --seed, --score; see docs/devnet.md)."""
    from poolkeeper_devnet.pruntime.__main__ import main as pruntime_main

    pruntime_main(list(ctx.args))


def run_devnet(argv: Sequence[str]) -> int:
    """The ``devnet`` front end: run ``poolkeeper devnet <argv>`` and return its exit code."""
    try:
        devnet_app(args=list(argv), prog_name="poolkeeper devnet")
    except SystemExit as done:
        code = done.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0
