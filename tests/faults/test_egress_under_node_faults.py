"""Relay egress under node faults: no message the chain has, or the pool holds, is sent again.

Six simulated pRuntimes compute (a heartbeat challenge every 5 blocks, so each answers
with an egress message); ``poolkeeper run`` (a subprocess) carries their egress. While
it runs the node drops every connection, restarts losing its pool (twice), and stalls
(no blocks for 2.5 s). Judged on the chain's blocks (over RPC): every included
``PhalaMq.sync_offchain_message`` (sender, sequence) is there once, and no extrinsic's
events carry ``PhalaMq.BadSequence`` (a message sent again wastes the fee and fails so).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from substrateinterface import SubstrateInterface

from poolkeeper.chain._events import dispatch_error_text
from tests.faults._faults import Lines, best_number, calls_in_blocks, rpc, wait_for
from tests.functional.apply._world import World

WORKERS = 6


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = World(tmp_path_factory.mktemp("egress"), WORKERS, block_time=0.3, cool_down=3)
    try:
        w.apply(wait=90)
        yield w
    finally:
        w.close()


def bad_sequences(url: str, blocks: set[int]) -> int:
    """Failures named ``PhalaMq.BadSequence`` (batch items or whole extrinsics) in ``blocks``;
    events decoded by substrate-interface, module errors named from the metadata."""
    substrate = SubstrateInterface(url=url)
    try:
        found = 0
        for number in sorted(blocks):
            for event in substrate.get_events(substrate.get_block_hash(number)):
                value = event.value
                name = (value["module_id"], value["event_id"])
                attrs = value.get("attributes") or {}
                if name == ("Utility", "ItemFailed"):
                    error = attrs["error"]
                elif name == ("System", "ExtrinsicFailed"):
                    error = attrs["dispatch_error"]
                else:
                    continue
                if dispatch_error_text(substrate, error) == "PhalaMq.BadSequence":
                    found += 1
        return found
    finally:
        substrate.close()


@pytest.mark.slow
def test_egress_is_never_sent_again_under_drops_restarts_and_stalls(world: World) -> None:
    url = world.chain.url
    start = best_number(url)
    loop = world_run(world)
    lines = Lines(loop)
    try:
        wait_for(lambda: lines.has("action(s) planned"), 60, "a first pass of run")
        faults = [
            ("devnet_dropConnections", []),
            ("devnet_restart", [True]),
            ("devnet_dropConnections", []),
            ("devnet_pauseBlocks", []),
            ("devnet_resumeBlocks", []),
            ("devnet_restart", [True]),
            ("devnet_dropConnections", []),
        ]
        for method, params in faults:
            time.sleep(2.5)
            rpc(url, method, params)
        # Egress is checked every few blocks at the tip: on a busy machine the fault window
        # alone may carry fewer than the 20 messages needed to judge, so let it carry more.
        wait_for(lambda: len(egress_on_chain(world, start)[0]) >= 20, 120, "20 egress messages")
    finally:
        loop.send_signal(signal.SIGINT)
        loop.wait(60)
    out = lines.text()
    assert "Traceback" not in out, out[-3000:]
    messages, blocks = egress_on_chain(world, start)
    assert len(messages) >= 20, "too little egress to judge"  # the faults hit real traffic
    twice = [k for k, n in messages.items() if n > 1]
    bad = bad_sequences(url, blocks)
    figures = f"{len(messages)} messages, {len(twice)} sent twice, {bad} BadSequence"
    assert not twice and bad == 0, figures


def egress_on_chain(world: World, start: int) -> tuple[Counter[tuple[str, int]], set[int]]:
    """Every included ``PhalaMq.sync_offchain_message`` since ``start``, counted by (sender,
    sequence), and the blocks holding them."""
    messages: Counter[tuple[str, int]] = Counter()
    blocks: set[int] = set()
    for number, call in calls_in_blocks(world.chain, start):
        if (call["call_module"], call["call_function"]) == ("PhalaMq", "sync_offchain_message"):
            signed = call["args"]["signed_message"]
            sender = json.dumps(signed["message"]["sender"], sort_keys=True, default=str)
            messages[(sender, int(signed["sequence"]))] += 1
            blocks.add(number)
    return messages, blocks


def world_run(world: World) -> subprocess.Popen[str]:
    return subprocess.Popen(
        world.command("run", str(world.inventory)),
        env=world.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
