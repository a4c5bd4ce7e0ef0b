"""The one reader of secret and trust files: what it refuses, and that it never waits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from poolkeeper.keys.guarded_file import GuardedFileRefused, read_guarded_file


def refusal(where: Path, *, owner_only: bool = True, max_bytes: int = 100) -> GuardedFileRefused:
    with pytest.raises(GuardedFileRefused) as caught:
        read_guarded_file(where, owner_only=owner_only, max_bytes=max_bytes)
    assert "s3cret" not in str(caught.value)
    return caught.value


def test_what_it_refuses_and_why(tmp_path: Path) -> None:
    assert refusal(tmp_path / "nope").kind == "missing"
    assert (refusal(tmp_path).kind, refusal(tmp_path).detail) == ("not_regular", "a directory")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert (refusal(fifo).kind, refusal(fifo).detail) == ("not_regular", "a FIFO")  # no hang
    loose = tmp_path / "loose"
    loose.write_text("s3cret")
    loose.chmod(0o640)
    refused = refusal(loose)
    assert (refused.kind, refused.mode, refused.detail) == ("too_open", 0o640, "its group")
    loose.chmod(0o644)
    assert refusal(loose).detail == "its group and every user"
    assert read_guarded_file(loose, owner_only=False, max_bytes=100) == b"s3cret"
    big = tmp_path / "big"
    big.write_bytes(b"x" * 101)
    big.chmod(0o600)
    assert (refusal(big).kind, refusal(big).size) == ("too_large", 101)


def test_an_owner_only_file_is_read_whole(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_bytes(b"k" * 200_000)
    key.chmod(0o600)
    assert read_guarded_file(key, owner_only=True, max_bytes=1 << 20) == b"k" * 200_000
