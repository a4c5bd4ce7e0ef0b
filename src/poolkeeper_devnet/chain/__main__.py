"""``python -m poolkeeper_devnet.chain``: run the devnet chain in the foreground.

With ``--relay-port`` it runs a parachain (on ``--port``) and its relay chain (on
``--relay-port``) instead of a solo chain (``parachain.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys

from poolkeeper_devnet.chain import _genesis
from poolkeeper_devnet.chain._engine import Chain
from poolkeeper_devnet.chain.pallets import phala_pallet_classes
from poolkeeper_devnet.chain.parachain import ParachainNetwork, serve_both, servers_for
from poolkeeper_devnet.chain.server import (
    DevnetServer,
    Faults,
    load_runtime,
    parse_block_time,
    reject_error,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m poolkeeper_devnet.chain")
    parser.add_argument("--port", type=int, default=9944)
    parser.add_argument("--genesis", default=None, help="YAML/JSON file or preset (dev, demo)")
    parser.add_argument("--block-time", default=None, help="e.g. 1s, 500ms, instant, manual")
    parser.add_argument("--finality-lag", type=int, default=None)
    parser.add_argument(
        "--runtime",
        default="khala",
        choices=["khala", "phala"],
        help="whose pallet indices and runtime version to serve (default: khala)",
    )
    parser.add_argument("--metadata", default=None, help="serve this metadata file instead")
    parser.add_argument("--delay-ms", type=int, default=0, help="delay every response")
    parser.add_argument("--reject-next", type=int, default=0, help="reject the next N extrinsics")
    parser.add_argument(
        "--reject-error",
        default="Transaction is outdated",
        help="their error: a 1010 data text, or a JSON object {code, message, data}",
    )
    parser.add_argument(
        "--drop-every", type=float, default=0.0, help="abort every connection each S seconds"
    )
    parser.add_argument("--paused", action="store_true", help="start without producing blocks")
    parser.add_argument(
        "--relay-port",
        type=int,
        default=None,
        help="parachain mode: serve the parachain on --port and its relay chain here",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        config = _genesis.load(args.genesis)
        runtime, version = load_runtime(args.metadata, args.runtime)
    except (_genesis.GenesisError, OSError, RuntimeError) as exc:
        print(f"devnet chain: {exc}", file=sys.stderr)
        return 2
    lag = args.finality_lag if args.finality_lag is not None else int(config.get("finality_lag", 2))
    error = args.reject_error
    if error.lstrip().startswith("{"):
        try:
            error = json.loads(error)
        except ValueError as exc:
            print(f"devnet chain: --reject-error is not JSON: {exc}", file=sys.stderr)
            return 2
    faults = Faults(
        delay_ms=args.delay_ms,
        reject_next=args.reject_next,
        reject_error=reject_error(error),
        paused=args.paused,
        drop_every_s=args.drop_every,
    )
    block_time = parse_block_time(args.block_time or config.get("block_time"))
    name = str(config.get("chain_name", "Khala Devnet"))
    if args.relay_port is not None:
        network = ParachainNetwork(runtime, version, config, finality_lag=lag)
        return _run_parachain(
            args.port,
            args.relay_port,
            network=network,
            block_time=block_time,
            name=name,
            faults=faults,
        )
    chain = Chain(runtime, version, config, pallet_classes=phala_pallet_classes(), finality_lag=lag)
    server = DevnetServer(chain, block_time, name, faults)

    def started(port: int) -> None:
        print(
            f"devnet chain listening on ws://127.0.0.1:{port} (and JSON-RPC over HTTP there)",
            flush=True,
        )

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(server.run("127.0.0.1", args.port, started))
    return 0


def _run_parachain(
    port: int,
    relay_port: int,
    *,
    network: ParachainNetwork,
    block_time: float | str,
    name: str,
    faults: Faults,
) -> int:
    para, relay = servers_for(network, block_time, name, faults)

    def started(para_port: int, relay_bound: int) -> None:
        print(
            f"devnet parachain listening on ws://127.0.0.1:{para_port}, "
            f"relay chain on ws://127.0.0.1:{relay_bound}",
            flush=True,
        )

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            serve_both(
                para,
                relay,
                host="127.0.0.1",
                para_port=port,
                relay_port=relay_port,
                started=started,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
