"""``poolkeeper history`` after a real ``apply`` on the devnet: every extrinsic it lists is
in the chain block it names (number and hash), with the fee the chain charged."""

from __future__ import annotations

import json
import stat
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from poolkeeper_devnet.chain._engine import blake2_256
from tests.functional.apply._world import World


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = World(tmp_path_factory.mktemp("history"), 4, block_time=0.3, cool_down=3)
    try:
        yield w
    finally:
        w.close()


def history(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        world.command("history", str(world.inventory), *args),
        env=world.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_history_lists_the_applied_extrinsics_as_the_chain_has_them(world: World) -> None:
    world.apply()
    done = history(world, "--json")
    assert done.returncode == 0, done.stderr
    extrinsics: list[dict[str, Any]] = json.loads(done.stdout)["extrinsics"]
    pool_calls = [
        c["call"]
        for e in extrinsics
        for c in e["calls"]
        if (c["call"] or "").startswith("PhalaStakePoolv2.")
    ]
    assert pool_calls.count("PhalaStakePoolv2.start_computing") == 4, pool_calls
    assert pool_calls.count("PhalaStakePoolv2.add_worker") == 4, pool_calls

    def in_chain() -> dict[str, tuple[int, str]]:
        chain = world.chain.chain
        return {
            "0x" + blake2_256(raw).hex(): (number, "0x" + chain.blocks[number].hash.hex())
            for number in sorted(chain.blocks)
            for raw in chain.blocks[number].extrinsics
        }

    found = world.read(in_chain)
    for e in extrinsics:
        assert e["status"] in ("in_block", "finalized"), e
        assert found[e["hash"]] == (e["block"]["number"], e["block"]["hash"]), e
        assert e["fee"]["plancks"] > 0 and e["fee"]["estimated"] is False, e
        assert e["signer"]["address"] and e["signer"]["name"], e
    path = world.state_dir / "audit.jsonl"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    text = history(world, "--worker", "w01")
    assert text.returncode == 0, text.stderr
    assert "start_computing:worker/w01  ok" in text.stdout, text.stdout
    assert "PhalaRegistry.register_worker_v2  register_worker:" in text.stdout, text.stdout
    assert "worker/w02" not in text.stdout
    assert history(world, "--since", "1s", "--json").returncode == 0
    future = json.loads(history(world, "--since", "2099-01-01T00:00:00Z", "--json").stdout)
    assert future["extrinsics"] == []

    with path.open("a") as handle:
        handle.write('{"ts": "2026-')
    lines = path.read_text().count("\n") + 1
    torn = history(world)
    assert torn.returncode == 0
    assert f"{path}:{lines}: damaged line ignored" in torn.stderr
