"""Speed of the devnet chain: start to first block, signed extrinsics per second, and
query_map over 10,000 registered workers in 50 pools.

Targets (issue 3): start to first block <= 2 s; >= 200 signed extrinsics/s validated and
included; query_map of Workers, WorkerBindings and Sessions together <= 2 s.

The 10,000-worker reads are measured three ways on one chain: the raw RPCs with values
left undecoded (the server's share), the product's paged listing
(``SubstrateChain.read_map``: the same RPCs, values decoded by the hand-written decoders),
and substrate-interface's own ``query_map`` (scalecodec decodes every key and value).

Run: .venv/bin/python benchmarks/devnet_chain.py [--only-reads] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from substrateinterface import Keypair, SubstrateInterface  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from poolkeeper.chain import SubstrateChain  # noqa: E402
from poolkeeper_devnet.chain.server import DevnetChain  # noqa: E402

PHA = 10**12


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_to_first_block() -> float:
    """Seconds from spawning ``python -m poolkeeper_devnet.chain`` to seeing block #1."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    started = time.perf_counter()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "poolkeeper_devnet.chain",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                with connect(f"ws://127.0.0.1:{port}") as ws:
                    while True:
                        ws.send(
                            json.dumps({"jsonrpc": "2.0", "id": 1, "method": "chain_getHeader"})
                        )
                        number = int(json.loads(ws.recv())["result"]["number"], 16)
                        if number >= 1:
                            return time.perf_counter() - started
                        time.sleep(0.01)
            except OSError:
                time.sleep(0.02)
    finally:
        process.terminate()
        process.wait(10)


def throughput(total: int = 1000, senders: int = 20) -> tuple[float, float]:
    """(extrinsics/s from first submit to last inclusion, seconds to sign them client-side)."""
    keys = [Keypair.create_from_uri(f"//Bench{i}", ss58_format=30) for i in range(senders)]
    genesis = {"balances": {f"//Bench{i}": "1000000 PHA" for i in range(senders)}}
    with DevnetChain.start(genesis, block_time="1s") as chain:
        substrate = SubstrateInterface(url=chain.url, ss58_format=30)
        dest = Keypair.create_from_uri("//Dest", ss58_format=30).ss58_address
        call = substrate.compose_call(
            "Balances", "transfer_keep_alive", {"dest": dest, "value": PHA}
        )
        signing = time.perf_counter()
        signed = [
            str(substrate.create_signed_extrinsic(call, keys[i % senders], nonce=i // senders).data)
            for i in range(total)
        ]
        signing = time.perf_counter() - signing
        substrate.close()
        with connect(chain.url, max_size=2**26) as ws:
            start = time.perf_counter()
            for index, xt in enumerate(signed):
                ws.send(
                    json.dumps(
                        {
                            "jsonrpc": "2.0",
                            "id": index,
                            "method": "author_submitExtrinsic",
                            "params": [xt],
                        }
                    )
                )
            for _ in signed:
                answer = json.loads(ws.recv())
                if "error" in answer:
                    raise RuntimeError(answer["error"])
            while chain.call(lambda: len(chain.chain.pool)):
                time.sleep(0.01)
            elapsed = time.perf_counter() - start
        included = chain.call(lambda: sum(len(b.extrinsics) for b in chain.chain.blocks.values()))
        assert included == total, included
    return total / elapsed, signing


MAPS = (
    ("PhalaRegistry", "Workers"),
    ("PhalaComputation", "WorkerBindings"),
    ("PhalaComputation", "Sessions"),
)


def workers_genesis(pools: int, per_pool: int) -> dict[str, object]:
    return {
        "balances": {"//Alice": "1000 PHA"},
        "phala": {
            "pools": [
                {"owner": "//Alice", "free_stake": 0, "worker_count": per_pool}
                for _ in range(pools)
            ]
        },
    }


def query_map_workers(chain: DevnetChain) -> tuple[float, float, int]:
    """(substrate-interface query_map seconds, its client CPU seconds, entries)."""
    substrate = SubstrateInterface(url=chain.url, ss58_format=30)
    substrate.init_runtime()
    start, cpu = time.perf_counter(), time.process_time()
    entries = 0
    for module, item in MAPS:
        entries += sum(1 for _ in substrate.query_map(module, item, page_size=1000))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    substrate.close()
    return elapsed, cpu, entries


def product_read_map(chain: DevnetChain) -> tuple[float, float, int, int]:
    """(seconds, client CPU seconds, entries, requests) of ``SubstrateChain.read_map``
    over the three maps (connection and metadata loaded before the timing)."""

    async def run() -> tuple[float, float, int, int]:
        reader = SubstrateChain(chain.url)
        try:
            await reader.read_state([0], ())  # connect and load the metadata
            before = reader.round_trips
            start, cpu = time.perf_counter(), time.process_time()
            entries = 0
            for pallet, item in MAPS:
                entries += len(await reader.read_map(pallet, item, page_size=1000))
            elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
            return elapsed, cpu, entries, reader.round_trips - before
        finally:
            await reader.close()

    return asyncio.run(run())


def raw_query_map(chain: DevnetChain) -> tuple[float, int]:
    """The server's share of those query_maps: the same RPCs, values left undecoded."""
    from poolkeeper_devnet.codec import storage_prefix

    with connect(chain.url, max_size=2**28) as ws:
        ids = iter(range(1, 10**9))

        def rpc(method: str, params: list[object]) -> object:
            ws.send(
                json.dumps({"jsonrpc": "2.0", "id": next(ids), "method": method, "params": params})
            )
            return json.loads(ws.recv())["result"]

        head = rpc("chain_getHead", [])
        start = time.perf_counter()
        entries = 0
        for pallet, item in MAPS:
            prefix = "0x" + storage_prefix(pallet, item).hex()
            last = None
            while True:
                keys = rpc("state_getKeysPaged", [prefix, 1000, last, head])
                assert isinstance(keys, list)
                if not keys:
                    break
                values = rpc("state_queryStorageAt", [keys, head])
                assert isinstance(values, list)
                entries += len(values[0]["changes"])
                last = keys[-1]
        return time.perf_counter() - start, entries


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only-reads", action="store_true", help="skip start and throughput")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of the 10,000-worker reads")
    args = parser.parse_args()
    if not args.only_reads:
        first = start_to_first_block()
        print(f"start to first block (default 1 s block time, new process): {first:.2f} s")
        rate, signing = throughput()
        print(
            f"signed transfers validated and included: {rate:.0f} /s "
            f"(client signing: {signing:.1f} s)"
        )
    started = time.perf_counter()
    with DevnetChain.start(workers_genesis(50, 200), block_time="manual") as chain:
        build = time.perf_counter() - started
        print(f"10,000 workers / 50 pools: chain start with that genesis {build:.1f} s")
        for round_ in range(1, args.rounds + 1):
            raw, raw_entries = raw_query_map(chain)
            product, product_cpu, product_entries, requests = product_read_map(chain)
            library, library_cpu, entries = query_map_workers(chain)
            print(
                f"round {round_}: Workers + WorkerBindings + Sessions, pages of 1000: "
                f"raw RPCs {raw:.2f} s ({raw_entries} values, undecoded); "
                f"SubstrateChain.read_map {product:.2f} s (client CPU {product_cpu:.2f} s, "
                f"{product_entries} entries, {requests} requests); "
                f"substrate-interface query_map {library:.2f} s (client CPU "
                f"{library_cpu:.1f} s, {entries} entries)"
            )


if __name__ == "__main__":
    main()
