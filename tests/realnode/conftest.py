"""The chain peers the generic chain tests run against, one session each.

``chopsticks`` runs the real Asset Hub runtime (marked ``realnode``: select it with
``-m realnode``); ``devnet`` is poolkeeper's own chain simulator. Where chopsticks cannot
run (no node, ``npm install`` not done in tools/chopsticks), its tests skip and say why,
except under CI (``CI`` set), where the real runtime is required and they fail instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from substrateinterface import SubstrateInterface

from tests.peers import ChainPeer, chopsticks_peer, devnet_peer
from tests.realnode import _chopsticks

_PEER_REPORTS: list[str] = []
"""Start time and memory of the real-runtime peer, printed after the test summary."""


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


@pytest.fixture(
    scope="session",
    params=[
        pytest.param("chopsticks", marks=pytest.mark.realnode),
        pytest.param("devnet"),
    ],
)
def peer(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ChainPeer]:
    if request.param == "devnet":
        with devnet_peer() as devnet:
            yield devnet
        return
    reason = _chopsticks.unavailable_reason()
    if reason is not None:
        if _in_ci():
            pytest.fail(f"real-runtime tests are required under CI: {reason}")
        pytest.skip(f"real-runtime tests skipped: {reason}")
    with chopsticks_peer(tmp_path_factory.mktemp("chopsticks")) as chopsticks:
        yield chopsticks
        _PEER_REPORTS.append(chopsticks.report())


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in _PEER_REPORTS:
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def substrate(peer: ChainPeer) -> Iterator[SubstrateInterface]:
    client = peer.connect()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(autouse=True)
def _known_deviation(request: pytest.FixtureRequest, peer: ChainPeer) -> None:
    reason = peer.known_deviations.get(getattr(request.node, "originalname", ""))
    if reason is not None:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))
