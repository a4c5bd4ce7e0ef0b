"""Secret sources: env var, a file only its owner can read, the optional OS keyring."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import pytest

from poolkeeper.errors import SecretError
from poolkeeper.keys import (
    Mnemonic,
    describe_secret_source,
    load_master_secret,
    secret_from_env,
    secret_from_file,
    secret_from_keyring,
)
from poolkeeper.model.desired import SecretSettings

from .conftest import DEV_PHRASE


def _write(path: Path, text: str, mode: int) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_file_with_mode_0600_is_accepted(tmp_path: Path) -> None:
    path = _write(tmp_path / "mnemonic", DEV_PHRASE + "\n", 0o600)
    assert secret_from_file(path) == Mnemonic(DEV_PHRASE)


def test_file_with_mode_0400_is_accepted(tmp_path: Path) -> None:
    path = _write(tmp_path / "mnemonic", DEV_PHRASE, 0o400)
    assert secret_from_file(path) == Mnemonic(DEV_PHRASE)


@pytest.mark.parametrize(
    ("mode", "who"),
    [(0o644, "its group and every user"), (0o640, "its group"), (0o604, "every user")],
)
def test_loose_file_is_refused_naming_path_and_mode(tmp_path: Path, mode: int, who: str) -> None:
    path = _write(tmp_path / "mnemonic", DEV_PHRASE, mode)
    with pytest.raises(SecretError) as info:
        secret_from_file(path)
    message = str(info.value)
    assert str(path) in message
    assert f"mode {mode:04o}" in message
    assert who in message
    assert "chmod 600" in message
    assert "bottom" not in message


def test_directory_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "dir"
    directory.mkdir(mode=0o700)
    with pytest.raises(SecretError, match="not a regular file \\(a directory\\)"):
        secret_from_file(directory)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(SecretError, match="a FIFO"):
        secret_from_file(fifo)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SecretError, match="does not exist"):
        secret_from_file(tmp_path / "nope")


def test_file_with_a_bad_mnemonic_does_not_echo_it(tmp_path: Path) -> None:
    path = _write(tmp_path / "mnemonic", "correct horse battery staple", 0o600)
    with pytest.raises(SecretError) as info:
        secret_from_file(path)
    assert "horse" not in str(info.value)
    assert str(path) in str(info.value)


def test_env_source() -> None:
    assert secret_from_env("PK_TEST", {"PK_TEST": DEV_PHRASE}) == Mnemonic(DEV_PHRASE)
    with pytest.raises(SecretError, match="PK_TEST is not set"):
        secret_from_env("PK_TEST", {})
    with pytest.raises(SecretError, match="PK_TEST") as info:
        secret_from_env("PK_TEST", {"PK_TEST": "not a mnemonic at all"})
    assert "mnemonic at all" not in str(info.value)


def test_keyring_missing_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "keyring", None)  # makes `import keyring` fail
    installing = r"'keyring' is not installed \(pip install 'poolkeeper\[keyring\]'\)"
    with pytest.raises(SecretError, match=installing):
        secret_from_keyring("poolkeeper")


def test_keyring_entry_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    store = {("poolkeeper", "mnemonic"): DEV_PHRASE}
    fake = types.ModuleType("keyring")
    fake.get_password = lambda service, user: store.get((service, user))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "keyring", fake)
    assert secret_from_keyring("poolkeeper") == Mnemonic(DEV_PHRASE)
    with pytest.raises(SecretError, match="has no entry"):
        secret_from_keyring("other")


def test_configured_source_is_resolved(tmp_path: Path) -> None:
    _write(tmp_path / "m.txt", DEV_PHRASE, 0o600)
    from_file = SecretSettings(file="m.txt")
    assert load_master_secret(from_file, base_dir=tmp_path, environ={}) == Mnemonic(DEV_PHRASE)
    assert describe_secret_source(from_file, tmp_path) == f"file {tmp_path / 'm.txt'}"
    from_env = SecretSettings()
    env = {"POOLKEEPER_MNEMONIC": DEV_PHRASE}
    assert load_master_secret(from_env, environ=env) == Mnemonic(DEV_PHRASE)
    with pytest.raises(SecretError, match="both a file and a keyring"):
        load_master_secret(SecretSettings(file="x", keyring="y"))
    with pytest.raises(SecretError, match="no source"):
        load_master_secret(SecretSettings(env=None))
