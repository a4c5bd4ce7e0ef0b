"""Speed of the devnet chain: start to first block, signed extrinsics per second, and
query_map over 10,000 registered workers in 50 pools.

Targets (issue 3): start to first block <= 2 s; >= 200 signed extrinsics/s validated and
included; query_map of Workers, WorkerBindings and Sessions together <= 2 s.

Run: .venv/bin/python benchmarks/devnet_chain.py
"""

from __future__ import annotations

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

from poolkeeper.devnet.chain.server import DevnetChain  # noqa: E402

PHA = 10**12


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_to_first_block() -> float:
    """Seconds from spawning ``python -m poolkeeper.devnet.chain`` to seeing block #1."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    started = time.perf_counter()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "poolkeeper.devnet.chain",
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


def query_map_workers(pools: int = 50, per_pool: int = 200) -> tuple[float, float, int]:
    """(genesis build seconds, query_map seconds, entries) for pools × per_pool workers."""
    genesis = {
        "balances": {"//Alice": "1000 PHA"},
        "phala": {
            "pools": [
                {"owner": "//Alice", "free_stake": 0, "worker_count": per_pool}
                for _ in range(pools)
            ]
        },
    }
    started = time.perf_counter()
    with DevnetChain.start(genesis, block_time="manual") as chain:
        build = time.perf_counter() - started
        substrate = SubstrateInterface(url=chain.url, ss58_format=30)
        substrate.init_runtime()
        start = time.perf_counter()
        entries = 0
        for module, item in (
            ("PhalaRegistry", "Workers"),
            ("PhalaComputation", "WorkerBindings"),
            ("PhalaComputation", "Sessions"),
        ):
            entries += sum(1 for _ in substrate.query_map(module, item, page_size=1000))
        elapsed = time.perf_counter() - start
        substrate.close()
    return build, elapsed, entries


def raw_query_map(pools: int = 50, per_pool: int = 200) -> tuple[float, int]:
    """The server's share of those query_maps: the same RPCs, values left undecoded."""
    from poolkeeper.devnet.chain._codec import storage_prefix

    genesis = {
        "balances": {"//Alice": "1000 PHA"},
        "phala": {
            "pools": [
                {"owner": "//Alice", "free_stake": 0, "worker_count": per_pool}
                for _ in range(pools)
            ]
        },
    }
    with (
        DevnetChain.start(genesis, block_time="manual") as chain,
        connect(chain.url, max_size=2**28) as ws,
    ):
        ids = iter(range(1, 10**9))

        def rpc(method: str, params: list[object]) -> object:
            ws.send(
                json.dumps({"jsonrpc": "2.0", "id": next(ids), "method": method, "params": params})
            )
            return json.loads(ws.recv())["result"]

        head = rpc("chain_getHead", [])
        start = time.perf_counter()
        entries = 0
        for pallet, item in (
            ("PhalaRegistry", "Workers"),
            ("PhalaComputation", "WorkerBindings"),
            ("PhalaComputation", "Sessions"),
        ):
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
    first = start_to_first_block()
    print(f"start to first block (default 1 s block time, new process): {first:.2f} s")
    rate, signing = throughput()
    print(
        f"signed transfers validated and included: {rate:.0f} /s (client signing: {signing:.1f} s)"
    )
    raw, raw_entries = raw_query_map()
    print(
        f"10,000 workers: state_getKeysPaged + state_queryStorageAt of the three maps "
        f"({raw_entries} values, undecoded): {raw:.2f} s"
    )
    build, elapsed, entries = query_map_workers()
    print(
        f"10,000 workers / 50 pools: genesis {build:.1f} s; query_map of Workers + "
        f"WorkerBindings + Sessions ({entries} entries): {elapsed:.2f} s"
    )


if __name__ == "__main__":
    main()
