"""The CLI's event loop: uvloop when installed, the standard loop on request."""

from __future__ import annotations

import asyncio
import sys

import pytest

from poolkeeper import _eventloop
from poolkeeper.cli._live import run_async


async def running_loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_the_cli_runs_its_commands_on_uvloop_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(_eventloop.ENV, raising=False)
    assert _eventloop.loop_name() == "uvloop"
    assert run_async(running_loop_module()).startswith("uvloop")


@pytest.mark.parametrize("value", ["asyncio", " AsyncIO "])
def test_poolkeeper_event_loop_asyncio_picks_the_standard_loop(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(_eventloop.ENV, value)
    assert _eventloop.loop_name() == "asyncio"
    assert run_async(running_loop_module()).startswith("asyncio")


def test_without_uvloop_installed_the_standard_loop_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(_eventloop.ENV, raising=False)
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import fails
    assert _eventloop.loop_name() == "asyncio"
    assert run_async(running_loop_module()).startswith("asyncio")
