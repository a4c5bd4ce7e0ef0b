"""The files of ``settings.ha.tls`` read and checked before any connection to etcd, so a
wrong path or a readable private key is refused at start with the setting and the file
named, instead of surfacing as an obscure TLS failure later. The private key's file must
be a regular file of mode 0600 (as the master secret's); no message ever holds what a
file contains. ``TlsSource`` reads them again after a rotation: its ``stamp`` (inode,
size and modification time of each file) tells the etcd client when to."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from poolkeeper.keys.guarded_file import GuardedFileRefused, read_guarded_file
from poolkeeper.model.desired import HaTlsSettings

_MAX_PEM_BYTES = 1 << 20


Stamp = tuple[tuple[str, int, int, int], ...]
"""Each file's (path, inode, size, mtime in ns); -1s for a file that cannot be examined."""


class TlsConfigError(ValueError):
    """A ``settings.ha.tls`` file is missing, unreadable, too open or not PEM."""


@dataclass(frozen=True)
class TlsMaterial:
    """What the etcd client presents and trusts. ``key`` never shows in a repr."""

    ca: bytes | None
    """PEM of the trusted CA(s); None: the system's roots."""
    cert: bytes | None
    key: bytes | None = field(repr=False)
    server_name: str | None = None
    ca_path: str | None = None
    """Where ``ca`` came from (for messages)."""
    stamp: Stamp = field(default=(), compare=False)
    """The files' ``TlsSource.stamp`` taken just before they were read."""


def _resolve(path: str, base_dir: Path) -> Path:
    resolved = Path(os.path.expanduser(path))
    return resolved if resolved.is_absolute() else base_dir / resolved


def read_pem(where: Path, setting: str, *, private: bool) -> bytes:
    """The PEM file ``where`` named by ``setting`` (e.g. ``settings.ha.tls.key (…)``);
    ``private``: refused unless only its owner may read it."""
    name = f"{setting}: {where}"
    try:
        data = read_guarded_file(where, owner_only=private, max_bytes=_MAX_PEM_BYTES)
    except GuardedFileRefused as refused:
        raise TlsConfigError(_pem_refusal(name, where, refused)) from None
    marker = b"PRIVATE KEY-----" if private else b"-----BEGIN CERTIFICATE-----"
    if marker not in data:
        wanted = "a PEM private key" if private else "PEM certificate(s)"
        raise TlsConfigError(f"{name} does not hold {wanted}")
    return data


def _pem_refusal(name: str, where: Path, refused: GuardedFileRefused) -> str:
    if (problem := refused.opening_problem(name)) is not None:
        return problem
    if refused.kind == "not_regular":
        return f"{name} is {refused.detail}, not a PEM file"
    if refused.kind == "too_open":
        return (
            f"{name} has mode {refused.mode:04o}: a private key must be readable by its "
            f"owner only; refusing to use it (run: chmod 600 {where})"
        )
    return f"{name} is {refused.size} bytes: not a PEM file"


@dataclass(frozen=True)
class TlsSource:
    """Where ``TlsMaterial`` comes from, to read it again when its files change."""

    settings: HaTlsSettings
    base_dir: Path
    where: str

    def paths(self) -> tuple[Path, ...]:
        named = (self.settings.ca, self.settings.cert, self.settings.key)
        return tuple(_resolve(p, self.base_dir) for p in named if p)

    def stamp(self) -> Stamp:
        """What changes when a file is rewritten, replaced (rename, a symlink swapped as
        Kubernetes does for mounted secrets) or removed."""
        found = []
        for path in self.paths():
            try:
                info = path.stat()
            except OSError:
                found.append((str(path), -1, -1, -1))
            else:
                found.append((str(path), info.st_ino, info.st_size, info.st_mtime_ns))
        return tuple(found)

    def load(self) -> TlsMaterial:
        """The files' material now; ``TlsConfigError`` as at start."""
        stamp = self.stamp()
        return replace(load_tls(self.settings, self.base_dir, self.where), stamp=stamp)


def load_tls(settings: HaTlsSettings | None, base_dir: Path, where: str) -> TlsMaterial:
    """The material ``settings`` names (relative paths: from ``base_dir``, the inventory
    directory); ``where`` places the settings in messages (``settings.yaml:1:1``)."""
    if settings is None:
        return TlsMaterial(ca=None, cert=None, key=None)

    def setting(name: str) -> str:
        return f"settings.ha.tls.{name} ({where})" if where else f"settings.ha.tls.{name}"

    def read(name: str, value: str | None, private: bool = False) -> bytes | None:
        if not value:
            return None
        return read_pem(_resolve(value, base_dir), setting(name), private=private)

    if bool(settings.cert) != bool(settings.key):
        raise TlsConfigError(f"{setting('cert')} and {setting('key')} go together")
    return TlsMaterial(
        ca=read("ca", settings.ca),
        cert=read("cert", settings.cert),
        key=read("key", settings.key, private=True),
        server_name=settings.server_name,
        ca_path=str(_resolve(settings.ca, base_dir)) if settings.ca else None,
    )
