"""Front ends by entry point: the devnet falls back to its module, the TUI does not."""

from __future__ import annotations

import importlib.metadata

import pytest

from poolkeeper._frontends import DEVNET, TUI, FrontEndMissing, load_front_end


def test_without_an_entry_point_the_devnet_is_taken_from_the_source_tree(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **_: [])
    from poolkeeper_devnet.command import run_devnet

    assert load_front_end(DEVNET) is run_devnet


def test_without_an_entry_point_the_tui_is_missing_even_if_importable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **_: [])
    with pytest.raises(FrontEndMissing, match=r"^error: the TUI front end is not installed: pip"):
        load_front_end(TUI)
