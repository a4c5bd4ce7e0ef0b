"""The files of ``settings.ha.tls`` read and checked before any connection to etcd, so a
wrong path or a readable private key is refused at start with the setting and the file
named, instead of surfacing as an obscure TLS failure later. The private key's file must
be a regular file of mode 0600 (as the master secret's); no message ever holds what a
file contains."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from poolkeeper.model.desired import HaTlsSettings

_MAX_PEM_BYTES = 1 << 20


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


def _resolve(path: str, base_dir: Path) -> Path:
    resolved = Path(os.path.expanduser(path))
    return resolved if resolved.is_absolute() else base_dir / resolved


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    return "not a regular file"


def read_pem(where: Path, setting: str, *, private: bool) -> bytes:
    """The PEM file ``where`` named by ``setting`` (e.g. ``settings.ha.tls.key (…)``);
    ``private``: refused unless only its owner may read it."""
    name = f"{setting}: {where}"
    try:
        # O_NONBLOCK: opening a FIFO must not hang; the type check below refuses it.
        fd = os.open(where, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise TlsConfigError(f"{name} does not exist") from None
    except PermissionError:
        raise TlsConfigError(f"{name} cannot be read (permission denied)") from None
    except OSError as exc:
        raise TlsConfigError(f"{name} cannot be opened: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise TlsConfigError(f"{name} is {_kind(info.st_mode)}, not a PEM file")
        mode = stat.S_IMODE(info.st_mode)
        if private and mode & 0o077:
            raise TlsConfigError(
                f"{name} has mode {mode:04o}: a private key must be readable by its owner "
                f"only; refusing to use it (run: chmod 600 {where})"
            )
        if info.st_size > _MAX_PEM_BYTES:
            raise TlsConfigError(f"{name} is {info.st_size} bytes: not a PEM file")
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        data = b"".join(chunks)
    except OSError as exc:
        raise TlsConfigError(f"{name} cannot be read: {exc.strerror}") from None
    finally:
        os.close(fd)
    marker = b"PRIVATE KEY-----" if private else b"-----BEGIN CERTIFICATE-----"
    if marker not in data:
        wanted = "a PEM private key" if private else "PEM certificate(s)"
        raise TlsConfigError(f"{name} does not hold {wanted}")
    return data


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
