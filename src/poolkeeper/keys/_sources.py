"""Where the master mnemonic comes from: an environment variable, a 0600 file, the OS keyring.

The inventory names a source (``settings.secrets``), never a secret. A file that other
users could read is refused before its content is read, the way ssh refuses a
private key with loose permissions; error messages name the source, the path and
the mode, never what the source holds.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from pathlib import Path

from poolkeeper.errors import SecretError
from poolkeeper.keys._redact import register_secret
from poolkeeper.keys._secret import Mnemonic, Secret
from poolkeeper.keys.guarded_file import GuardedFileRefused, read_guarded_file
from poolkeeper.model.desired import KeySource, RelayKeySource, SecretSettings

KEYRING_USERNAME = "mnemonic"
"""The keyring entry poolkeeper reads is (service from settings, this user name)."""

_MAX_SECRET_FILE_BYTES = 4096


def _mnemonic_from(text: str, source: str) -> Mnemonic:
    register_secret(text)
    try:
        return Mnemonic(text)
    except SecretError as exc:
        raise SecretError(f"{source}: {exc}") from None


def secret_from_env(name: str, environ: Mapping[str, str] | None = None) -> Mnemonic:
    """The mnemonic in environment variable ``name``."""
    env = os.environ if environ is None else environ
    value = env.get(name)
    if value is None or not value.strip():
        raise SecretError(
            f"environment variable {name} is not set (it should hold the master mnemonic; "
            f"or configure settings.secrets.file / settings.secrets.keyring)"
        )
    return _mnemonic_from(value, f"environment variable {name}")


def secret_from_file(path: str | os.PathLike[str]) -> Mnemonic:
    """The mnemonic in a regular file readable and writable by its owner only (e.g. 0600)."""
    where = Path(path)
    return _mnemonic_from(_secret_file_text(where), f"secret file {where}")


def _secret_file_text(where: Path) -> str:
    try:
        raw = read_guarded_file(where, owner_only=True, max_bytes=_MAX_SECRET_FILE_BYTES)
    except GuardedFileRefused as refused:
        raise SecretError(_secret_file_refusal(where, refused)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretError(f"secret file {where} is not UTF-8 text") from None
    return text


def _secret_file_refusal(where: Path, refused: GuardedFileRefused) -> str:
    name = f"secret file {where}"
    if (problem := refused.opening_problem(name)) is not None:
        return problem
    if refused.kind == "not_regular":
        return (
            f"{name} is not a regular file ({refused.detail}); "
            f"put the mnemonic in a regular file with mode 0600"
        )
    if refused.kind == "too_open":
        return (
            f"{name} has mode {refused.mode:04o}, which lets {refused.detail} access it; "
            f"refusing to use it (run: chmod 600 {where})"
        )
    return f"{name} is {refused.size} bytes; a mnemonic is far smaller (is this the right file?)"


def load_relay_key(
    source: RelayKeySource,
    *,
    base_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Secret:
    """The SURI external relays sign with (any SURI: a mnemonic, a hex seed, ``//Alice``),
    from the 0600 file or the environment variable ``source`` names."""
    if source.file:
        where = _resolve(source.file, base_dir)
        text = _secret_file_text(where).strip()
        origin = f"relay key file {where}"
    elif source.env:
        env = os.environ if environ is None else environ
        text = (env.get(source.env) or "").strip()
        origin = f"environment variable {source.env}"
    else:
        raise SecretError("settings.relay.external_key names no source (env or file)")
    if not text:
        raise SecretError(f"{origin} holds no key for the external relays")
    return Secret(text)


def load_account_key(
    account: str,
    source: KeySource,
    *,
    base_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[Secret, str]:
    """An account's own secret (``key: {env: NAME}`` / ``{file: PATH}``) and, in words,
    where it came from. The file must be a regular file of mode 0600 (as the master
    secret's); errors name the account and the source, never the value."""
    if source.file:
        where = _resolve(source.file, base_dir)
        try:
            text = _secret_file_text(where).strip()
        except SecretError as error:
            raise SecretError(f"account {account!r}: key {error}") from None
        origin = f"account {account!r}: key file {where}"
    elif source.env:
        env = os.environ if environ is None else environ
        text = (env.get(source.env) or "").strip()
        origin = f"account {account!r}: environment variable {source.env}"
    else:
        raise SecretError(f"account {account!r}: key names no source (env or file)")
    if not text:
        raise SecretError(f"{origin} holds no key (it should hold the account's SURI or seed)")
    register_secret(text)
    return Secret(text), origin


def secret_from_keyring(service: str) -> Mnemonic:
    """The mnemonic stored in the OS keyring under (``service``, ``mnemonic``).

    Needs the optional ``keyring`` package; without it the error says how to install it.
    """
    try:
        keyring = importlib.import_module("keyring")
    except ImportError:
        raise SecretError(
            f"settings.secrets.keyring is {service!r} but the Python package 'keyring' is "
            "not installed (pip install 'poolkeeper[keyring]'), "
            "or use settings.secrets.file / env instead"
        ) from None
    try:
        value = keyring.get_password(service, KEYRING_USERNAME)
    except Exception as exc:  # every keyring backend has its own error types
        raise SecretError(
            f"OS keyring entry ({service!r}, {KEYRING_USERNAME!r}) cannot be read: "
            f"{type(exc).__name__}"
        ) from None
    if not isinstance(value, str) or not value.strip():
        raise SecretError(
            f"OS keyring has no entry ({service!r}, {KEYRING_USERNAME!r}); store one with: "
            f"keyring set {service} {KEYRING_USERNAME}"
        )
    return _mnemonic_from(value, f"OS keyring entry ({service!r}, {KEYRING_USERNAME!r})")


def describe_secret_source(settings: SecretSettings, base_dir: Path | None = None) -> str:
    """Where ``load_master_secret`` would look, in words (for messages and docs)."""
    if settings.file:
        return f"file {_resolve(settings.file, base_dir)}"
    if settings.keyring:
        return f"OS keyring service {settings.keyring!r}"
    if settings.env:
        return f"environment variable {settings.env}"
    return "no source"


def _resolve(path: str, base_dir: Path | None) -> Path:
    resolved = Path(os.path.expanduser(path))
    if not resolved.is_absolute() and base_dir is not None:
        resolved = base_dir / resolved
    return resolved


def load_master_secret(
    settings: SecretSettings,
    *,
    base_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Mnemonic:
    """The master mnemonic from the source ``settings`` configure.

    An explicitly configured ``file`` (relative paths are relative to ``base_dir``, the
    inventory directory) or ``keyring`` service is used; otherwise the environment
    variable ``env`` (``POOLKEEPER_MNEMONIC`` by default). Configuring both a file and
    a keyring is ambiguous and refused.
    """
    if settings.file and settings.keyring:
        raise SecretError(
            "settings.secrets names both a file and a keyring service; keep exactly one"
        )
    if settings.file:
        return secret_from_file(_resolve(settings.file, base_dir))
    if settings.keyring:
        return secret_from_keyring(settings.keyring)
    if settings.env:
        return secret_from_env(settings.env, environ)
    raise SecretError(
        "settings.secrets configures no source (set env, file or keyring) for the master mnemonic"
    )
