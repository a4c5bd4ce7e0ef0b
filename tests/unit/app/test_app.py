"""``poolkeeper.app``: the public way a front end builds its reconciler from an inventory.

Its faults are ``PoolkeeperError``s a front end can word (the TUI prints them, the CLI
exits 1); it never exits the process itself."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from poolkeeper.app import inventory_digest, make_reconciler, state_dir_of
from poolkeeper.apply.statedir import StateDirLock
from poolkeeper.errors import SecretError, StateDirBusy
from poolkeeper.inventory import load_inventory
from tests.unit.apply.test_statedir import hold_in_child

ROOT = Path(__file__).resolve().parents[3]
DEV_PHRASE = "bottom drive obey lake curtain smoke basket hold race lonely fit walk"


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    target = tmp_path / "inventory"
    shutil.copytree(ROOT / "inventory", target)
    return target


def test_state_dir_is_relative_to_the_inventorys_parent(inventory: Path) -> None:
    desired = load_inventory(inventory)
    assert state_dir_of(desired, inventory) == inventory.parent / desired.settings.state_dir
    absolute = desired.model_copy(
        update={"settings": desired.settings.model_copy(update={"state_dir": "/srv/pk"})}
    )
    assert state_dir_of(absolute, inventory) == Path("/srv/pk")


def test_inventory_digest_follows_yaml_bytes_and_skips_hidden_files(inventory: Path) -> None:
    before = inventory_digest(inventory)
    (inventory / ".draft.yaml").write_text("workers: []\n")
    (inventory / "notes.txt").write_text("not inventory\n")
    assert inventory_digest(inventory) == before
    settings = inventory / "settings.yaml"
    settings.write_text(settings.read_text() + "\n")
    assert inventory_digest(inventory) != before


def test_a_signer_without_the_master_secret_is_a_secret_error(
    inventory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POOLKEEPER_MNEMONIC", raising=False)
    desired = load_inventory(inventory)
    assert any(a.derivation for a in desired.accounts)
    with pytest.raises(SecretError, match="POOLKEEPER_MNEMONIC"):
        make_reconciler(desired, inventory, need_keys=True, progress=None)
    # An observer needs no key: it gets a reconciler that says the secret is missing.
    rec = make_reconciler(desired, inventory, need_keys=False, progress=None)
    try:
        assert rec.secret_loaded is False
    finally:
        asyncio.run(rec.close())


def test_a_writer_takes_the_state_dir_lock_or_is_refused(
    inventory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POOLKEEPER_MNEMONIC", DEV_PHRASE)
    desired = load_inventory(inventory)
    state = state_dir_of(desired, inventory)
    child = hold_in_child(state)
    try:
        with pytest.raises(StateDirBusy):
            make_reconciler(desired, inventory, need_keys=True, progress=None, lock="apply")
    finally:
        child.kill()
        child.wait()
    notices: list[str] = []
    rec = make_reconciler(
        desired, inventory, need_keys=True, progress=None, lock="apply", notice=notices.append
    )
    try:
        assert rec.secret_loaded is True
        holder = StateDirLock.holder_of(state)
        assert holder is not None and holder.command == "apply"
    finally:
        asyncio.run(rec.close())
