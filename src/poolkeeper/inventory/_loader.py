"""Find the inventory's files, merge their sections, validate every entry.

Each file may hold any of the four sections; entries keep the node they came from,
so a problem found at any stage (YAML, field validation, cross-checks) is placed at
the exact ``file:line:col``. Every stage runs to the end and problems accumulate;
only an inventory without a single problem becomes a ``Desired``.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from poolkeeper.errors import InventoryError
from poolkeeper.inventory._checks import cross_check
from poolkeeper.inventory._entries import Entry, Inventory
from poolkeeper.inventory._messages import describe, phrase, suggest
from poolkeeper.inventory._yaml import Problem, locate, node_problem, read_documents
from poolkeeper.model.desired import AccountSpec, Desired, PoolSpec, Settings, WorkerSpec

SECTIONS: dict[str, type[BaseModel]] = {
    "settings": Settings,
    "pools": PoolSpec,
    "workers": WorkerSpec,
    "accounts": AccountSpec,
}
EXTENSION_PREFIX = "x-"
"""Top-level keys with this prefix are ignored: a place for YAML anchors to share."""
_SINGULAR = {"pools": "pool", "workers": "worker", "accounts": "account"}


def _discover(root: Path) -> list[tuple[str, Path]]:
    if root.is_file():
        return [(root.name, root)]
    found: list[tuple[str, Path]] = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in files:
            if name.startswith(".") or not name.endswith((".yaml", ".yml")):
                continue
            path = Path(directory, name)
            found.append((path.relative_to(root).as_posix(), path))
    return sorted(found)


def _read_text(display: str, path: Path, problems: list[Problem]) -> str | None:
    try:
        raw = path.read_bytes()
    except OSError as error:
        problems.append(Problem(display, 1, 1, f"cannot read file: {error.strerror}"))
        return None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        before = raw[: error.start]
        line = before.count(b"\n") + 1
        col = error.start - (before.rfind(b"\n") + 1) + 1
        problems.append(Problem(display, line, col, "file is not UTF-8 text (save it as UTF-8)"))
        return None


def _collect(root: Path, problems: list[Problem]) -> Inventory:
    inventory = Inventory(None, [], [], [])
    lists: dict[str, list[Any]] = {
        "pools": inventory.pools,
        "workers": inventory.workers,
        "accounts": inventory.accounts,
    }
    files = _discover(root)
    if not files:
        problems.append(Problem(str(root), 0, 0, "no *.yaml or *.yml files found here"))
    valid_sections = ", ".join(SECTIONS)
    settings_at: Problem | None = None
    for display, path in files:
        text = _read_text(display, path, problems)
        if text is None:
            continue
        documents, found = read_documents(display, text)
        problems.extend(found)
        for document in documents:
            if document.value is None:
                continue
            if not isinstance(document.value, dict):
                problems.append(
                    node_problem(
                        display,
                        document.root,
                        f"the top level must be a mapping with keys {valid_sections}, "
                        f"got {describe(document.value)}",
                    )
                )
                continue
            for key, value in document.value.items():
                key_node, node, _ = locate(document.root, (key,))
                if key.startswith(EXTENSION_PREFIX):
                    continue
                if key not in SECTIONS:
                    close = suggest(key, SECTIONS)
                    hint = f"did you mean '{close}'? " if close else ""
                    problems.append(
                        node_problem(
                            display,
                            key_node or node,
                            f"unknown top-level key '{key}' ({hint}valid: {valid_sections}; "
                            f"keys starting with '{EXTENSION_PREFIX}' are ignored, e.g. to hold "
                            f"YAML anchors)",
                        )
                    )
                    continue
                if value is None:
                    continue
                if key == "settings":
                    entry: Entry[Any] = Entry("settings", display, None, node, value)
                    if inventory.settings is not None and settings_at is not None:
                        first = settings_at
                        problems.append(
                            node_problem(
                                display,
                                key_node or node,
                                f"settings are written twice (also at {first.file}:{first.line}:"
                                f"{first.col}); keep one",
                            )
                        )
                        continue
                    inventory.settings = entry
                    settings_at = node_problem(display, key_node or node, "")
                    continue
                if not isinstance(value, list):
                    problems.append(
                        node_problem(
                            display,
                            node,
                            f"{key}: expected a list of {key} (each item starting with "
                            f"'- name: ...'), got {describe(value)}",
                        )
                    )
                    continue
                items = getattr(node, "value", [])
                for index, item in enumerate(value):
                    item_node = items[index] if index < len(items) else node
                    lists[key].append(Entry(key, display, index, item_node, item))
    return inventory


def _validate(entry: Entry[Any], model: type[BaseModel], problems: list[Problem]) -> None:
    data = entry.data
    if not isinstance(data, dict):
        noun = _SINGULAR.get(entry.section, entry.section)
        problems.append(
            entry.problem(
                (), f"{entry.prefix}: expected a mapping of {noun} fields, got {describe(data)}"
            )
        )
        return
    if "source" in data:
        problems.append(
            entry.problem(
                ("source",),
                f"{entry.prefix}: unknown field 'source' (poolkeeper records where an "
                f"entry was written by itself)",
                "key",
            )
        )
        return
    try:
        entry.spec = model.model_validate({**data, "source": entry.source})
    except ValidationError as error:
        for detail in error.errors(include_url=False):
            loc, where, text = phrase(detail, model, entry.prefix)
            problems.append(entry.problem(loc, text, where))


def load_inventory(path: str | os.PathLike[str]) -> Desired:
    """Load and validate the inventory at ``path`` (a directory, or a single file).

    Raises ``InventoryError`` listing every problem, sorted by file and position;
    returns a ``Desired`` only when there is none.
    """
    # Loading allocates a few hundred thousand acyclic objects; the cyclic collector
    # would rescan them over and over (half the time on 10,000 workers). Reference
    # counting frees them all the same.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _load(Path(path))
    finally:
        if was_enabled:
            gc.enable()


def _load(root: Path) -> Desired:
    problems: list[Problem] = []
    if not root.exists():
        raise InventoryError(
            [f"{root}: no such directory"], [(str(root), 0, 0, "no such directory")]
        )
    inventory = _collect(root, problems)
    if inventory.settings is not None:
        _validate(inventory.settings, Settings, problems)
    for section, model in SECTIONS.items():
        if section != "settings":
            for entry in getattr(inventory, section):
                _validate(entry, model, problems)
    problems.extend(cross_check(inventory))
    if problems:
        ordered = sorted(set(problems))
        raise InventoryError(
            [str(p) for p in ordered], [(p.file, p.line, p.col, p.text) for p in ordered]
        )
    settings = inventory.settings.spec if inventory.settings else None
    return Desired(
        settings=settings if settings is not None else Settings(),
        pools=tuple(e.spec for e in inventory.pools if e.spec is not None),
        workers=tuple(e.spec for e in inventory.workers if e.spec is not None),
        accounts=tuple(e.spec for e in inventory.accounts if e.spec is not None),
    )
