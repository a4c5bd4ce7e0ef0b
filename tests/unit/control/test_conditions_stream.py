"""Per-worker conditions on the control stream: in the snapshot's rows, re-sent only for
the workers whose conditions changed, and read back by a client as the loop's
conditions (its transition times, not the client's), parsing only what changed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from poolkeeper.cli._live import status_rows
from poolkeeper.control import ConditionReader, ControlClient, ControlServer, StatusHub
from poolkeeper.control.conditions import ConditionDocuments
from poolkeeper.inventory import load_inventory
from poolkeeper.model.conditions import (
    Conditions,
    ConditionStatus,
    Reason,
    condition_document,
    derive_conditions,
)
from poolkeeper.model.desired import Desired
from poolkeeper.model.observed import Observed, PRuntimeInfo
from poolkeeper.observe.snapshot import load_snapshot

from .test_control_api import ROOT, SNAPSHOT, echo_handler, next_of

LOOP_T0 = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
"""The loop's clock: unlike the observation's read_at, which a client could derive from."""


def synced(desired: Desired, observed: Observed, name: str) -> Observed:
    endpoint = desired.workers_by_name[name].endpoint
    prt = observed.pruntimes[endpoint].model_copy(
        update={"info": PRuntimeInfo(initialized=True, blocknum=10, headernum=10)}
    )
    return observed.model_copy(update={"pruntimes": {**observed.pruntimes, endpoint: prt}})


def publish(hub: StatusHub, desired: Desired, observed: Observed, conditions: Conditions) -> None:
    hub.publish_observed(
        observed.model_dump(mode="json"), status_rows(desired, observed), conditions
    )


async def test_rows_carry_conditions_and_only_changed_workers_are_sent_again(
    tmp_path: Path,
) -> None:
    desired = load_inventory(ROOT / "inventory")
    first = load_snapshot(SNAPSHOT)
    c1 = derive_conditions(desired, first, None, LOOP_T0)
    hub = StatusHub()
    publish(hub, desired, first, c1)
    server = ControlServer(tmp_path / "control.sock", hub, echo_handler)
    await server.start()
    try:
        client = await ControlClient.connect(tmp_path / "control.sock")
        row = client.view.rows["rack-a-01"]
        assert row["conditions"]["Synced"] == {
            "status": "False",
            "reason": "NotInitialized",
            "message": "",
            "last_transition": "2026-03-04T05:06:07+00:00",
            "severity": None,
        }
        assert list(row["conditions"]) == ["Synced", "Registered", "InPool", "Computing", "Healthy"]
        reader = ConditionReader()
        read = reader.read(client.view.rows)
        assert read is not None and read.workers == c1.workers
        assert sorted(reader.changed) == sorted(w.name for w in desired.workers)

        # The same observation a minute later: no condition changed, no row is sent.
        c2 = derive_conditions(desired, first, c1, LOOP_T0 + timedelta(minutes=1))
        document = hub.rows["rack-a-01"]["conditions"]
        publish(hub, desired, first, c2)
        assert hub.rows["rack-a-01"]["conditions"] is document, "not built again"
        delta = await next_of(client, "observed")
        assert delta["rows"] == []
        assert reader.read(client.view.rows) is not None and reader.changed == []

        # Only a condition changed (the row's other fields did not): that row is sent.
        healthy = c2.workers["rack-b-02"][-1]
        assert healthy.type == "Healthy"
        failing = healthy.model_copy(
            update={
                "status": ConditionStatus.FALSE,
                "reason": Reason.UNREACHABLE,
                "message": "pRuntime unreachable",
                "last_transition": LOOP_T0 + timedelta(minutes=2),
                "severity": "warn",
            }
        )
        workers = {**c2.workers, "rack-b-02": (*c2.workers["rack-b-02"][:-1], failing)}
        c3 = c2.model_copy(update={"workers": workers})
        publish(hub, desired, first, c3)
        delta = await next_of(client, "observed")
        assert [r["worker"] for r in delta["rows"]] == ["rack-b-02"]
        assert delta["rows"][0]["conditions"]["Healthy"]["reason"] == "Unreachable"
        read = reader.read(client.view.rows)
        assert reader.changed == ["rack-b-02"]
        assert read is not None and read.workers["rack-b-02"][-1] == failing

        # A synced pRuntime: its row changes with its conditions, and the Synced
        # transition carries the loop's time.
        registered = {c.type: c for c in read.workers["rack-a-01"]}["Registered"]
        registered_document = hub.rows["rack-a-01"]["conditions"]["Registered"]
        second = synced(desired, first, "rack-a-01")
        c4 = derive_conditions(desired, second, c3, LOOP_T0 + timedelta(minutes=3))
        publish(hub, desired, second, c4)
        delta = await next_of(client, "observed")
        # (rack-b-02's made-up failure is derived away again: a change too.)
        assert [r["worker"] for r in delta["rows"]] == ["rack-a-01", "rack-b-02"]
        read = reader.read(client.view.rows)
        assert reader.changed == ["rack-a-01", "rack-b-02"]
        assert read is not None
        now = {c.type: c for c in read.workers["rack-a-01"]}
        assert now["Synced"].status is ConditionStatus.TRUE
        assert now["Synced"].last_transition == LOOP_T0 + timedelta(minutes=3)
        assert now["Registered"].last_transition == LOOP_T0, "unchanged: since the first pass"
        # Within a changed row, an unchanged condition is neither rebuilt nor parsed again.
        assert hub.rows["rack-a-01"]["conditions"]["Registered"] is registered_document
        assert now["Registered"] is registered
        await client.close()
    finally:
        await server.close()


def test_a_loop_without_conditions_gives_none_and_unknown_names_are_kept() -> None:
    reader = ConditionReader()
    assert reader.read({"w": {"worker": "w", "conditions": {}}}) is None
    assert reader.read({"w": {"worker": "w"}}) is None
    rows = {
        "w": {
            "worker": "w",
            "conditions": {
                "Healthy": {
                    "status": "Maybe",
                    "reason": "SomethingNew",
                    "message": "a newer loop's diagnosis",
                    "last_transition": "not a time",
                    "severity": "warn",
                }
            },
        }
    }
    read = reader.read(rows)
    assert read is not None
    (condition,) = read.workers["w"]
    assert (str(condition.status), str(condition.reason)) == ("Maybe", "SomethingNew")
    assert condition.last_transition == datetime.min


def test_equal_conditions_of_different_workers_are_one_object() -> None:
    synced = {
        "status": "True",
        "reason": "Ok",
        "message": "",
        "last_transition": "2026-03-04T05:06:07+00:00",
        "severity": None,
    }
    rows = {n: {"worker": n, "conditions": {"Synced": dict(synced)}} for n in ("a", "b")}
    read = ConditionReader().read(rows)
    assert read is not None
    assert read.workers["a"][0] is read.workers["b"][0]
    assert read.workers["a"][0].last_transition == LOOP_T0


def test_documents_follow_each_change_and_share_what_workers_share() -> None:
    """Documents are cached by condition object: a worker whose conditions changed gets
    a new document with the new content (its row is sent), the others keep theirs."""
    desired = load_inventory(ROOT / "inventory")
    first = load_snapshot(SNAPSHOT)
    documents = ConditionDocuments()
    c1 = derive_conditions(desired, first, None, LOOP_T0)
    d1 = documents.documents(c1)
    a, b = desired.workers[0].name, desired.workers[1].name
    # Equal conditions (same state since the same pass) share one document.
    assert d1[a]["Computing"] is d1[b]["Computing"]
    assert d1[a]["Computing"] == condition_document(c1.worker(a)["Computing"])

    second = synced(desired, first, a)
    c2 = derive_conditions(desired, second, c1, LOOP_T0 + timedelta(minutes=1))
    d2 = documents.documents(c2)
    assert d2[a] is not d1[a]
    assert d2[a]["Synced"]["status"] == "True"
    assert d2[a]["Synced"]["last_transition"] == "2026-03-04T05:07:07+00:00"
    assert d2[a]["Computing"] is d1[a]["Computing"], "unchanged: the same document"
    assert all(d2[w.name] is d1[w.name] for w in desired.workers[1:])
    for name, document in d2.items():  # nothing missed: every document says its conditions
        assert document == {t: condition_document(c) for t, c in c2.worker(name).items()}

    hub = StatusHub()
    publish(hub, desired, first, c1)
    queue = hub.subscribe()
    publish(hub, desired, second, c2)
    delta = queue.get_nowait()
    assert delta is not None and [r["worker"] for r in delta["rows"]] == [a]


def test_an_observation_published_as_a_model_gives_what_its_json_data_gives() -> None:
    """The loop publishes the model (entries encoded one by one and compared as text): the
    snapshot and each delta are those of the same observation published as JSON data, and
    an entry that changed between passes is in the delta (and only those)."""
    desired = load_inventory(ROOT / "inventory")
    first = load_snapshot(SNAPSHOT).model_copy(update={"sync_rates": {"http://x": 1 / 3}})
    name = desired.workers[0].name
    second = synced(desired, first, name)
    by_data, by_model = StatusHub(), StatusHub()
    queues = by_data.subscribe(), by_model.subscribe()
    for observed in (first, second, second):
        rows = status_rows(desired, observed)
        by_data.publish_observed(observed.model_dump(mode="json"), rows)
        by_model.publish_observation(observed, [dict(r) for r in rows])
        assert by_model.observed == by_data.observed
        assert by_model.snapshot() == by_data.snapshot()
        data, model = (q.get_nowait() for q in queues)
        assert data is not None and model is not None
        assert model == data
    assert json.loads(json.dumps(by_model.observed)) == json.loads(first.model_dump_json()) | {
        "pruntimes": json.loads(second.model_dump_json())["pruntimes"]
    }


async def test_a_changed_entry_is_in_the_delta_and_the_client_view_follows(
    tmp_path: Path,
) -> None:
    desired = load_inventory(ROOT / "inventory")
    first = load_snapshot(SNAPSHOT)
    hub = StatusHub()
    hub.publish_observation(first, status_rows(desired, first))
    server = ControlServer(tmp_path / "control.sock", hub, echo_handler)
    await server.start()
    try:
        client = await ControlClient.connect(tmp_path / "control.sock")
        endpoint = desired.workers[0].endpoint
        second = synced(desired, first, desired.workers[0].name)
        hub.publish_observation(second, status_rows(desired, second))
        delta = await next_of(client, "observed")
        assert list(delta["changed"]) == ["pruntimes"]
        assert list(delta["changed"]["pruntimes"]) == [endpoint]
        assert delta["changed"]["pruntimes"][endpoint]["info"]["initialized"] is True
        assert client.view.observed == hub.observed
        assert client.view.observed == json.loads(second.model_dump_json())
        await client.close()
    finally:
        await server.close()
