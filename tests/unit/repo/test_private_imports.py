"""No module imports what another package keeps private.

A name starting with one underscore (``_live``, ``_rpc``) is private to the package that
holds it: its siblings and their subpackages may import it, nobody else. The TUI once
imported the CLI's private glue (``poolkeeper._cli_live``) to build its reconciler; the
public way is ``poolkeeper.app``. This test reads every module of ``src/`` and ``tui/``
with ``ast`` (lazy imports inside functions included) and names each import that crosses
a package boundary into a private module or name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SOURCES = (ROOT / "src", ROOT / "tui")
FIRST_PARTY = ("poolkeeper", "poolkeeper_tui", "poolkeeper_devnet")


def module_name(root: Path, path: Path) -> tuple[str, ...]:
    parts = path.relative_to(root).with_suffix("").parts
    return parts[:-1] if parts[-1] == "__init__" else parts


def imported(node: ast.Import | ast.ImportFrom, package: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Every dotted name the statement imports (``from a import b`` gives ``a.b``)."""
    if isinstance(node, ast.Import):
        return [tuple(alias.name.split(".")) for alias in node.names]
    base: tuple[str, ...] = ()
    if node.level:
        base = package[: len(package) - (node.level - 1)]
    if node.module:
        base = (*base, *node.module.split("."))
    return [(*base, alias.name) for alias in node.names]


def private_owner(name: tuple[str, ...]) -> tuple[str, ...] | None:
    """The package a private part of ``name`` belongs to (None: nothing private)."""
    for index, part in enumerate(name):
        if part.startswith("_") and not part.startswith("__"):
            return name[:index]
    return None


def crossings(source: str, me: tuple[str, ...], is_package: bool) -> list[tuple[int, str]]:
    """(line, imported name) of each private import of another package in ``source``."""
    package = me if is_package else me[:-1]
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        for name in imported(node, package):
            if name[0] not in FIRST_PARTY:
                continue
            owner = private_owner(name)
            if owner is not None and me[: len(owner)] != owner:
                found.append((node.lineno, ".".join(name)))
    return found


def all_crossings() -> list[str]:
    problems = []
    for root in SOURCES:
        for path in sorted(root.rglob("*.py")):
            me = module_name(root, path)
            source = path.read_text(encoding="utf-8")
            for line, name in crossings(source, me, path.name == "__init__.py"):
                problems.append(f"{path.relative_to(ROOT)}:{line}: {'.'.join(me)} -> {name}")
    return problems


def test_no_module_imports_a_private_module_of_another_package() -> None:
    assert all_crossings() == []


@pytest.mark.parametrize(
    ("me", "source", "expected"),
    [
        # the TUI reaching into the CLI's glue: caught, lazy import or not
        (("poolkeeper_tui", "_data"), "def f():\n    from poolkeeper.cli._live import x\n", 1),
        (("poolkeeper_tui", "app"), "from poolkeeper._cli_live import state_dir_of\n", 1),
        (("poolkeeper", "logs"), "from poolkeeper.keys import _redact\n", 1),
        (("poolkeeper", "app"), "import poolkeeper.chain._rpc\n", 1),
        # private within its own package: fine
        (("poolkeeper", "cli", "__init__"), "from poolkeeper.cli._live import x\n", 0),
        (("poolkeeper", "loop"), "from poolkeeper._loop_runner import run_passes\n", 0),
        (("poolkeeper", "keys", "_ring"), "from ._secret import Mnemonic\n", 0),
        (("poolkeeper_tui", "app"), "from poolkeeper_tui._data import Frame\n", 0),
        # public names and other distributions' privates are not this test's business
        (("poolkeeper", "app"), "from poolkeeper.keys import KeyRing\n", 0),
        (("poolkeeper", "cli", "_common"), "from typer._click import core\n", 0),
    ],
)
def test_the_rule(me: tuple[str, ...], source: str, expected: int) -> None:
    is_package = me[-1] == "__init__"
    name = me[:-1] if is_package else me
    assert len(crossings(source, name, is_package)) == expected
