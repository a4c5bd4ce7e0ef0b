"""``python -m poolkeeper_devnet.pruntime``: serve N simulated pRuntimes until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys

from poolkeeper_devnet.pruntime.server import PRuntimeSimulator


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m poolkeeper_devnet.pruntime",
        description="Serve simulated pRuntimes on 127.0.0.1.",
    )
    parser.add_argument("--workers", type=int, default=1, help="number of pRuntimes")
    parser.add_argument("--base-port", type=int, help="worker i listens on BASE_PORT+i")
    parser.add_argument("--port", type=int, help="shared port serving /w/<i>/prpc/...")
    parser.add_argument("--public-base-port", type=int, help="public port of worker i")
    parser.add_argument("--seed", default="", help="text mixed into every worker's identity")
    parser.add_argument("--score", type=int, default=1000, help="benchmark score per worker")
    parser.add_argument("--ready-file", help="write the worker URLs here (JSON) once listening")
    return parser.parse_args(argv)


async def _main(args: argparse.Namespace) -> None:
    simulator = PRuntimeSimulator(args.workers, seed=args.seed.encode(), score=args.score)
    await simulator.start(
        base_port=args.base_port, prefix_port=args.port, public_base_port=args.public_base_port
    )
    urls = [simulator.url(i) for i in range(args.workers)]
    if args.ready_file:
        with open(args.ready_file, "w", encoding="utf-8") as out:
            json.dump({"workers": urls, "prefix_port": simulator.prefix_port}, out)
    print(f"serving {args.workers} pRuntime(s); worker 0 at {urls[0]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await simulator.stop()


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    asyncio.run(_main(_parse(sys.argv[1:] if argv is None else argv)))


if __name__ == "__main__":
    main()
