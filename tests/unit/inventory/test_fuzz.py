"""Whatever YAML it is given, the loader returns a Desired or raises InventoryError.

Nothing else may escape: no KeyError from a strange shape, no pydantic error, no
RecursionError from aliases. Three sources of input: random documents built from
nested values (with the inventory's own keys mixed in so they get past the top
level), random edits of the example inventory, and random text.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from poolkeeper.errors import InventoryError
from poolkeeper.inventory import load_inventory
from poolkeeper.model.desired import Desired

EXAMPLE = Path(__file__).resolve().parents[3] / "inventory"
FIELDS = [
    "settings", "pools", "workers", "accounts", "name", "endpoint", "pool", "stake",
    "state", "labels", "pubkey", "role", "address", "derivation", "warn_below",
    "critical_below", "top_up", "from", "to", "max_per_day", "pid", "owner", "operator",
    "create", "cap", "commission", "default_stake", "chain", "endpoints", "network",
    "relay", "loop", "source", "<<", "x-common",
]  # fmt: skip
SCALAR_WORDS = [
    "computing", "idle", "sync_only", "removed", "5000 PHA", "0.5 PHA", "-1 PHA", "owner",
    "pool-a", "http://127.0.0.1:8100", "ws://127.0.0.1:9944", "devnet", "operator",
    "447okwgqnpaKuseEXECNcXK8KUMPpgM1cjczMvKx9T7c5MXr", "1e400", "~", "",
]  # fmt: skip
PRINTABLE = st.characters(blacklist_categories=("Cs", "Cc"))
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(PRINTABLE, max_size=20),
    st.sampled_from(SCALAR_WORDS),
)
keys = st.one_of(st.sampled_from(FIELDS), st.text(PRINTABLE, min_size=1, max_size=12))
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=5)
    ),
    max_leaves=25,
)
documents = st.one_of(values, st.dictionaries(keys, values, max_size=5))


def _outcome(root: Path) -> Desired | InventoryError:
    try:
        return load_inventory(root)
    except InventoryError as error:
        assert error.problems, "an InventoryError must carry its problems"
        return error


def _in_tempdir(write: Callable[[Path], None]) -> Desired | InventoryError:
    with tempfile.TemporaryDirectory() as name:
        root = Path(name)
        write(root)
        return _outcome(root)


@SETTINGS
@given(docs=st.lists(documents, min_size=1, max_size=3))
def test_random_documents_never_crash_the_loader(docs: list[Any]) -> None:
    def write(root: Path) -> None:
        yaml = YAML(typ="safe", pure=True)
        for index, doc in enumerate(docs):
            buffer = io.StringIO()
            yaml.dump(doc, buffer)
            (root / f"f{index}.yaml").write_text(buffer.getvalue(), encoding="utf-8")

    assert isinstance(_in_tempdir(write), Desired | InventoryError)


edits = st.lists(
    st.tuples(
        st.sampled_from(["delete", "insert", "duplicate_line", "drop_line", "swap_lines"]),
        st.integers(min_value=0, max_value=10_000),
        st.integers(min_value=0, max_value=10_000),
        st.text(
            st.sampled_from(list(" \n\t-:#&*!|>'\"{}[],?%@`~") + list("abcPHA0123456789.")),
            max_size=8,
        ),
    ),
    min_size=1,
    max_size=4,
)


def _mutate(text: str, ops: list[tuple[str, int, int, str]]) -> str:
    for op, a, b, insert in ops:
        lines = text.split("\n")
        i, j = a % max(len(lines), 1), b % max(len(lines), 1)
        if op == "delete":
            start = a % max(len(text), 1)
            text = text[:start] + text[start + b % 12 :]
        elif op == "insert":
            at = a % (len(text) + 1)
            text = text[:at] + insert + text[at:]
        elif op == "duplicate_line":
            lines.insert(i, lines[i])
            text = "\n".join(lines)
        elif op == "drop_line":
            del lines[i]
            text = "\n".join(lines)
        else:
            lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
    return text


EXAMPLE_FILES = sorted(p.relative_to(EXAMPLE).as_posix() for p in EXAMPLE.rglob("*.yaml"))


@SETTINGS
@given(target=st.sampled_from(EXAMPLE_FILES), ops=edits)
def test_edits_of_the_example_never_crash_the_loader(
    target: str, ops: list[tuple[str, int, int, str]]
) -> None:
    def write(root: Path) -> None:
        shutil.copytree(EXAMPLE, root, dirs_exist_ok=True)
        path = root / target
        path.write_text(_mutate(path.read_text(encoding="utf-8"), ops), encoding="utf-8")

    assert isinstance(_in_tempdir(write), Desired | InventoryError)


@SETTINGS
@given(text=st.text(max_size=200))
def test_random_text_never_crashes_the_loader(text: str) -> None:
    def write(root: Path) -> None:
        (root / "inv.yaml").write_bytes(text.encode("utf-8", "surrogatepass"))

    assert isinstance(_in_tempdir(write), Desired | InventoryError)
