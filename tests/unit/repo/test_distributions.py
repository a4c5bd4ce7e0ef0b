"""The product works without its optional parts, and its wheel keeps them optional.

`pip install poolkeeper` must give a working CLI with neither textual (the `tui` extra)
nor the devnet (the `poolkeeper-devnet` distribution, which brings PyNaCl).
The development venv has all of them installed, so the commands here run in a child
interpreter whose import system refuses those packages (a ``sys.meta_path`` finder that
raises for them): if a core command imports one, it fails here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SNAPSHOT = ROOT / "examples" / "observed-devnet-fresh.json"
OPTIONAL = ("textual", "nacl", "poolkeeper_devnet", "poolkeeper_tui", "keyring")

# Runs `poolkeeper <argv>` with the named packages unimportable, then reports which of them
# any code tried to import (the blocker counts its refusals).
WRAPPER = """
import json, sys
blocked = json.loads(sys.argv[1])
refused = []
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in blocked):
            refused.append(name)
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
already = [m for m in sys.modules if any(m == b or m.startswith(b + ".") for b in blocked)]
assert not already, f"imported before the blocker: {already}"
sys.meta_path.insert(0, Refuse())
sys.argv = ["poolkeeper", *sys.argv[2:]]
try:
    from poolkeeper.cli import main
    main()
finally:
    sys.stderr.write("\\nREFUSED " + json.dumps(sorted(set(refused))) + "\\n")
"""


def _poolkeeper(blocked: tuple[str, ...], *argv: str) -> tuple[int, str, str, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, json.dumps(blocked), *argv],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = done.stderr.splitlines()
    refused = [json.loads(line[8:]) for line in lines if line.startswith("REFUSED ")]
    err = "\n".join(line for line in lines if not line.startswith("REFUSED "))
    assert len(refused) == 1, done.stderr
    return done.returncode, done.stdout, err, refused[0]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (("--help",), "Keep Phala mining pools"),
        (("validate", "inventory"), "inventory/: valid ("),
        (("plan", "inventory", "--observed", str(SNAPSHOT)), "Plan: 13 to add, 4 to change"),
    ],
    ids=["help", "validate", "plan-observed"],
)
def test_core_commands_work_without_the_optional_packages(argv: tuple[str, ...], says: str) -> None:
    code, out, err, refused = _poolkeeper(OPTIONAL, *argv)
    assert code == 0, out + err
    assert says in out
    assert "Traceback" not in err
    assert refused == [], f"a core command tried to import {refused}"


def test_tui_without_textual_is_one_line_naming_the_extra() -> None:
    code, _, err, refused = _poolkeeper(("textual",), "tui", "inventory")
    assert code == 1
    assert err.strip().splitlines() == [
        "error: the TUI front end needs the Python package 'textual', which is not installed: "
        "pip install 'poolkeeper[tui]'"
    ], err
    assert refused == ["textual"]


def test_devnet_without_the_devnet_distribution_is_one_line_saying_how_to_install() -> None:
    code, _, err, refused = _poolkeeper(("poolkeeper_devnet",), "devnet", "up", "inventory")
    assert code == 1
    assert err.strip().splitlines() == [
        "error: the devnet front end is not installed: pip install poolkeeper-devnet "
        "(from a clone: pip install -e src)"
    ], err
    assert refused and refused[0] == "poolkeeper_devnet"


def _requirements(metadata: str) -> list[str]:
    return Parser().parsestr(metadata).get_all("Requires-Dist") or []


def _declared(pyproject: Path) -> list[str]:
    """Requires-Dist lines as the wheel would write them, from a pyproject's [project]."""
    project = tomllib.loads(pyproject.read_text())["project"]
    lines = list(project.get("dependencies", []))
    for extra, requirements in project.get("optional-dependencies", {}).items():
        lines += [f"{r}; extra == '{extra}'" for r in requirements]
    return lines


def _wheel_metadata(project: Path, tmp_path: Path) -> tuple[list[str], list[str], str]:
    """(Requires-Dist, file names, entry_points.txt) of the wheel built from ``project``.

    With hatchling installed (the dev extra) this is a real offline build; without it the
    pyproject is read instead, and the file list is empty.
    """
    if importlib.util.find_spec("hatchling") is None:
        return _declared(project / "pyproject.toml"), [], ""
    build = ["pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path)]
    subprocess.run(
        [sys.executable, "-m", *build, str(project)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        return (
            _requirements(archive.read(info).decode()),
            names,
            archive.read(points).decode(),
        )


def _names(requirements: list[str], extra: str | None) -> set[str]:
    """Lower-case project names of the requirements that hold without extras (None) or
    only under ``extra``."""
    out = set()
    for line in requirements:
        requirement, _, marker = line.partition(";")
        name = requirement.strip().split("[")[0]
        for stop in "<>=~! (":
            name = name.split(stop)[0]
        in_extra = "extra ==" in marker
        if (extra is None and not in_extra) or (
            extra is not None and f"extra == '{extra}'" in marker.replace('"', "'")
        ):
            out.add(name.lower().replace("_", "-"))
    return out


def test_the_product_wheel_keeps_textual_keyring_and_the_devnet_optional(tmp_path: Path) -> None:
    requirements, names, points = _wheel_metadata(ROOT, tmp_path)
    core = _names(requirements, None)
    assert {"typer", "substrate-interface", "httpx"} <= core
    # protobuf is core: the pRuntime client encodes with the generated pruntime_rpc_pb2
    assert "protobuf" in core
    assert not core & {"textual", "keyring", "pynacl", "poolkeeper-devnet", "aetcd"}
    assert _names(requirements, "tui") == {"textual"}
    assert _names(requirements, "keyring") == {"keyring"}
    assert not [r for r in requirements if r.lower().startswith("pynacl")]
    if names:
        assert "poolkeeper/cli.py" in names or "poolkeeper/cli/__init__.py" in names
        assert not [n for n in names if n.startswith("poolkeeper_devnet/")]
        assert "tui = poolkeeper_tui.app:run_tui" in points


def test_the_devnet_wheel_carries_the_simulators_and_their_dependencies(tmp_path: Path) -> None:
    requirements, names, points = _wheel_metadata(ROOT / "src", tmp_path)
    core = _names(requirements, None)
    assert {"poolkeeper", "protobuf", "pynacl"} <= core
    if names:
        assert "poolkeeper_devnet/chain/server.py" in names
        assert "poolkeeper_devnet/pruntime/server.py" in names
        assert not [n for n in names if n.startswith("poolkeeper/")]
        assert "devnet = poolkeeper_devnet.command:run_devnet" in points
