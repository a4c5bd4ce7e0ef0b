"""An inventory being assembled from another tool's records, and how it is written out.

Importers (PRB v3, CSV) only read records and fill a ``Draft``; writing is one shared
rule set: YAML every loader reads back, files created exclusively (an existing file is
never overwritten: the import stops before writing anything), and no secret anywhere
(keys are named by where they will be read, ``key: {env: NAME}``).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from poolkeeper.errors import PoolkeeperError

_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


class ImportFailed(PoolkeeperError):
    """The input cannot be imported; the message names the file (and line) and the fix."""


@dataclass
class KeyNeeded:
    """A key the operator must provide before poolkeeper can sign for an account."""

    account: str
    address: str | None
    """None when the input does not say (PRB v2 keeps it encrypted): the key tells."""
    env: str
    why: str
    hint: str = (
        "<its secret: the SURI, mnemonic, 0x seed or PRB secret key given to SetPoolOperator>"
    )
    """What to put in the variable."""


@dataclass
class Draft:
    """Inventory entries as plain mappings, in the order they will be written."""

    settings: dict[str, Any] = field(default_factory=dict)
    accounts: list[dict[str, Any]] = field(default_factory=list)
    pools: list[dict[str, Any]] = field(default_factory=list)
    workers: list[dict[str, Any]] = field(default_factory=list)
    keys: list[KeyNeeded] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def files(self) -> dict[str, str]:
        """File name → YAML text, for the sections that have entries."""
        out: dict[str, str] = {}
        if self.settings:
            out["settings.yaml"] = "settings:\n" + _block(self.settings, 1)
        for section in ("accounts", "pools", "workers"):
            items: list[dict[str, Any]] = getattr(self, section)
            if items:
                out[f"{section}.yaml"] = f"{section}:\n" + "".join(
                    f"  - {_flow(item)}\n" for item in items
                )
        return out


def env_name(account: str) -> str:
    """The environment variable an imported account's key is read from."""
    return "POOLKEEPER_KEY_" + re.sub(r"[^A-Za-z0-9]+", "_", account).strip("_").upper()


def safe_name(raw: str, fallback: str, taken: set[str]) -> str:
    """``raw`` made a valid inventory name (letters, digits, ``._-``, ≤ 64), unique in
    ``taken`` (which it is added to)."""
    name = _NAME_CHARS.sub("-", raw.strip()).strip("-._")[:56] or fallback
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}-{n}", n + 1
    taken.add(candidate)
    return candidate


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False)


def _flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return _scalar(value)


def _block(mapping: dict[str, Any], depth: int) -> str:
    pad = "  " * depth
    return "".join(f"{pad}{key}: {_flow(value)}\n" for key, value in mapping.items())


def write_draft(draft: Draft, into: Path) -> list[Path]:
    """Write every file of ``draft`` below ``into``; none may exist (checked first)."""
    files = draft.files()
    targets = {into / name: text for name, text in files.items()}
    for path in targets:
        if path.exists() or path.is_symlink():
            raise ImportFailed(
                f"{path} already exists; import never overwrites a file "
                f"(choose an empty --into directory)"
            )
    try:
        into.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImportFailed(f"{into}: cannot create the directory: {exc.strerror}") from None
    written: list[Path] = []
    for path, text in targets.items():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except FileExistsError:
            raise ImportFailed(f"{path} already exists; import never overwrites a file") from None
        except OSError as exc:
            raise ImportFailed(f"{path}: cannot be created: {exc.strerror}") from None
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        written.append(path)
    return written
