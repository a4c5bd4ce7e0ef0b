"""The repository works on a fresh clone: the CI guard and the set-up script's repairs.

A committed link to a folder of the machine a commit was made on (once `.venv`) passes
CI on that machine and breaks every other one; these tests make such a tree fail loudly.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
GUARD = ROOT / "scripts" / "guard-tree"


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@example.invalid", "-c", "user.name=t", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def guarded(repo: Path) -> subprocess.CompletedProcess[str]:
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "tree under test")
    return subprocess.run([str(GUARD), str(repo)], capture_output=True, text=True, check=False)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "README.md").write_text("x\n")
    (repo / "docs").mkdir()
    return repo


def test_a_clean_tree_with_an_inner_relative_link_passes(repo: Path) -> None:
    os.symlink("../README.md", repo / "docs" / "readme-link")
    done = guarded(repo)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("name", "target", "says"),
    [
        (".venv", "/work/venv", "absolute target: .venv -> /work/venv"),
        ("docs/out", "../../elsewhere", "leaving the repository: docs/out -> ../../elsewhere"),
    ],
)
def test_a_tracked_link_to_outside_the_repository_fails_naming_it(
    repo: Path, name: str, target: str, says: str
) -> None:
    os.symlink(target, repo / name)
    done = guarded(repo)
    assert done.returncode == 1
    assert says in done.stderr


@pytest.mark.parametrize(
    "path", [".venv/bin/python", "node_modules/x/index.js", ".poolkeeper/journal.sqlite"]
)
def test_a_tracked_environment_or_state_folder_fails_naming_it(repo: Path, path: str) -> None:
    file = repo / path
    file.parent.mkdir(parents=True)
    file.write_text("")
    git(repo, "add", "-f", path)
    done = guarded(repo)
    assert done.returncode == 1
    assert f"environment, cache or state path: {path}" in done.stderr


def test_ci_runs_the_guard_before_anything_else() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    first_command = next(i for i, line in enumerate(lines) if not line.startswith(("set ", "cd ")))
    assert lines[first_command] == "./scripts/guard-tree"


def test_the_repository_itself_passes_the_guard() -> None:
    done = subprocess.run([str(GUARD), str(ROOT)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(shutil.which("python3") is None, reason="no python3 on PATH to build a venv")
def test_setup_replaces_a_dangling_venv_link(tmp_path: Path) -> None:
    # Only the repair step of scripts/setup runs: the venv is made, then pip is stubbed out.
    tree = tmp_path / "tree"
    (tree / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "setup", tree / "scripts" / "setup")
    os.symlink("/nonexistent/venv-of-another-machine", tree / ".venv")
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    env = {**os.environ, "PATH": f"{fake_bin}:{os.environ['PATH']}"}
    env.pop("POOLKEEPER_VENV", None)
    script = (tree / "scripts" / "setup").read_text()
    cut = script.index('"$VENV/bin/python" -m pip')
    (tree / "scripts" / "setup").write_text(script[:cut] + 'echo "repaired $VENV"\n')
    done = subprocess.run(
        ["bash", str(tree / "scripts" / "setup")],
        check=False,
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "replacing .venv" in done.stderr
    assert not (tree / ".venv").is_symlink()
    assert (tree / ".venv" / "bin" / "python").exists()
