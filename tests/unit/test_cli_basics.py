"""The console entry point starts and reports its version."""

from __future__ import annotations

import subprocess
import sys

from poolkeeper import __version__


def test_version_command_prints_package_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "poolkeeper", "version"],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": "src", "PATH": ""},
    )
    assert out.stdout.strip() == f"poolkeeper {__version__}"
