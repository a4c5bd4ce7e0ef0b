"""``settings.ha.tls`` and ``--ha etcds://``: files read and checked with the setting named
(a readable private key refused as the master secret's file would be), the URL's scheme and
the settings agreeing, and gRPC's handshake failures put in an operator's words."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from poolkeeper.ha.etcd import explain, parse_ha_url
from poolkeeper.ha.setup import target_of
from poolkeeper.ha.tls import TlsConfigError, TlsMaterial, load_tls
from poolkeeper.model.desired import Desired, HaSettings, HaTlsSettings, Settings, SourceRef

CERT = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
KEY = b"-----BEGIN PRIVATE KEY-----\nsecret-bytes\n-----END PRIVATE KEY-----\n"


def files(root: Path, key_mode: int = 0o600) -> HaTlsSettings:
    (root / "ca.pem").write_bytes(CERT)
    (root / "client.pem").write_bytes(CERT)
    key = root / "client-key.pem"
    key.write_bytes(KEY)
    key.chmod(key_mode)
    return HaTlsSettings(ca="ca.pem", cert="client.pem", key=str(key))


def test_files_relative_to_the_inventory_are_read(tmp_path: Path) -> None:
    material = load_tls(files(tmp_path), tmp_path, "settings.yaml:1:1")
    assert (material.ca, material.cert, material.key) == (CERT, CERT, KEY)
    assert material.ca_path == str(tmp_path / "ca.pem")
    assert "secret-bytes" not in repr(material)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_a_key_others_may_read_is_refused_without_its_content(tmp_path: Path, mode: int) -> None:
    with pytest.raises(TlsConfigError) as error:
        load_tls(files(tmp_path, mode), tmp_path, "settings.yaml:1:1")
    text = str(error.value)
    assert text.startswith("settings.ha.tls.key (settings.yaml:1:1): ")
    assert f"has mode {mode:04o}" in text and "chmod 600" in text
    assert "secret" not in text


def test_missing_unreadable_and_non_pem_files_are_named(tmp_path: Path) -> None:
    settings = files(tmp_path)
    with pytest.raises(TlsConfigError, match=r"settings.ha.tls.ca \(s.yaml:2:3\): .* does not"):
        load_tls(settings.model_copy(update={"ca": "nowhere.pem"}), tmp_path, "s.yaml:2:3")
    (tmp_path / "ca.pem").write_bytes(b"not a certificate")
    with pytest.raises(TlsConfigError, match="does not hold PEM certificate"):
        load_tls(settings, tmp_path, "")
    (tmp_path / "ca.pem").write_bytes(CERT)
    (tmp_path / "client-key.pem").write_bytes(CERT)
    with pytest.raises(TlsConfigError, match="does not hold a PEM private key"):
        load_tls(settings, tmp_path, "")
    (tmp_path / "dir.pem").mkdir()
    with pytest.raises(TlsConfigError, match="is a directory"):
        load_tls(settings.model_copy(update={"cert": "dir.pem"}), tmp_path, "")
    if os.geteuid() != 0:  # root reads anything
        (tmp_path / "client.pem").chmod(0)
        with pytest.raises(TlsConfigError, match="permission denied"):
            load_tls(settings, tmp_path, "")


def test_no_files_means_the_system_roots(tmp_path: Path) -> None:
    material = load_tls(HaTlsSettings(), tmp_path, "")
    assert material == TlsMaterial(ca=None, cert=None, key=None)


def test_the_url_scheme_selects_tls() -> None:
    assert parse_ha_url("etcds://a:1,b:2") == ((("a", 1), ("b", 2)), True)
    assert parse_ha_url("etcd://a:1") == ((("a", 1),), False)
    with pytest.raises(ValueError, match="or etcds:// for TLS"):
        parse_ha_url("https://a:1")


def desired(tls: HaTlsSettings | None, endpoints: tuple[str, ...] = ()) -> Desired:
    source = SourceRef(file="settings.yaml", line=1, col=1)
    ha = HaSettings(endpoints=endpoints, tls=tls)
    return Desired(settings=Settings(ha=ha, source=source))


def test_scheme_and_settings_must_agree(tmp_path: Path) -> None:
    settings = files(tmp_path)
    with pytest.raises(ValueError, match=r"plaintext but settings.ha.tls is set \(settings"):
        target_of(desired(settings), "etcd://a:1", tmp_path)
    assert target_of(desired(settings), "etcds://a:1", tmp_path).tls is not None
    assert target_of(desired(None), "etcd://a:1", tmp_path).tls is None
    assert target_of(desired(None), "etcds://a:1", tmp_path).tls == TlsMaterial(None, None, None)
    # Without --ha, the settings' endpoints speak TLS when settings.ha.tls is given.
    assert target_of(desired(settings, ("a:1",)), None, tmp_path).tls is not None
    assert target_of(desired(None, ("a:1",)), None, tmp_path).tls is None


VERIFY = (
    "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:2379: Tls "
    "handshake failed (TSI_PROTOCOL_FAILURE): SSL_ERROR_SSL: error:1000007d:SSL routines:"
    "OPENSSL_internal:CERTIFICATE_VERIFY_FAILED: unable to get local issuer certificate: OK"
)


def test_handshake_failures_in_words() -> None:
    tls = TlsMaterial(ca=CERT, cert=None, key=None, ca_path="/etc/ca.pem")
    text, fault = explain(VERIFY, "h", tls)
    assert fault
    assert text == (
        "TLS handshake failed: etcd's certificate is not signed by the CA of "
        "settings.ha.tls.ca (/etc/ca.pem) (unable to get local issuer certificate)"
    )
    text, _ = explain(VERIFY, "h", TlsMaterial(None, None, None))
    assert "the system's CA certificates (set settings.ha.tls.ca)" in text
    text, fault = explain("...: Unwrap failed (TSI_DATA_CORRUPTED)", "h", tls)
    assert fault and "etcd refused this client" in text
    text, fault = explain("...: Hostname Verification Check failed.", "h", tls)
    assert fault and "does not name h" in text
    text, fault = explain("...: Handshake read failed (Socket closed)", "h", tls)
    assert fault and "use etcd://" in text
    text, fault = explain("...: Socket closed", "h", None)
    assert not fault and "use etcds://" in text
    local = "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:2379: "
    text, fault = explain(local + "Failed to create security handshaker.", "h", tls)
    assert fault and "settings.ha.tls.cert and key are not a usable pair" in text
    text, fault = explain("...: Connection refused", "h", tls)
    assert (text, fault) == ("...: Connection refused", False)


def test_the_stamp_changes_with_a_rewrite_a_rename_or_a_removal(tmp_path: Path) -> None:
    from poolkeeper.ha.tls import TlsSource

    source = TlsSource(files(tmp_path), tmp_path, "settings.yaml:1:1")
    material = source.load()
    assert material.stamp == source.stamp() != ()
    assert material == load_tls(files(tmp_path), tmp_path, "")  # the stamp is not content
    before = source.stamp()
    (tmp_path / "ca.pem").write_bytes(CERT + CERT)  # rewritten in place
    assert source.stamp() != before
    before = source.stamp()
    new = tmp_path / "client.pem.new"
    new.write_bytes(CERT)
    os.replace(new, tmp_path / "client.pem")  # renamed over (a new inode)
    assert source.stamp() != before
    before = source.stamp()
    (tmp_path / "client.pem").unlink()
    assert source.stamp() != before
    with pytest.raises(TlsConfigError, match="does not exist"):
        source.load()


def test_refused_tls_files_are_a_warning_condition() -> None:
    from datetime import UTC, datetime

    from poolkeeper.model.conditions import Conditions, process_alerts, with_etcd_tls

    now = datetime(2026, 12, 6, tzinfo=UTC)
    refused = with_etcd_tls(Conditions(), now, "new settings.ha.tls files refused: x")
    (alert,) = process_alerts(refused)
    assert alert.target == "process/HaEtcdTls" and alert.severity.value == "warn"
    assert alert.message == "TlsFilesRefused: new settings.ha.tls files refused: x"
    assert not process_alerts(with_etcd_tls(refused, now, ""))
