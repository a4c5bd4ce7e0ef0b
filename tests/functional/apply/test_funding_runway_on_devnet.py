"""After an apply on the devnet, the audit log's fees give each signer a runway.

``status`` (human and ``--json``) shows the fee burn and the days left, ``plan`` raises
``FundingRunwayLow`` for the signers under the declared number of days (here an absurd
one, so every signer that paid is under it), and the alert is named in both.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.functional.apply._world import World


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = World(tmp_path_factory.mktemp("runway"), 2, block_time=0.3, cool_down=3)
    try:
        yield w
    finally:
        w.close()


def test_status_and_plan_show_the_runway_after_fees_were_paid(world: World) -> None:
    before = world.cli("status", str(world.inventory), "--json")
    assert before.returncode == 0, before.stdout + before.stderr
    assert all(a["fees_per_day"] is None for a in json.loads(before.stdout)["accounts"])
    world.apply("--target", "worker/w00", wait=120)
    settings = world.inventory / "settings.yaml"
    settings.write_text(
        settings.read_text() + "  runway: {alert_below_days: 1000000, window_days: 7}\n"
    )
    done = world.cli("status", str(world.inventory), "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads(done.stdout)
    paid = {a["account"]: a for a in document["accounts"] if a["fees_per_day"]}
    # the relay signer registered w00; operator-a added and started it (through the proxy)
    assert {"relay-signer", "operator-a"} <= set(paid), document["accounts"]
    for account in paid.values():
        assert account["fees_per_day"] > 0 and 0 < account["runway_days"] < 1000000, account
    named = {a["target"] for a in document["alerts"] if a.get("name") == "FundingRunwayLow"}
    assert {f"account/{name}" for name in paid} <= named, document["alerts"]
    text = world.cli("status", str(world.inventory))
    assert "runway " in text.stdout and "/day of fees)" in text.stdout, text.stdout
    assert "FundingRunwayLow: funding runway" in text.stdout, text.stdout
    plan = world.plan_json()
    assert any(a.get("name") == "FundingRunwayLow" for a in plan["alerts"]), plan["alerts"]
