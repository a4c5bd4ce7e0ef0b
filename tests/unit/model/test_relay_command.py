"""External relay argv templates: placeholders, literal braces, keys written in clear."""

from __future__ import annotations

import pytest

from poolkeeper.model.desired import Settings, WorkerSpec, external_relay_command
from poolkeeper.model.relay_command import (
    expand,
    placeholders_in,
    secret_literal_problem,
    template_problem,
)


def test_expand_fills_every_placeholder_and_keeps_literal_braces() -> None:
    template = ("pherry", "--pruntime-endpoint", "{endpoint}", '--json={{"w": "{worker}"}}')
    values = {"endpoint": "http://10.0.0.1:8000", "worker": "w1"}
    assert expand(template, values) == (
        "pherry",
        "--pruntime-endpoint",
        "http://10.0.0.1:8000",
        '--json={"w": "w1"}',
    )
    assert placeholders_in(template[3]) == ["worker"]
    with pytest.raises(KeyError):
        expand(("{operator}",), values)


@pytest.mark.parametrize(
    ("argument", "problem"),
    [
        ("{endpoint}", None),
        ("--x={{literal}}", None),
        ("{endpont}", "unknown placeholder {endpont}"),
        ("{chain", "unbalanced '{'"),
        ("chain}", "unbalanced '}'"),
    ],
)
def test_template_problems(argument: str, problem: str | None) -> None:
    found = template_problem(argument)
    assert (found is None) if problem is None else (found is not None and problem in found)


@pytest.mark.parametrize(
    ("template", "index", "flagged"),
    [
        (("pherry", "-m", "hunter2"), 2, True),
        (("pherry", "--mnemonic=hunter2"), 1, True),
        (("pherry", "--inject-key", "00ff"), 2, True),
        (("pherry", "-m", "//Alice"), 2, False),
        (("sh", "-c", 'exec pherry -m "$(cat {key_file})"'), 2, False),
        (("pherry", "-m", "$POOLKEEPER_RELAY_SURI"), 2, False),
        (("pherry", "--operator", "hunter2"), 2, False),
    ],
)
def test_keys_in_clear_are_flagged_without_quoting_them(
    template: tuple[str, ...], index: int, flagged: bool
) -> None:
    problem = secret_literal_problem(template, index)
    assert (problem is not None) is flagged
    assert problem is None or "hunter2" not in problem


def test_worker_command_overrides_settings_and_implies_external() -> None:
    settings = Settings.model_validate({"relay": {"external_command": ["pherry", "{endpoint}"]}})
    internal = WorkerSpec(name="a", endpoint="http://h:1")
    assert external_relay_command(settings, internal) is None  # settings mode is internal
    chosen = WorkerSpec.model_validate(
        {"name": "b", "endpoint": "http://h:2", "relay": {"mode": "external"}}
    )
    assert external_relay_command(settings, chosen) == ("pherry", "{endpoint}")
    own = WorkerSpec.model_validate(
        {"name": "c", "endpoint": "http://h:3", "relay": {"external_command": ["mine"]}}
    )
    assert external_relay_command(settings, own) == ("mine",)
    everyone = settings.model_copy(
        update={"relay": settings.relay.model_copy(update={"mode": "external"})}
    )
    assert external_relay_command(everyone, internal) == ("pherry", "{endpoint}")
    opted_out = WorkerSpec.model_validate(
        {"name": "d", "endpoint": "http://h:4", "relay": {"mode": "internal"}}
    )
    assert external_relay_command(everyone, opted_out) is None


def test_relaychain_placeholder_expands_like_the_others() -> None:
    template = ("pherry", "--parachain", "--relaychain-ws-endpoint", "{relaychain}")
    assert template_problem(template[3]) is None
    assert expand(template, {"relaychain": "ws://127.0.0.1:9945"})[3] == "ws://127.0.0.1:9945"
