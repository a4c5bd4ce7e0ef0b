"""The control API over a real Unix socket in tmp_path: the server with a fake handler,
the client, and the run glue (``ControlService``) with a fake reconciler."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import stat
from pathlib import Path
from typing import Any

import pytest

from poolkeeper.cli._control import ControlService, watch_status
from poolkeeper.cli._live import status_rows
from poolkeeper.control import ControlClient, ControlServer, ControlUnavailable, StatusHub
from poolkeeper.control.client import RequestFailed
from poolkeeper.control.protocol import FORMAT_VERSION, Request
from poolkeeper.control.server import RequestRefused, ServerBusy
from poolkeeper.inventory import load_inventory
from poolkeeper.keys import Mnemonic
from poolkeeper.model.observed import PRuntimeInfo
from poolkeeper.observe.snapshot import load_snapshot
from poolkeeper.plan import PlanPolicy

from .fake_loop import FakeReconciler

ROOT = Path(__file__).resolve().parents[3]
SNAPSHOT = ROOT / "examples" / "observed-devnet-fresh.json"
PHRASE = "bottom drive obey lake curtain smoke basket hold race lonely fit walk"


async def echo_handler(request: Request) -> dict[str, Any]:
    if request.request == "reload":
        raise RequestRefused("inventory invalid (test)")
    return {"echo": request.to_json()}


def rows_of(n: int, phase: str = "Synced") -> list[dict[str, Any]]:
    return [{"worker": f"w{i}", "phase": phase} for i in range(n)]


async def next_of(client: ControlClient, kind: str) -> dict[str, Any]:
    async def find() -> dict[str, Any]:
        async for message in client.messages():
            if message.get("type") == kind:
                return message
        raise AssertionError("stream ended")

    return await asyncio.wait_for(find(), 5)


async def test_hello_then_snapshot_then_deltas(tmp_path: Path) -> None:
    hub = StatusHub(info={"server": "test"})
    hub.publish_observed({"head": {"best_number": 1}, "pruntimes": {"a": 1, "b": 2}}, rows_of(3))
    server = ControlServer(tmp_path / "control.sock", hub, echo_handler)
    await server.start()
    try:
        mode = stat.S_IMODE((tmp_path / "control.sock").stat().st_mode)
        assert mode == 0o600
        client = await ControlClient.connect(tmp_path / "control.sock")
        assert client.hello == {"type": "hello", "format_version": FORMAT_VERSION, "server": "test"}
        assert set(client.view.rows) == {"w0", "w1", "w2"}
        rows = rows_of(3)
        rows[1] = {"worker": "w1", "phase": "Computing"}
        hub.publish_observed({"head": {"best_number": 2}, "pruntimes": {"a": 1, "c": 3}}, rows[:2])
        delta = await next_of(client, "observed")
        assert delta["rows"] == [{"worker": "w1", "phase": "Computing"}], "only changed rows"
        assert delta["removed_rows"] == ["w2"]
        assert delta["changed"] == {"pruntimes": {"c": 3}}
        assert delta["removed"] == {"pruntimes": ["b"]}
        assert delta["set"] == {"head": {"best_number": 2}}
        assert client.view.observed == hub.observed
        assert client.view.rows == hub.rows
        await client.close()
    finally:
        await server.close()
    assert not (tmp_path / "control.sock").exists(), "removed on exit"


async def test_requests_are_answered_by_id_and_refusals_say_why(tmp_path: Path) -> None:
    server = ControlServer(tmp_path / "control.sock", StatusHub(), echo_handler)
    await server.start()
    try:
        client = await ControlClient.connect(tmp_path / "control.sock")
        plan = await client.plan(timeout=5)
        assert plan == {"echo": {"id": 1, "request": "plan"}}
        applied = await client.apply(["a:1"], inventory_digest="d", plan_seq=4, timeout=5)
        assert applied["echo"]["action_ids"] == ["a:1"]
        with pytest.raises(RequestFailed, match="inventory invalid"):
            await client.reload(timeout=5)
        await client.close()
        # A raw client: a bad line is answered, the connection stays usable.
        reader, writer = await asyncio.open_unix_connection(str(tmp_path / "control.sock"))
        await reader.readline()
        await reader.readline()
        writer.write(b'{"id": 7, "request": "explode"}\nnot json\n')
        writer.write(b'{"id": 8, "request": "apply", "action_ids": []}\n')
        writer.write(b'{"id": 9, "request": "plan"}\n')
        answers = [json.loads(await reader.readline()) for _ in range(4)]
        assert [a["id"] for a in answers] == [7, None, 8, 9]
        assert "unknown request 'explode'" in answers[0]["error"]
        assert "not JSON" in answers[1]["error"]
        assert "inventory_digest" in answers[2]["error"]
        assert answers[3]["ok"] is True
        writer.close()
    finally:
        await server.close()


async def test_a_stale_socket_is_replaced_and_a_live_one_refused(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()  # the file stays: what a killed process leaves
    assert path.exists()
    first = ControlServer(path, StatusHub(), echo_handler)
    await first.start()
    try:
        client = await ControlClient.connect(path)
        await client.close()
        with pytest.raises(ServerBusy, match="another poolkeeper process"):
            await ControlServer(path, StatusHub(), echo_handler).start()
    finally:
        await first.close()


async def test_no_server_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ControlUnavailable, match="no poolkeeper run serves"):
        await ControlClient.connect(tmp_path / "control.sock")
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(tmp_path / "control.sock"))
    dead.close()
    with pytest.raises(ControlUnavailable, match="Connection refused"):
        await ControlClient.connect(tmp_path / "control.sock")


async def test_a_long_state_dir_path_still_works(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    server = ControlServer(deep / "control.sock", StatusHub(), echo_handler)
    await server.start()
    try:
        client = await ControlClient.connect(deep / "control.sock")
        assert await client.plan(timeout=5)
        await client.close()
    finally:
        await server.close()


async def test_a_client_that_does_not_read_is_dropped_not_buffered(tmp_path: Path) -> None:
    hub = StatusHub()
    server = ControlServer(tmp_path / "control.sock", hub, echo_handler)
    await server.start()
    try:
        _reader, writer = await asyncio.open_unix_connection(str(tmp_path / "control.sock"))
        await asyncio.sleep(0.05)
        assert hub.subscribers == 1
        for i in range(5000):
            hub.publish_event("pass_done", block=i, padding="x" * 1000)
            if i % 100 == 0:
                await asyncio.sleep(0)
        await asyncio.sleep(0.1)
        assert hub.subscribers == 0
        writer.close()
    finally:
        await server.close()


# ---- the run glue, with a fake reconciler


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    target = tmp_path / "inv"
    shutil.copytree(ROOT / "inventory", target)
    settings = target / "settings.yaml"
    text = settings.read_text()
    if "state_dir" not in text:
        settings.write_text(text + "\nstate_dir: st\n")
    return target


async def service_for(inventory: Path) -> tuple[ControlService, FakeReconciler]:
    desired = load_inventory(inventory)
    fake = FakeReconciler(desired, load_snapshot(SNAPSHOT))
    service = ControlService(fake, PlanPolicy(), inventory)  # type: ignore[arg-type]
    await service.start()
    return service, fake


async def test_service_streams_rows_like_status_and_applies_only_approved(
    inventory: Path,
) -> None:
    service, fake = await service_for(inventory)
    try:
        first = await fake.reconcile_once(PlanPolicy())
        service.publish_pass(first)
        client = await ControlClient.connect(service.server.path)
        expected = status_rows(fake.desired, fake.observed)
        assert list(client.view.rows.values()) == json.loads(json.dumps(expected))
        assert client.view.secret_loaded is True
        answer = await client.plan(timeout=5)
        assert answer["inventory_digest"] == service.loaded_digest
        ids = [a["id"] for a in answer["plan"]["actions"]][:2]
        assert ids, "the example plan has actions"
        result = await client.apply(
            ids,
            inventory_digest=answer["inventory_digest"],
            plan_seq=answer["plan_seq"],
            timeout=5,
        )
        execute, only = fake.passes[-2]
        assert execute and only is not None and [a.id for a in only.actions] == ids
        assert fake.passes[-1] == (False, None), "re-observed right after the apply"
        assert result["plan_seq"] > answer["plan_seq"]
        assert client.view.plan_seq == result["plan_seq"]
        with pytest.raises(RequestFailed, match="not in that plan"):
            await client.apply(
                ["nope"], inventory_digest=service.loaded_digest, plan_seq=result["plan_seq"]
            )
        with pytest.raises(RequestFailed, match="no longer known"):
            await client.apply(ids, inventory_digest=service.loaded_digest, plan_seq=-5)
        await client.close()
    finally:
        await service.close()


async def test_apply_is_refused_when_the_inventory_changed_on_disk(inventory: Path) -> None:
    service, fake = await service_for(inventory)
    try:
        client = await ControlClient.connect(service.server.path)
        answer = await client.plan(timeout=5)
        ids = [a["id"] for a in answer["plan"]["actions"]]
        rack = inventory / "workers" / "rack-a.yaml"
        rack.write_text(rack.read_text() + "\n# edited\n")
        before = len(fake.passes)
        with pytest.raises(RequestFailed, match="changed on disk"):
            await client.apply(
                ids, inventory_digest=answer["inventory_digest"], plan_seq=answer["plan_seq"]
            )
        assert len(fake.passes) == before, "nothing executed"
        reloaded = await client.reload(timeout=5)
        assert fake.adopted, "the reload adopted the new inventory"
        assert reloaded["inventory_digest"] != answer["inventory_digest"]
        with pytest.raises(RequestFailed, match="another inventory"):
            await client.apply(
                ids, inventory_digest=answer["inventory_digest"], plan_seq=reloaded["plan_seq"]
            )
        rack.write_text("workers: [oops\n")
        with pytest.raises(RequestFailed, match="invalid"):
            await client.reload(timeout=5)
        await client.close()
    finally:
        await service.close()


async def test_secrets_never_reach_the_stream(inventory: Path) -> None:
    Mnemonic(PHRASE)  # registered for redaction, as the loaded master secret is
    service, fake = await service_for(inventory)
    try:
        reader, writer = await asyncio.open_unix_connection(str(service.server.path))
        data = await reader.readline()  # hello: the client is subscribed from here on
        endpoint = next(iter(fake.observed.pruntimes))
        leaky = fake.observed.pruntimes[endpoint].model_copy(
            update={"error": f"boom {PHRASE}", "info": PRuntimeInfo(initialized=True)}
        )
        fake.observed = fake.observed.model_copy(
            update={"pruntimes": {**fake.observed.pruntimes, endpoint: leaky}}
        )
        service.publish_pass(await fake.reconcile_once(PlanPolicy()))
        service.pass_failed(RuntimeError(f"rpc said {PHRASE}"), 1.0)
        writer.write(b'{"id": 1, "request": "plan"}\n')
        while b'"type":"response"' not in data:
            data += await asyncio.wait_for(reader.read(1 << 20), 5)
        writer.close()
        text = data.decode()
        assert '"event":"error"' in text and "rpc said" in text
        assert PHRASE not in text
        assert " ".join(PHRASE.split()[:2]) not in text
    finally:
        await service.close()


async def test_status_watch_without_a_running_loop_exits_1(
    inventory: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await watch_status(inventory, as_json=False) == 1
    err = capsys.readouterr().err
    assert "no poolkeeper run serves" in err and "poolkeeper run" in err


async def test_status_watch_prints_the_running_loops_status(
    inventory: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    service, fake = await service_for(inventory)
    try:
        service.publish_pass(await fake.reconcile_once(PlanPolicy()))
        assert await watch_status(inventory, as_json=False, once=True) == 0
        out = capsys.readouterr().out
        assert "chain: best #12" in out
        for worker in fake.desired.workers:
            assert worker.name in out
        assert "plan: 17 action(s)" in out
    finally:
        await service.close()


async def test_status_watch_json_prints_the_status_document(
    inventory: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    service, fake = await service_for(inventory)
    try:
        service.publish_pass(await fake.reconcile_once(PlanPolicy()))
        assert await watch_status(inventory, as_json=True, once=True) == 0
        hello, document = (json.loads(x) for x in capsys.readouterr().out.splitlines())
        assert hello["type"] == "hello" and hello["format_version"] == FORMAT_VERSION
        assert document["type"] == "status"
        assert document["head"]["best_number"] == 12
        names = [w["worker"] for w in document["workers"]]
        assert names == [w.name for w in fake.desired.workers]
    finally:
        await service.close()


async def test_plans_kept_for_approval_hold_their_actions_only(inventory: Path) -> None:
    """The loop keeps the last plans so a front end can approve one; their waits, alerts
    and drift (1 MB a plan with 1,000 syncing workers) are not kept with them."""
    from poolkeeper.cli._control import PLANS_KEPT
    from poolkeeper.loop import PassResult
    from poolkeeper.model.actions import Alert, Drift, Severity, Wait

    service, fake = await service_for(inventory)
    try:
        for _ in range(PLANS_KEPT + 3):
            result = await fake.reconcile_once(PlanPolicy())
            waits = tuple(
                Wait(target=f"w{i}", awaiting="sync", reason="r", pool=None) for i in range(50)
            )
            plan = result.plan.model_copy(
                update={
                    "waits": waits,
                    "alerts": (Alert(target="w0", severity=Severity.WARN, message="m", pool=None),),
                    "drift": (Drift(target="w0", message="m", pool=None),),
                }
            )
            service.publish_pass(PassResult(result.observed, plan))
        kept = [service.kept_plan(seq) for seq in service._plans]
        assert len(kept) == PLANS_KEPT
        assert all(p is not None and not p.waits and not p.alerts and not p.drift for p in kept)
        assert kept[-1] is not None
        assert [a.id for a in kept[-1].actions] == [a.id for a in plan.actions]
    finally:
        await service.close()


async def test_ha_ownership_is_in_the_snapshot_and_streamed_when_it_changes(
    tmp_path: Path,
) -> None:
    from poolkeeper.cli._control import ha_line

    hub = StatusHub(info={"server": "test"})
    owner = {
        "shard": "a",
        "identity": "host-1:4242",
        "state": "active",
        "owner": True,
        "since": 1_780_000_000.0,
        "lease_ttl_seconds": 9.5,
        "last_problem": None,
    }
    hub.publish_ha(owner)
    server = ControlServer(tmp_path / "control.sock", hub, echo_handler)
    await server.start()
    try:
        client = await ControlClient.connect(tmp_path / "control.sock")
        assert client.view.ha == owner, "a new client learns ownership from the snapshot"
        seq = hub.seq
        hub.publish_ha(dict(owner))
        assert hub.seq == seq, "an unchanged document is not sent again"
        fenced = {**owner, "state": "fenced", "owner": False, "lease_ttl_seconds": 0.0}
        fenced["last_problem"] = "renewal failed: timeout"
        hub.publish_ha(fenced)
        message = await next_of(client, "ha")
        assert message["ha"] == fenced and client.view.ha == fenced
        await client.close()
    finally:
        await server.close()
    assert ha_line(owner).startswith("ha: shard a owner since 2026-05-28 ")
    assert "lease TTL 9.5s" in ha_line(owner)
    assert ha_line(fenced).startswith("ha: shard a fenced since ")
    assert ha_line(fenced).endswith("last problem: renewal failed: timeout")
    # A process holding two shards: one part per shard (the ``shards`` rows).
    two = {
        **owner,
        "shard": "a,b",
        "state": "mixed",
        "owner": False,
        "shards": [
            {**owner, "shard": "a", "lease_ttl_seconds": 2.5},
            {**fenced, "shard": "b"},
        ],
    }
    assert ha_line(two) == (
        "ha: shards a owner (lease TTL 2.5s), b fenced (last problem: renewal failed: timeout);"
        " identity host-1:4242"
    )


async def test_plans_kept_for_approval_are_bounded_by_bytes(
    inventory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """16 kept plans of 10,000 actions held ~225 MB as objects: what the kept plans hold
    stays within ``PLAN_BYTES_KEPT``, counted in memory, and the newest stays approvable."""
    import gc
    import tracemalloc

    import poolkeeper.cli._control as control
    from poolkeeper.loop import PassResult
    from poolkeeper.model.actions import Action, ActionKind, Plan

    budget = 1 << 20
    monkeypatch.setattr(control, "PLAN_BYTES_KEPT", budget)
    service, fake = await service_for(inventory)
    try:
        result = await fake.reconcile_once(PlanPolicy())

        def plan_of(n: int) -> Plan:
            # Every pass plans afresh: its actions are new objects, as in ``run``.
            actions = tuple(
                Action(
                    id=f"add_worker:worker/w{n}-{i}",
                    kind=ActionKind.ADD_WORKER,
                    target=f"worker/w{n}-{i}",
                    reason="declared in pool p but not in it on chain",
                    pool="p",
                    pid=7,
                    worker=f"w{n}-{i}",
                    pubkey=f"{i:064x}",
                    signer="operator",
                )
                for i in range(1000)
            )
            return result.plan.model_copy(update={"actions": actions})

        gc.collect()
        tracemalloc.start()
        try:
            for n in range(control.PLANS_KEPT):
                service.publish_pass(PassResult(result.observed, plan_of(n)))
            gc.collect()
            held = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        # 16 plans of 1,000 actions held ~23 MB as objects; now the kept plans stay within
        # the budget (the rest: the hub's document of the newest plan).
        assert held < 3 * budget
        assert sum(len(d) for d in service._plans.values()) <= budget
        newest = service.kept_plan(next(reversed(service._plans)))
        assert newest is not None and newest.actions == plan_of(control.PLANS_KEPT - 1).actions
    finally:
        await service.close()
