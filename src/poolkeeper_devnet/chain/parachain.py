"""A relay chain and the parachain it validates: two chains, two websocket endpoints.

Khala and Phala are parachains: a pRuntime follows the relay chain's GRANDPA-finalized
headers and learns which parachain headers are final from the relay chain's
``Paras.Heads(para_id)`` storage, proven against a relay header's state root
(PROTOCOL.md §2.3–2.4). To let the product exercise that path, this module couples two
``Chain`` engines in one event loop and serves each on its own port, as a collator and a
relay node would be reached:

- each tick the parachain builds a block on the current relay head (its
  ``ParachainSystem.ValidationData`` names that ``relay_parent_number``), then the relay
  chain produces a block storing ``Paras.Heads(para_id)`` = that parachain header;
- the relay chain is GRANDPA-finalized with the devnet's justifications; a parachain
  block is final when the relay block that included it is (the parachain's own finality
  only follows);
- the relay chain starts ``relay_lead`` blocks ahead, so parachain block 1's relay
  parent is ``relay_lead`` and pherry's ``start_header`` (relay parent − 1) is a real
  relay block.

Only the parachain runs the Phala pallets and takes transactions that matter; the relay
chain runs the engine's generic pallets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from poolkeeper_devnet.chain import _genesis
from poolkeeper_devnet.chain._background import BackgroundLoop
from poolkeeper_devnet.chain._engine import Block, Chain
from poolkeeper_devnet.chain._runtime import Runtime
from poolkeeper_devnet.chain.pallets import phala_pallet_classes
from poolkeeper_devnet.chain.server import DevnetServer, Faults, load_runtime, parse_block_time
from poolkeeper_devnet.codec import (
    encode_bytes,
    storage_prefix,
    twox64,
    u32,
)

RELAY_LEAD = 2
"""Relay blocks produced before the parachain's first block."""
MAX_POV_SIZE = 5 * 1024 * 1024
NEVER = 1 << 40
"""The parachain's own finality lag: it is finalized by its relay chain instead."""


def paras_heads_key(para_id: int) -> bytes:
    """``Paras.Heads(para_id)`` on the relay chain (Twox64Concat u32)."""
    encoded = u32(para_id)
    return storage_prefix("Paras", "Heads") + twox64(encoded) + encoded


VALIDATION_DATA_KEY = storage_prefix("ParachainSystem", "ValidationData")
"""``ParachainSystem.ValidationData`` on the parachain: SCALE ``PersistedValidationData``."""


def persisted_validation_data(
    parent_head: bytes, relay_parent_number: int, relay_parent_storage_root: bytes
) -> bytes:
    """``PersistedValidationData{parent_head HeadData, relay_parent_number u32,
    relay_parent_storage_root H256, max_pov_size u32}``."""
    return (
        encode_bytes(parent_head)
        + u32(relay_parent_number)
        + relay_parent_storage_root
        + u32(MAX_POV_SIZE)
    )


class ParachainNetwork:
    """The coupled pair of chains. ``produce_block`` on the parachain drives both."""

    def __init__(
        self,
        runtime: Runtime,
        runtime_version: Mapping[str, Any],
        config: Mapping[str, Any],
        *,
        finality_lag: int = 2,
        relay_lead: int = RELAY_LEAD,
    ) -> None:
        self.para_id = int(config.get("parachain_id", 2035))
        self.para = Chain(
            runtime,
            runtime_version,
            config,
            pallet_classes=phala_pallet_classes(),
            finality_lag=NEVER,
        )
        self.heads_key = paras_heads_key(self.para_id)
        self.relay = Chain(
            runtime,
            runtime_version,
            {"balances": {}, "parachain_id": self.para_id},
            finality_lag=finality_lag,
            genesis_storage={self.heads_key: self._para_head()},
        )
        self.included: dict[int, int] = {0: 0}
        """Relay block number → the parachain block whose header it stores."""
        self.relay.block_hooks.append(self._relay_changes)
        self.relay.finality_listeners.append(self._on_relay_finalized)
        self.para.block_hooks.append(self._para_changes)
        self.para.block_listeners.append(self._on_para_block)
        for _ in range(relay_lead):
            self.relay.produce_block()

    def _para_head(self) -> bytes:
        return encode_bytes(self.para.head.header.encode())

    def _relay_changes(self, number: int) -> Mapping[bytes, bytes | None]:
        self.included[number] = self.para.head.number
        self.included.pop(number - 8192, None)
        return {self.heads_key: self._para_head()}

    def _para_changes(self, number: int) -> Mapping[bytes, bytes | None]:
        relay_head = self.relay.head
        validation = persisted_validation_data(
            self.para.head.header.encode(), relay_head.number, relay_head.header.state_root
        )
        return {VALIDATION_DATA_KEY: validation}

    def _on_para_block(self, block: Block) -> None:
        self.relay.produce_block()

    def _on_relay_finalized(self, block: Block) -> None:
        para_number = self.included.get(block.number)
        if para_number is not None:
            self.para.finalize_up_to(para_number)


def build_network(
    genesis: str | Path | Mapping[str, Any] | None = None,
    *,
    finality_lag: int | None = None,
    metadata: str | Path | None = None,
    relay_lead: int = RELAY_LEAD,
    runtime_name: str = "khala",
) -> tuple[ParachainNetwork, dict[str, Any]]:
    """The network for a genesis (file, preset or mapping) and its normalized config."""
    config = (
        _genesis.normalize(dict(genesis))
        if isinstance(genesis, Mapping)
        else _genesis.load(genesis)
    )
    runtime, version = load_runtime(metadata, runtime_name)
    lag = int(config.get("finality_lag", 2)) if finality_lag is None else finality_lag
    network = ParachainNetwork(runtime, version, config, finality_lag=lag, relay_lead=relay_lead)
    return network, config


def servers_for(
    network: ParachainNetwork,
    block_time: float | str,
    chain_name: str = "Khala Devnet",
    faults: Faults | None = None,
) -> tuple[DevnetServer, DevnetServer]:
    """``(parachain server, relay-chain server)``; the relay chain produces only when the
    parachain does."""
    para = DevnetServer(network.para, block_time, chain_name=chain_name, faults=faults)
    relay = DevnetServer(network.relay, "manual", chain_name=f"{chain_name} Relay")
    relay.preload_delay = None  # one runtime, already preloaded by the parachain's server
    return para, relay


async def serve_both(
    para: DevnetServer,
    relay: DevnetServer,
    *,
    host: str,
    para_port: int,
    relay_port: int,
    started: Callable[[int, int], None] | None = None,
) -> None:
    """Serve both chains until cancelled; ``started(para_port, relay_port)`` once both listen."""
    ports: dict[str, int] = {}

    def bound(name: str) -> Callable[[int], None]:
        def record(port: int) -> None:
            ports[name] = port
            if len(ports) == 2 and started is not None:
                started(ports["para"], ports["relay"])

        return record

    await asyncio.gather(
        para.run(host, para_port, bound("para")), relay.run(host, relay_port, bound("relay"))
    )


@dataclass
class DevnetParachain:
    """A running relay chain + parachain in a background thread (for tests)."""

    url: str
    """The parachain's websocket URL (the collator)."""
    relay_url: str
    network: ParachainNetwork
    servers: tuple[DevnetServer, DevnetServer]
    _background: BackgroundLoop

    @property
    def chain(self) -> Chain:
        return self.network.para

    @property
    def relay(self) -> Chain:
        return self.network.relay

    @classmethod
    def start(
        cls,
        genesis: str | Path | Mapping[str, Any] | None = None,
        *,
        block_time: float | str | None = None,
        finality_lag: int | None = None,
        relay_lead: int = RELAY_LEAD,
        runtime_name: str = "khala",
    ) -> DevnetParachain:
        """Start both on 127.0.0.1 (free ports) and return once they listen."""
        network, _ = build_network(
            genesis, finality_lag=finality_lag, relay_lead=relay_lead, runtime_name=runtime_name
        )
        network.para.runtime.load_scalecodec()
        servers = servers_for(
            network, parse_block_time(block_time if block_time is not None else "1s")
        )
        background, ports = BackgroundLoop.start(
            "devnet parachain",
            lambda on_started: serve_both(
                *servers, host="127.0.0.1", para_port=0, relay_port=0, started=on_started
            ),
            servers,
        )
        return cls(
            f"ws://127.0.0.1:{ports[0]}", f"ws://127.0.0.1:{ports[1]}", network, servers, background
        )

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the servers' loop (the only thread that may touch the chains)."""
        return self._background.call(fn)

    def new_block(self) -> Block:
        """One parachain block (and the relay block that includes it)."""
        result: Block = self.call(self.servers[0].produce_block)
        return result

    def stop(self) -> None:
        self._background.stop()

    def __enter__(self) -> DevnetParachain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
