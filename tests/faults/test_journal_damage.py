"""A damaged, truncated, emptied, foreign or missing journal stops every writing command.

A real journal is made by one ``apply`` against the devnet; each variant then damages a
copy of that state dir and runs the CLI as a subprocess. Each must exit 1 with a message
naming the journal file and the way out (restore it, or ``journal reset``), and no
Python traceback. ``journal reset --yes`` then moves the damaged file aside (kept, not
deleted) and the next ``apply`` works again.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.functional.apply._world import World

pytestmark = pytest.mark.slow

WORKERS = 2


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = World(tmp_path_factory.mktemp("damage"), WORKERS, block_time=0.3, cool_down=3)
    try:
        w.apply(wait=60)
        shutil.copytree(w.state_dir, w.root / "pristine")
        yield w
    finally:
        w.close()


def restore(world: World) -> Path:
    shutil.rmtree(world.state_dir, ignore_errors=True)
    shutil.copytree(world.root / "pristine", world.state_dir)
    return world.state_dir / "journal.sqlite"


def truncate(size: int | None) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        with path.open("r+b") as file:
            file.truncate(path.stat().st_size // 2 if size is None else size)

    return damage


def overwrite_start(data: bytes) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        with path.open("r+b") as file:
            file.write(data)

    return damage


def sql(statement: str) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        db = sqlite3.connect(path)
        db.execute(statement)
        db.commit()
        db.close()

    return damage


def scramble_second_page(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[4096:8192] = os.urandom(4096)
    path.write_bytes(bytes(data))


def into_directory(path: Path) -> None:
    path.unlink()
    path.mkdir()
    (path / "x").write_text("x")


def garbage_wal(path: Path) -> None:
    path.with_name(path.name + "-wal").write_bytes(os.urandom(8192))


def wal_with_a_bad_checksum(path: Path) -> None:
    """A WAL header with SQLite's magic and format version, but a wrong checksum."""
    header = bytes.fromhex("377f0682002de218") + os.urandom(24)
    path.with_name(path.name + "-wal").write_bytes(header + os.urandom(8192))


DAMAGE: dict[str, tuple[Callable[[Path], object], str]] = {
    "truncated-10": (truncate(10), "is truncated"),
    "truncated-50": (truncate(50), "is truncated"),
    "truncated-4096": (truncate(4096), "is truncated"),
    "truncated-half": (truncate(None), "is truncated"),
    "emptied": (truncate(0), "is empty"),
    "zeroed-header": (overwrite_start(bytes(100)), "is not an SQLite database"),
    "random-bytes": (lambda p: p.write_bytes(os.urandom(16384)), "is not an SQLite database"),
    "text-file": (lambda p: p.write_text("journal\n" * 500), "is not an SQLite database"),
    "page-scrambled": (
        scramble_second_page,
        "(fails SQLite's integrity check|cannot be read by SQLite)",
    ),
    "table-dropped": (sql("DROP TABLE top_ups"), r"lacks the table\(s\) top_ups"),
    "meta-rows-deleted": (sql("DELETE FROM meta"), r"has lost its meta row\(s\)"),
    "schema-newer": (
        sql("UPDATE meta SET value = '2' WHERE key = 'schema_version'"),
        "has schema version 2",
    ),
    "directory": (into_directory, "is a directory"),
    "wal-garbage": (garbage_wal, "has a damaged WAL file"),
    "wal-bad-checksum": (wal_with_a_bad_checksum, r"has a damaged WAL file .* checksum"),
    "missing-with-marker": (lambda p: p.unlink(), "is missing"),
}


def cli(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    return world.cli(*args)


@pytest.mark.parametrize("variant", sorted(DAMAGE))
def test_damaged_journal_stops_apply_with_a_clear_message(world: World, variant: str) -> None:
    path = restore(world)
    damage, problem = DAMAGE[variant]
    damage(path)
    done = cli(world, "apply", str(world.inventory), "--auto-approve", "--wait", "30")
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output
    assert re.search(f"journal {re.escape(str(path))} {problem}", done.stderr), done.stderr
    assert "restore" in done.stderr
    assert "poolkeeper journal reset" in done.stderr


def test_every_writing_command_stops_on_a_damaged_journal(world: World) -> None:
    path = restore(world)
    truncate(None)(path)
    for args in (("run", str(world.inventory), "--once"), ("relay", str(world.inventory))):
        done = cli(world, *args)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stdout + done.stderr
        assert f"journal {path} is truncated" in done.stderr, done.stderr


def test_journal_reset_moves_the_damage_aside_and_apply_works_again(world: World) -> None:
    path = restore(world)
    truncate(None)(path)
    damaged = path.read_bytes()
    refused = cli(world, "journal", "reset", str(world.inventory))  # stdin is not a terminal
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "pass --yes" in refused.stderr
    assert path.read_bytes() == damaged
    done = cli(world, "journal", "reset", str(world.inventory), "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    for lost in ("unsettled extrinsics", "top-up history", "created pools"):
        assert lost in done.stdout
    [aside] = [p for p in world.state_dir.iterdir() if p.name.startswith("journal.sqlite.damaged-")]
    assert aside.read_bytes() == damaged
    assert "Traceback" not in done.stdout + done.stderr
    world.apply(wait=60)
