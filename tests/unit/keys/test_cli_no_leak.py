"""The accounts commands, run as an operator would, never show the master secret.

Runs the real console entry point in a subprocess with a known mnemonic in the
environment, then searches every byte of stdout, stderr and every file written
for the mnemonic (any three consecutive words of it), its seed and the derived
private keys.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from substrateinterface import Keypair

from poolkeeper.keys import Mnemonic, secret_from_file

from .conftest import DEV_PHRASE

SRC = Path(__file__).resolve().parents[3] / "src"
LABELS = ("operator//pool-a", "owner//pool-a", "relay//0")
INVENTORY = """\
# test inventory
accounts:
  - name: op-a        # operator
    role: operator
    derivation: operator//pool-a
  - name: owner-a
    role: owner
    derivation: owner//pool-a
    warn_below: 50 PHA
  - name: relay
    role: relay_signer
    derivation: relay//0
"""


def _forbidden(phrase: str, labels: tuple[str, ...]) -> list[re.Pattern[str]]:
    words = phrase.split()
    patterns = [
        re.compile(r"\s+".join(words[i : i + 3]), re.IGNORECASE) for i in range(len(words) - 2)
    ]
    seed = Keypair.create_from_mnemonic(phrase).seed_hex
    seed_hex = seed.hex() if isinstance(seed, bytes) else seed.removeprefix("0x")
    secrets = [seed_hex]
    for label in labels:
        pair = Keypair.create_from_uri(f"{phrase}//poolkeeper//{label}")
        secrets.append(pair.private_key[:32].hex())
    patterns += [re.compile(re.escape(s), re.IGNORECASE) for s in secrets]
    return patterns


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "poolkeeper", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_accounts_commands_never_show_the_secret(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory"
    inventory.mkdir()
    (inventory / "accounts.yaml").write_text(INVENTORY)
    env = {
        "PYTHONPATH": str(SRC),
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "POOLKEEPER_MNEMONIC": DEV_PHRASE,
        "COLUMNS": "200",
    }
    runs = {
        "generate --check": (["accounts", "generate", str(inventory), "--check"], 2),
        "generate": (["accounts", "generate", str(inventory)], 0),
        "generate again": (["accounts", "generate", str(inventory)], 0),
        "new-secret": (["accounts", "new-secret"], 0),
        "new-secret again": (["accounts", "new-secret"], 1),
    }
    for fmt in ("table", "csv", "json"):
        runs[f"list {fmt}"] = (["accounts", "list", str(inventory), "--format", fmt], 0)
    outputs: dict[str, str] = {}
    for name, (args, expected_rc) in runs.items():
        done = _run(args, env)
        assert done.returncode == expected_rc, (name, done.stdout, done.stderr)
        outputs[name] = done.stdout + done.stderr

    # A wrong secret and a mismatching address go through the error paths.
    (inventory / "accounts.yaml").write_text(
        (inventory / "accounts.yaml").read_text().replace("relay//0", "relay//1")
    )
    mismatch = _run(["accounts", "generate", str(inventory)], env)
    assert mismatch.returncode == 1 and mismatch.stdout == ""
    assert "is not the address of derivation 'relay//1'" in mismatch.stderr
    outputs["mismatch"] = mismatch.stdout + mismatch.stderr
    broken = DEV_PHRASE.replace("walk", "zoo")
    bad = _run(["accounts", "generate", str(inventory)], {**env, "POOLKEEPER_MNEMONIC": broken})
    assert bad.returncode == 1 and "not a valid BIP39" in bad.stderr
    outputs["bad secret"] = bad.stdout + bad.stderr

    secret_file = tmp_path / "config" / "poolkeeper" / "mnemonic"
    assert secret_file.stat().st_mode & 0o777 == 0o600
    new_mnemonic = secret_from_file(secret_file)
    assert isinstance(new_mnemonic, Mnemonic) and new_mnemonic.word_count == 24
    assert str(secret_file) in outputs["new-secret"]
    assert "Back it up" in outputs["new-secret"]
    assert "refusing to overwrite" in outputs["new-secret again"]

    forbidden = _forbidden(DEV_PHRASE, (*LABELS, "relay//1"))
    forbidden += _forbidden(new_mnemonic.reveal(), ())
    for name, text in outputs.items():
        for pattern in forbidden:
            assert not pattern.search(text), f"{name} output shows a secret"
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p != secret_file]
    assert written, "the commands wrote no file to check"
    for path in written:
        text = path.read_bytes().decode("utf-8", errors="replace")
        for pattern in _forbidden(DEV_PHRASE, LABELS) + _forbidden(new_mnemonic.reveal(), ()):
            assert not pattern.search(text), f"{path} shows a secret"
    # The check can fail: the secret file itself does hold the new words.
    assert any(p.search(secret_file.read_text()) for p in _forbidden(new_mnemonic.reveal(), ()))


CRASH_DURING_DERIVATION = """
import sys
import poolkeeper.keys._derive as derive

def crash(junction):
    raise RuntimeError("unexpected failure while deriving")

derive.junction_chain_code = crash
from poolkeeper.cli import main
sys.argv = ["poolkeeper", "accounts", "generate", sys.argv[1]]
main()
"""


def test_a_crash_while_deriving_shows_no_secret(tmp_path: Path) -> None:
    from poolkeeper.cli import app

    assert app.pretty_exceptions_show_locals is False
    (tmp_path / "accounts.yaml").write_text(INVENTORY)
    done = subprocess.run(
        [sys.executable, "-c", CRASH_DURING_DERIVATION, str(tmp_path)],
        capture_output=True,
        text=True,
        env={
            "PYTHONPATH": str(SRC),
            "PATH": os.environ.get("PATH", ""),
            "POOLKEEPER_MNEMONIC": DEV_PHRASE,
            "COLUMNS": "300",
        },
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "unexpected failure while deriving" in output
    for pattern in _forbidden(DEV_PHRASE, LABELS):
        assert not pattern.search(output)
    seed = Keypair.create_from_mnemonic(DEV_PHRASE).seed_hex
    seed_bytes = seed if isinstance(seed, bytes) else bytes.fromhex(seed.removeprefix("0x"))
    assert repr(seed_bytes)[2:20] not in output
