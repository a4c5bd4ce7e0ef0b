"""Genesis files: dev URIs, amounts, presets."""

from __future__ import annotations

from pathlib import Path

import pytest
from substrateinterface import Keypair

from poolkeeper_devnet.chain import _genesis


@pytest.mark.parametrize(
    "uri", ["//Alice", "//Bob", "//Alice//stash", "//Operator", "//7", "//" + "x" * 40]
)
def test_dev_uris_derive_like_substrate(uri: str) -> None:
    assert _genesis.dev_public_key(uri) == Keypair.create_from_uri(uri).public_key


def test_amounts_and_accounts(tmp_path: Path) -> None:
    path = tmp_path / "genesis.yaml"
    alice = Keypair.create_from_uri("//Alice", ss58_format=30)
    path.write_text(
        "preset: dev\n"
        "balances:\n"
        f"  {alice.ss58_address}: 12.5 PHA\n"
        "  '0x" + "11" * 32 + "': 7\n"
        "proxies:\n"
        "  - {real: //Bob, delegate: //Charlie, proxy_type: StakePoolManager}\n"
        "cool_down_period: 60\n"
    )
    config = _genesis.load(path)
    assert config["balances"]["0x" + alice.public_key.hex()] == 12_500_000_000_000
    assert config["balances"]["0x" + "11" * 32] == 7
    assert config["proxies"][0]["proxy_type"] == "StakePoolManager"
    assert config["pallets"]["PhalaComputation"]["cool_down_period"] == 60
    assert config["block_time"] == "1s"


def test_bad_genesis_says_why(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("balances:\n  nobody: 5\n")
    with pytest.raises(_genesis.GenesisError, match="not an account: nobody"):
        _genesis.load(path)
    with pytest.raises(_genesis.GenesisError, match="cannot read"):
        _genesis.load(tmp_path / "missing.yaml")


def test_a_mapping_may_start_from_a_preset() -> None:
    config = _genesis.normalize({"preset": "dev", "block_time": "manual"})
    assert config["block_time"] == "manual"
    assert len(config["balances"]) == len(_genesis.normalize(_genesis.PRESETS["dev"])["balances"])
    with pytest.raises(_genesis.GenesisError, match="unknown preset"):
        _genesis.normalize({"preset": "nope"})
