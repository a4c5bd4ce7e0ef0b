"""`poolkeeper plan`: inventory + snapshot in, plan out, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from poolkeeper.cli import app
from poolkeeper.model.observed import ChainHead, Observed, ObservedAccount
from poolkeeper.observe.snapshot import dump_snapshot
from poolkeeper.render import NO_CHANGES, plan_from_document

ROOT = Path(__file__).resolve().parents[3]
INVENTORY = ROOT / "inventory"
SNAPSHOT = ROOT / "examples" / "observed-devnet-fresh.json"
TREASURY = "447okwgqnpaKuseEXECNcXK8KUMPpgM1cjczMvKx9T7c5MXr"

runner = CliRunner()


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _converged(tmp_path: Path) -> tuple[Path, Path]:
    inventory = tmp_path / "inv"
    inventory.mkdir()
    (inventory / "accounts.yaml").write_text(
        f"accounts:\n  - {{name: treasury, role: watch, address: {TREASURY}}}\n"
    )
    observed = Observed.model_validate(
        {
            "read_at": "2026-01-01T00:00:00Z",
            "head": ChainHead(best_number=5, finalized_number=3),
            "accounts": {TREASURY: ObservedAccount(address=TREASURY, free=10**15)},
        }
    )
    snapshot = tmp_path / "observed.json"
    snapshot.write_text(dump_snapshot(observed))
    return inventory, snapshot


def test_plan_of_the_example_against_a_fresh_devnet() -> None:
    code, out, _ = _run("plan", str(INVENTORY), "--observed", str(SNAPSHOT))
    assert code == 0
    assert "account owner\n    + derive_account:" in out
    assert "pool pool-a (pid 0)\n  ~ set_cap (pid 0, 1000000 PHA):" in out
    assert "  ~ set_payout_pref (pid 0, 50000 Permill): commission on chain is not set" in out
    assert "\n  worker rack-a-01\n    + start_relay:" in out
    # the example declares cap and commission of both pools: a fresh chain has neither
    assert out.rstrip().endswith("Plan: 13 to add, 4 to change, 0 to remove, 0 alerts.")
    assert "\x1b[" not in out


def test_detailed_exitcode_is_2_with_changes_and_0_without(tmp_path: Path) -> None:
    code, _, _ = _run("plan", str(INVENTORY), "--observed", str(SNAPSHOT), "--detailed-exitcode")
    assert code == 2
    inventory, snapshot = _converged(tmp_path)
    code, out, _ = _run("plan", str(inventory), "--observed", str(snapshot), "--detailed-exitcode")
    assert code == 0
    assert out.strip() == NO_CHANGES


def test_json_output_and_saved_plan_round_trip(tmp_path: Path) -> None:
    saved = tmp_path / "plan.json"
    code, out, _ = _run(
        "plan", str(INVENTORY), "--observed", str(SNAPSHOT), "--json", "-o", str(saved)
    )
    assert code == 0
    document = json.loads(out)
    assert document["format_version"] == 1
    assert document["summary"]["add"] == 13
    assert document["summary"]["change"] == 4  # cap and commission of both pools
    saved_document = json.loads(saved.read_text())
    assert saved_document["plan"] == document
    assert saved_document["format_version"] == 1
    assert len(saved_document["inventory_digest"]) == 64
    assert saved_document["block"] == 12
    plan = plan_from_document(document)
    assert len(plan.actions) == 17
    assert plan.actions[0].id == "derive_account:account/funding"


def test_colour_when_asked() -> None:
    code, out, _ = _run("plan", str(INVENTORY), "--observed", str(SNAPSHOT), "--color")
    assert code == 0
    assert "\x1b[32m+\x1b[0m start_relay" in out


def test_target_limits_and_warns() -> None:
    code, out, _ = _run(
        "plan", str(INVENTORY), "--observed", str(SNAPSHOT), "--target", "worker/rack-b-04"
    )
    assert code == 0
    assert out.startswith("Warning: The plan is limited by --target worker/rack-b-04")
    assert "rack-a-01" not in out
    assert "Plan: 1 to add, 0 to change, 0 to remove, 0 alerts." in out


def test_bad_target_is_an_error() -> None:
    code, _, err = _run("plan", str(INVENTORY), "--observed", str(SNAPSHOT), "--target", "rack")
    assert code == 1
    assert "pool/<name-or-pid> or worker/<name>" in err


def test_bad_snapshots_exit_1_with_a_clear_message(tmp_path: Path) -> None:
    code, _, err = _run("plan", str(INVENTORY), "--observed", str(tmp_path / "none.json"))
    assert code == 1
    assert "cannot read snapshot" in err
    broken = tmp_path / "broken.json"
    broken.write_text('{"head": {"best_number": "x"}}')
    code, out, err = _run("plan", str(INVENTORY), "--observed", str(broken))
    assert code == 1
    assert "is not a valid observed-state snapshot" in err
    assert "head.best_number" in err
    assert "read_at: Field required" in err
    assert out == ""


def test_invalid_inventory_exits_1_and_plans_nothing(tmp_path: Path) -> None:
    inventory = tmp_path / "inv"
    inventory.mkdir()
    (inventory / "w.yaml").write_text("workers:\n  - {name: w1, endpoint: nope, pool: ghost}\n")
    code, out, err = _run("plan", str(inventory), "--observed", str(SNAPSHOT))
    assert code == 1
    assert "w.yaml:2:" in err
    assert "Plan:" not in out
