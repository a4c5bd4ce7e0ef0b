"""Valid inventories load into the Desired they describe."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from poolkeeper.errors import InventoryError
from poolkeeper.inventory import load_inventory
from poolkeeper.model.amounts import PLANCKS_PER_PHA
from poolkeeper.model.desired import AccountRole, Settings, SourceRef, WorkerState

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "inventory"
PHA = PLANCKS_PER_PHA


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


ACCOUNTS = """\
    accounts:
      - name: owner
        role: owner
        derivation: owner
"""


def test_example_inventory_validates() -> None:
    desired = load_inventory(EXAMPLE)
    assert (len(desired.pools), len(desired.workers), len(desired.accounts)) == (2, 8, 6)
    assert desired.settings.network == "devnet"
    assert desired.settings.chain.endpoints == ("ws://127.0.0.1:9944",)
    endpoints = [w.endpoint for w in desired.workers]
    assert endpoints == [f"http://127.0.0.1:{8100 + i}" for i in range(8)]
    assert {w.source.file for w in desired.workers if w.source} == {
        "workers/rack-a.yaml",
        "workers/rack-b.yaml",
    }


def test_every_spec_knows_where_it_was_written() -> None:
    desired = load_inventory(EXAMPLE)
    specs = [*desired.pools, *desired.workers, *desired.accounts, desired.settings]
    assert all(spec.source is not None for spec in specs)
    first = desired.workers_by_name["rack-a-01"]
    assert first.source == SourceRef(file="workers/rack-a.yaml", line=3, col=5)
    lines = (EXAMPLE / "workers" / "rack-a.yaml").read_text().splitlines()
    assert lines[first.source.line - 1][first.source.col - 1 :].startswith("name: rack-a-01")


def test_sections_merge_across_files_in_path_order(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {
            "accounts.yaml": ACCOUNTS,
            "b/pools.yml": """\
                pools:
                  - {name: p1, pid: 1, owner: owner, default_stake: 10 PHA}
                workers:
                  - {name: w3, endpoint: "http://127.0.0.1:3", pool: p1}
                """,
            "a/workers.yaml": """\
                workers:
                  - {name: w1, endpoint: "http://127.0.0.1:1", pool: p1}
                  - {name: w2, endpoint: "http://127.0.0.1:2", pool: p1}
                """,
            "settings.yaml": "settings:\n  network: phala\n",
            ".git/junk.yaml": "not: [valid",
            "notes.txt": "ignored",
        },
    )
    desired = load_inventory(root)
    assert [w.name for w in desired.workers] == ["w1", "w2", "w3"]
    assert desired.workers[2].source == SourceRef(file="b/pools.yml", line=4, col=5)
    assert desired.settings.network == "phala"
    assert desired.stake_of(desired.workers[0]) == 10 * PHA


def test_defaults_apply(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {
            "inv.yaml": ACCOUNTS
            + """\
    pools:
      - {name: p1, create: true, owner: owner, default_stake: 2.5 PHA}
    workers:
      - {name: w1, endpoint: "https://10.0.0.1", pool: p1}
      - {name: w2, endpoint: "http://10.0.0.2:8000", state: sync_only}
    """
        },
    )
    desired = load_inventory(root)
    w1, w2 = desired.workers
    assert w1.state is WorkerState.COMPUTING and w1.labels == {} and w1.stake is None
    assert desired.stake_of(w1) == 2_500_000_000_000
    assert w2.pool is None and w2.state is WorkerState.SYNC_ONLY
    assert desired.settings.model_dump(exclude={"source"}) == Settings().model_dump(
        exclude={"source"}
    )
    assert desired.settings.source is None
    assert desired.accounts[0].role is AccountRole.OWNER
    assert desired.pools[0].pid is None and desired.pools[0].create


def test_amount_forms(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {
            "inv.yaml": ACCOUNTS
            + """\
    pools:
      - {name: p1, pid: 0, owner: owner, cap: "1_000_000 PHA"}
    workers:
      - {name: w1, endpoint: "http://h:1", pool: p1, stake: 5000 PHA}
      - {name: w2, endpoint: "http://h:2", pool: p1, stake: "0.000000000001 PHA"}
      - {name: w3, endpoint: "http://h:3", pool: p1, stake: 1000000000000}
      - {name: w4, endpoint: "http://h:4", pool: p1, stake: 2000000000000 planck}
    """
        },
    )
    with pytest.raises(InventoryError) as caught:
        load_inventory(root)
    # only w2 is below the 1 PHA minimum; every form was read
    assert len(caught.value.problems) == 1
    assert "workers[1].stake: 0.000000000001 PHA is below" in caught.value.problems[0]
    (root / "inv.yaml").write_text(
        (root / "inv.yaml").read_text().replace('"0.000000000001 PHA"', "1.5 pha")
    )
    stakes = [w.stake for w in load_inventory(root).workers]
    assert stakes == [5000 * PHA, 1_500_000_000_000, PHA, 2 * PHA]
    assert load_inventory(root).pools[0].cap == 1_000_000 * PHA


def test_anchors_merge_keys_multi_documents_and_empty_files(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {
            "empty.yaml": "",
            "comments.yaml": "# nothing here yet\n",
            "inv.yaml": ACCOUNTS
            + """\
    pools:
      - {name: p1, pid: 3, owner: owner, default_stake: 1 PHA}
    ---
    x-rack: &rack
      pool: p1
      labels: {rack: a}
    workers:
      - <<: *rack
        name: w1
        endpoint: http://h:1
      - <<: *rack
        name: w2
        endpoint: http://h:2
        labels: {rack: b}
    """,
        },
    )
    desired = load_inventory(root)
    assert [(w.pool, w.labels) for w in desired.workers] == [
        ("p1", {"rack": "a"}),
        ("p1", {"rack": "b"}),
    ]


def test_a_single_file_can_be_loaded(tmp_path: Path) -> None:
    root = _write(tmp_path, {"one.yaml": ACCOUNTS})
    assert load_inventory(root / "one.yaml").accounts[0].name == "owner"


def test_example_copy_with_one_typo_fails_and_nothing_is_returned(tmp_path: Path) -> None:
    copy = tmp_path / "inventory"
    shutil.copytree(EXAMPLE, copy)
    rack = copy / "workers" / "rack-b.yaml"
    rack.write_text(rack.read_text().replace("stake: 6000 PHA", "stake: 6000 PHAA"))
    with pytest.raises(InventoryError) as caught:
        load_inventory(copy)
    assert caught.value.problems == [
        "workers/rack-b.yaml:11:12: workers[1].stake: unknown unit 'PHAA' in '6000 PHAA' "
        "(use PHA or planck)"
    ]
