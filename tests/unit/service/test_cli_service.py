"""``poolkeeper --version``; usage errors exit 1, never 2 (2 means "changes" under
``plan --detailed-exitcode``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from poolkeeper import __version__

SRC = Path(__file__).resolve().parents[3] / "src"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "poolkeeper", *args],
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": str(SRC), "PATH": ""},
        timeout=60,
    )


def test_root_version_option() -> None:
    out = _cli("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"poolkeeper {__version__}"


@pytest.mark.parametrize(
    "args",
    [
        ("plan", "--no-such-option"),
        ("no-such-command",),
        ("run", "--log-format", "xml"),
        ("plan", "--detailed-exitcode", "a", "b"),
    ],
)
def test_usage_errors_exit_1(args: tuple[str, ...]) -> None:
    out = _cli(*args)
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr
