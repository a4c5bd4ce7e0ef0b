"""The etcd user and password of ``settings.ha.auth``, read and checked before any
connection to etcd, so that a readable password file, a missing one or an unset variable is
refused at start with the setting and the source named, never as a puzzling refusal from
etcd later. The password is a secret like the master mnemonic: read from a 0600 file with
the shared guarded reader (or from an environment variable, as ``settings.secrets.env``),
kept in a ``Secret`` (registered with the log filter) and never put in a message."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from poolkeeper.keys import Secret
from poolkeeper.keys.guarded_file import GuardedFileRefused, read_guarded_file
from poolkeeper.model.desired import HaAuthSettings

_MAX_PASSWORD_BYTES = 4096


class AuthConfigError(ValueError):
    """``settings.ha.auth`` names no usable password (never says what a source holds)."""


@dataclass(frozen=True)
class EtcdAuth:
    """Who this process is to etcd. ``password`` prints as ``Secret(***)``."""

    user: str
    password: Secret
    source: str
    """Where the password came from, in words (for messages): the setting and the file or
    the variable."""
    password_file: Path | None = field(default=None, compare=False)
    """The file to read again when etcd refuses the password (a rotation: the operator
    writes the new password there, then changes it in etcd)."""

    def reread(self) -> EtcdAuth | None:
        """The same user with the password file's current content; None without a file
        or when it cannot be used now (the refusal etcd gave stands then)."""
        if self.password_file is None:
            return None
        try:
            text = _password_file_text(self.password_file, self.source)
            return replace(self, password=Secret(_one_line(text, self.source)))
        except AuthConfigError:
            return None


def load_auth(
    settings: HaAuthSettings | None,
    base_dir: Path,
    where: str,
    environ: Mapping[str, str] | None = None,
) -> EtcdAuth | None:
    """The user and password ``settings`` name (a relative file: from ``base_dir``, the
    inventory directory); ``where`` places the settings in messages (``settings.yaml:1:1``).
    None without ``settings.ha.auth``."""
    if settings is None:
        return None

    def setting(name: str) -> str:
        return f"settings.ha.auth.{name} ({where})" if where else f"settings.ha.auth.{name}"

    if bool(settings.password_file) == bool(settings.password_env):
        raise AuthConfigError(
            f"{setting('password_file')} or {setting('password_env')}: give exactly one "
            "(where etcd user " + repr(settings.user) + "'s password is)"
        )
    path: Path | None = None
    if settings.password_file:
        path = Path(os.path.expanduser(settings.password_file))
        path = path if path.is_absolute() else base_dir / path
        source = f"{setting('password_file')}: {path}"
        text = _password_file_text(path, source)
    else:
        name = str(settings.password_env)
        source = f"{setting('password_env')}: environment variable {name}"
        value = (os.environ if environ is None else environ).get(name)
        if value is None:
            raise AuthConfigError(f"{source} is not set")
        text = value
    return EtcdAuth(
        user=settings.user,
        password=Secret(_one_line(text, source)),
        source=source,
        password_file=path,
    )


def _one_line(text: str, source: str) -> str:
    password = text.removesuffix("\n").removesuffix("\r")
    if not password:
        raise AuthConfigError(f"{source} holds no password")
    if "\n" in password or "\r" in password:
        raise AuthConfigError(f"{source} holds more than one line (a password is one line)")
    return password


def _password_file_text(path: Path, name: str) -> str:
    try:
        raw = read_guarded_file(path, owner_only=True, max_bytes=_MAX_PASSWORD_BYTES)
    except GuardedFileRefused as refused:
        raise AuthConfigError(_refusal(name, path, refused)) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise AuthConfigError(f"{name} is not UTF-8 text") from None


def _refusal(name: str, path: Path, refused: GuardedFileRefused) -> str:
    if (problem := refused.opening_problem(name)) is not None:
        return problem
    if refused.kind == "not_regular":
        return f"{name} is {refused.detail}, not a password file"
    if refused.kind == "too_open":
        return (
            f"{name} has mode {refused.mode:04o}, which lets {refused.detail} read it: a "
            f"password file must be readable by its owner only; refusing to use it "
            f"(run: chmod 600 {path})"
        )
    return f"{name} is {refused.size} bytes: far more than a password (is this the right file?)"
