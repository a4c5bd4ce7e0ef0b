"""``settings.ha.auth``: the etcd password read from a 0600 file (refused, with the setting
and the file named and never its content, when others may read it) or from an environment
variable; etcd's refusals put in an operator's words, telling a configuration fault (ends
``run``) from an expired token (authenticate again and resend)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from poolkeeper.ha.auth import AuthConfigError, load_auth
from poolkeeper.ha.etcd import explain_auth
from poolkeeper.ha.setup import target_of
from poolkeeper.keys import redact
from poolkeeper.model.desired import Desired, HaAuthSettings, HaSettings, Settings, SourceRef

PASSWORD = "correct-horse-7f3a"


def password_file(root: Path, text: str = PASSWORD + "\n", mode: int = 0o600) -> Path:
    path = root / "etcd-password"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_a_password_file_relative_to_the_inventory_is_read(tmp_path: Path) -> None:
    password_file(tmp_path)
    auth = load_auth(HaAuthSettings(user="pk", password_file="etcd-password"), tmp_path, "")
    assert auth is not None and auth.user == "pk"
    assert auth.password.reveal() == PASSWORD  # the line ending is not part of it
    assert auth.source == f"settings.ha.auth.password_file: {tmp_path / 'etcd-password'}"
    for shown in (repr(auth), str(auth), f"{auth.password}"):
        assert PASSWORD not in shown
    # Registered with the log filter as soon as it is read.
    assert PASSWORD not in redact(f"connecting with {PASSWORD}")


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_a_password_file_others_may_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = password_file(tmp_path, mode=mode)
    with pytest.raises(AuthConfigError) as error:
        load_auth(HaAuthSettings(user="pk", password_file=str(path)), tmp_path, "s.yaml:3:5")
    text = str(error.value)
    assert text.startswith(f"settings.ha.auth.password_file (s.yaml:3:5): {path} has mode ")
    assert f"{mode:04o}" in text and f"chmod 600 {path}" in text
    assert PASSWORD not in text


def test_missing_empty_and_multiline_password_files_are_named(tmp_path: Path) -> None:
    settings = HaAuthSettings(user="pk", password_file="etcd-password")
    with pytest.raises(AuthConfigError, match=r"password_file \(w\): .*etcd-password does not"):
        load_auth(settings, tmp_path, "w")
    password_file(tmp_path, "\n")
    with pytest.raises(AuthConfigError, match="holds no password"):
        load_auth(settings, tmp_path, "")
    password_file(tmp_path, f"{PASSWORD}\nsecond\n")
    with pytest.raises(AuthConfigError, match="more than one line") as error:
        load_auth(settings, tmp_path, "")
    assert PASSWORD not in str(error.value)
    password_file(tmp_path, "x" * 5000)
    with pytest.raises(AuthConfigError, match="5000 bytes"):
        load_auth(settings, tmp_path, "")
    (tmp_path / "etcd-password").unlink()
    (tmp_path / "etcd-password").mkdir()
    with pytest.raises(AuthConfigError, match="is a directory"):
        load_auth(settings, tmp_path, "")
    if os.geteuid() != 0:  # root reads anything
        (tmp_path / "etcd-password").rmdir()
        password_file(tmp_path, mode=0)
        with pytest.raises(AuthConfigError, match="permission denied"):
            load_auth(settings, tmp_path, "")


def test_the_password_from_an_environment_variable(tmp_path: Path) -> None:
    settings = HaAuthSettings(user="pk", password_env="ETCD_PASSWORD")
    auth = load_auth(settings, tmp_path, "", {"ETCD_PASSWORD": PASSWORD})
    assert auth is not None and auth.password.reveal() == PASSWORD
    assert auth.source == "settings.ha.auth.password_env: environment variable ETCD_PASSWORD"
    with pytest.raises(AuthConfigError, match="environment variable ETCD_PASSWORD is not set"):
        load_auth(settings, tmp_path, "", {})
    with pytest.raises(AuthConfigError, match="holds no password"):
        load_auth(settings, tmp_path, "", {"ETCD_PASSWORD": ""})


def test_exactly_one_password_source(tmp_path: Path) -> None:
    for settings in (
        HaAuthSettings(user="pk"),
        HaAuthSettings(user="pk", password_file="f", password_env="E"),
    ):
        with pytest.raises(AuthConfigError, match="give exactly one"):
            load_auth(settings, tmp_path, "s.yaml:1:1")
    assert load_auth(None, tmp_path, "") is None


def test_the_target_carries_the_user_with_tls_or_without(tmp_path: Path) -> None:
    password_file(tmp_path)
    ha = HaSettings(auth=HaAuthSettings(user="pk", password_file="etcd-password"))
    source = SourceRef(file="settings.yaml", line=1, col=1)
    desired = Desired(settings=Settings(ha=ha, source=source))
    target = target_of(desired, "etcd://a:1", tmp_path)
    assert target.auth is not None and target.auth.user == "pk" and target.tls is None
    assert target_of(desired, "etcds://a:1", tmp_path).auth == target.auth
    (tmp_path / "etcd-password").chmod(0o644)
    with pytest.raises(ValueError, match=r"settings.ha.auth.password_file \(settings.yaml:1:1\)"):
        target_of(desired, "etcd://a:1", tmp_path)


def test_etcd_refusals_in_words() -> None:
    auth = load_auth(HaAuthSettings(user="pk", password_env="P"), Path("/"), "", {"P": PASSWORD})
    failed = "etcdserver: authentication failed, invalid user ID or password"
    text, kind = explain_auth(failed, auth) or ("", "")
    assert kind == "fault"
    assert text == (
        "etcd refused user 'pk': unknown user or wrong password; password from "
        "settings.ha.auth.password_env: environment variable P"
    )
    assert PASSWORD not in text
    # An expired (or forgotten: etcd restarted) token: authenticate again.
    assert explain_auth("etcdserver: invalid auth token", auth) == (
        "etcd refused the auth token (expired or forgotten)",
        "again",
    )
    assert (explain_auth("etcdserver: revision of auth store is old", auth) or "")[1] == "again"
    # etcd enabled auth since this client connected without a user: authenticate.
    assert (explain_auth("etcdserver: user name is empty", auth) or "")[1] == "again"
    # etcd requires a user and none is configured: a configuration fault.
    text, kind = explain_auth("etcdserver: user name is empty", None) or ("", "")
    assert kind == "fault" and "set settings.ha.auth" in text
    text, kind = explain_auth("etcdserver: permission denied", auth) or ("", "")
    assert kind == "fault"
    assert text == (
        "etcd denied user 'pk' access: grant its role readwrite on the prefix "
        "/poolkeeper/<cluster>/ (settings.ha.cluster; docs/ha.md)"
    )
    assert explain_auth("failed to connect to all addresses", auth) is None


def test_the_password_file_is_read_again_on_demand(tmp_path: Path) -> None:
    path = password_file(tmp_path)
    auth = load_auth(HaAuthSettings(user="pk", password_file=str(path)), tmp_path, "")
    assert auth is not None and auth.password_file == path
    password_file(tmp_path, "rotated-pw\n")
    fresh = auth.reread()
    assert fresh is not None and fresh.password.reveal() == "rotated-pw"
    assert fresh.user == "pk" and fresh.source == auth.source
    path.chmod(0o644)  # unusable now: the password in use stands
    assert auth.reread() is None
    env = load_auth(HaAuthSettings(user="pk", password_env="P"), tmp_path, "", {"P": "x"})
    assert env is not None and env.reread() is None  # a process's environment is fixed
