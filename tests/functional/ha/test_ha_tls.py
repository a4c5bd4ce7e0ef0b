"""``run --ha etcds://…`` against a real etcd serving TLS with client-certificate auth
(certificates made in the test) and the devnet: the owner's lease key is in etcd, its
journal records go through TLS, a standby takes over when the owner is killed mid-apply
with no call executed twice on chain; and every TLS misconfiguration an operator can make
(wrong CA, no client certificate, a readable key, a missing file, plaintext URL with TLS
settings) ends ``run`` at once with a message naming it, never a traceback."""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip(
    "cryptography", reason="the TLS tests make their certificates with 'cryptography'"
)

from poolkeeper._crash_points import ENV
from poolkeeper.ha.etcd import EtcdBackend, EtcdTlsError
from poolkeeper.ha.tls import TlsMaterial, load_tls
from poolkeeper.model.desired import HaTlsSettings
from tests.functional._webhook import Hook
from tests.functional.apply._world import World
from tests.functional.ha._etcd import EtcdCluster, etcd_binary
from tests.functional.ha._proxy import TcpProxy
from tests.functional.ha._tls import TlsFiles, client_pair, make_tls_files
from tests.functional.ha.test_ha_failover import (
    LOCK_DELAY,
    TTL,
    Runner,
    converged,
    start,
    wait_until,
)

pytestmark = pytest.mark.slow

if etcd_binary() is None:
    pytest.skip(
        "etcd not installed (Debian: apt-get install etcd-server; scripts/setup does it)",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory, tls: TlsFiles) -> Iterator[EtcdCluster]:
    cluster = EtcdCluster(tmp_path_factory.mktemp("etcd-tls"), tls=tls)
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path / "world", 4, block_time=0.3, cool_down=3)
    try:
        yield w
    finally:
        w.close()


def tls_settings(ca: Path | None, cert: Path | None = None, key: Path | None = None) -> str:
    """``settings.ha``'s ``tls`` member, to append inside its flow mapping."""
    fields = [f"{n}: '{p}'" for n, p in (("ca", ca), ("cert", cert), ("key", key)) if p]
    return ", tls: {" + ", ".join(fields) + "}"


def client(etcd: EtcdCluster, tls: TlsFiles) -> EtcdBackend:
    material = load_tls(
        HaTlsSettings(ca=str(tls.ca), cert=str(tls.client_cert), key=str(tls.client_key)),
        Path("/"),
        "",
    )
    return EtcdBackend([("127.0.0.1", p) for p in etcd.client_ports], timeout=2.0, tls=material)


async def read_key(etcd: EtcdCluster, tls: TlsFiles, key: str) -> tuple[str, int, int] | None:
    """The key's value, its lease and the lease's remaining TTL, read over TLS."""
    backend = client(etcd, tls)
    try:
        found = await backend.read(key)
        if found is None:
            return None
        return found[0], found[1], await backend.lease_ttl(found[1])
    finally:
        await backend.close()


def test_tls_owner_killed_mid_apply_standby_takes_over_without_duplicates(
    world: World, etcd: EtcdCluster, tls: TlsFiles
) -> None:
    ha = tls_settings(tls.ca, tls.client_cert, tls.client_key)
    a = start(world, etcd, "a", "tls", ha_extra=ha, **{ENV: "after_submit:2"})
    b: Runner | None = None
    try:
        wait_until(lambda: a.ha().get("state") in ("waiting", "active"), 30, "a owns", a)
        # The lease key is in etcd, attached to a live lease, read with the TLS client.
        found = asyncio.run(read_key(etcd, tls, "/poolkeeper/tls/shards/all/owner"))
        assert found is not None, a.output()[-3000:]
        value, lease, ttl = found
        assert json.loads(value)["identity"] == a.ha()["identity"], value
        assert lease != 0 and 0 < ttl <= TTL, (lease, ttl)
        b = start(world, etcd, "b", "tls", ha_extra=ha)
        wait_until(lambda: b.ha().get("state") == "standby", 30, "b is standby", a, b)
        died = wait_until(lambda: a.proc.poll() is not None, 90, "a killed mid-apply", a, b)
        assert a.proc.returncode == -signal.SIGKILL, a.output()[-3000:]
        in_flight = [h for h, s in a.by_hash().items() if s == "prepared"]
        assert in_flight, "nothing was in flight"
        active = wait_until(lambda: b.ha().get("owner") is True, 30, "b takes over", a, b)
        print(f"failover over TLS (SIGKILL -> standby signing): {active - died:.2f}s")
        assert active - died <= TTL + LOCK_DELAY + 1.5, active - died
        wait_until(lambda: converged(world), 120, "convergence", b)
        # a's in-flight records reached b through etcd over TLS and were resolved.
        assert "HA: took over" in b.output(), b.output()[-3000:]
        settled_by_b = b.by_hash()
        assert all(settled_by_b.get(h) not in (None, "prepared") for h in in_flight)
        calls = world.stake_pool_calls()
        assert calls, "nothing reached the chain"
        twice = [c for c, n in calls.items() if n > 1]
        assert not twice, twice
        print(f"pool and registry calls on chain: {sum(calls.values())}, none twice")
        shown = world.cli("status", str(b.inventory), "--json", "--ha", etcd.url, timeout=60)
        assert shown.returncode == 0, shown.stderr
        (row,) = json.loads(shown.stdout)["ha"]["shards"]
        assert row["owner"] == b.ha()["identity"], row
        for runner in (a, b):
            assert "BEGIN" not in runner.output() and "PRIVATE" not in runner.output()
    finally:
        a.stop()
        if b is not None:
            b.stop()


def run_refused(world: World, etcd: EtcdCluster, name: str, ha: str, url: str = "") -> str:
    """``run --ha URL`` (default: the cluster's) with these TLS settings, which must exit 1
    by itself, before any pass; its output."""
    saved = etcd.url
    etcd.url = url or saved
    try:
        runner = start(world, etcd, name, "tls-bad", ha_extra=ha)
    finally:
        etcd.url = saved
    try:
        code = runner.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        runner.stop()
        raise AssertionError(f"{name}: run kept running\n{runner.output()[-3000:]}") from None
    out = runner.output()
    assert code == 1, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    assert not (runner.state_dir / "ha.json").exists()
    return out


def test_tls_misconfigurations_end_run_with_a_clear_message(
    world: World, etcd: EtcdCluster, tls: TlsFiles, tmp_path: Path
) -> None:
    cert, key = tls.client_cert, tls.client_key
    started = time.monotonic()
    out = run_refused(world, etcd, "wrong-ca", tls_settings(tls.wrong_ca, cert, key))
    assert (
        "TLS handshake failed: etcd's certificate is not signed by the CA of "
        f"settings.ha.tls.ca ({tls.wrong_ca})" in out
    ), out
    # Every endpoint named, the reason they share said once.
    assert all(f"127.0.0.1:{p}" in out for p in etcd.client_ports), out
    assert out.count("TLS handshake failed") == 1, out
    out = run_refused(world, etcd, "no-client-cert", tls_settings(tls.ca))
    assert "TLS handshake failed: etcd refused this client" in out, out
    loose = tmp_path / "loose-key.pem"
    loose.write_bytes(key.read_bytes())
    loose.chmod(0o644)
    out = run_refused(world, etcd, "loose-key", tls_settings(tls.ca, cert, loose))
    assert "settings.ha.tls.key (settings.yaml:" in out, out
    assert f"{loose} has mode 0644" in out and f"chmod 600 {loose}" in out, out
    assert "PRIVATE" not in out
    missing = tmp_path / "nowhere.pem"
    out = run_refused(world, etcd, "missing-ca", tls_settings(missing, cert, key))
    assert "settings.ha.tls.ca (settings.yaml:" in out and f"{missing} does not exist" in out
    plain = etcd.url.replace("etcds://", "etcd://")
    out = run_refused(world, etcd, "plain", tls_settings(tls.ca, cert, key), plain)
    assert "is plaintext but settings.ha.tls is set" in out and "use etcds://" in out, out
    named = tls_settings(tls.ca, cert, key)[:-1] + ", server_name: wrong.example}"
    out = run_refused(world, etcd, "server-name", named)
    assert "etcd's certificate does not name wrong.example" in out, out
    other_key = tmp_path / "other-key.pem"
    replace_file(other_key, client_pair(tls)[1])
    out = run_refused(world, etcd, "not-a-pair", tls_settings(tls.ca, cert, other_key))
    assert "TLS setup failed: settings.ha.tls.cert and key are not a usable pair" in out, out
    print(f"seven refusals in {time.monotonic() - started:.1f}s")
    # status --ha with the wrong CA: the same words in its HA section, exit 0.
    inventory = world.root / "wrong-ca" / "inventory"
    shown = world.cli("status", str(inventory), "--json", "--ha", etcd.url, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "Traceback" not in shown.stderr
    error = json.loads(shown.stdout)["ha"]["error"]
    assert "etcd's certificate is not signed by the CA of settings.ha.tls.ca" in error, error


def replace_file(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``path`` as a rotation tool would: a new file renamed over the old one."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_bytes(data)
    tmp.chmod(mode)
    os.replace(tmp, path)


def rotate(directory: Path, cert: bytes, key: bytes, key_mode: int = 0o600) -> None:
    replace_file(directory / "client-key.pem", key, key_mode)
    replace_file(directory / "client.pem", cert)


async def refused_with(etcd_port: int, ca: Path, cert: bytes, key: bytes) -> str:
    """What etcd (through ``etcd_port``) says to a new client with this certificate."""
    material = TlsMaterial(ca=ca.read_bytes(), cert=cert, key=key, ca_path=str(ca))
    backend = EtcdBackend([("127.0.0.1", etcd_port)], timeout=2.0, tls=material)
    try:
        with pytest.raises(EtcdTlsError) as refused:
            await backend.read("/poolkeeper/rotate/")
        return str(refused.value)
    finally:
        await backend.close()


def test_rotated_tls_files_are_taken_without_a_restart_and_bad_ones_refused(
    world: World, etcd: EtcdCluster, tls: TlsFiles
) -> None:
    # The owner reaches etcd through a proxy that can cut its connections, so that after
    # its first certificate expired it must make a new TLS handshake.
    proxy = TcpProxy(("127.0.0.1", etcd.client_ports[0]))
    hook = Hook()
    files = world.inventory / "tls"
    files.mkdir()
    # Long enough for the steps before the good rotation even on a loaded machine.
    short_cert, short_key, expires = client_pair(tls, seconds=60)
    (files / "ca.pem").write_bytes(tls.ca.read_bytes())
    rotate(files, short_cert, short_key)
    ha = ", tls: {ca: tls/ca.pem, cert: tls/client.pem, key: tls/client-key.pem}"
    saved, etcd.url = etcd.url, f"etcds://127.0.0.1:{proxy.port}"
    try:
        a = start(world, etcd, "a", "rotate", webhook=hook.url, ha_extra=ha)
    finally:
        etcd.url = saved
    files = a.inventory / "tls"
    try:
        wait_until(lambda: a.ha().get("owner") is True, 60, "a owns and signs", a)
        since = a.ha()["since"]
        # A key others may read: refused before use, reported, the connection kept.
        rotate(files, short_cert, short_key, key_mode=0o644)
        refused = "ALERT: HA: new settings.ha.tls files refused: "
        wait_until(lambda: refused in a.output(), 20, "the readable key refused", a)
        assert "settings.ha.tls.key (settings.yaml:" in a.output()
        assert f"{files / 'client-key.pem'} has mode 0644" in a.output()
        alert = ("alert", "process/HaEtcdTls", "TlsFilesRefused")
        wait_until(lambda: alert in hook.events(), 20, "the webhook hears it", a)
        # A certificate etcd does not trust: its handshake fails, the connection is kept.
        untrusted_cert, untrusted_key, _ = client_pair(tls, wrong_ca=True)
        rotate(files, untrusted_cert, untrusted_key)
        wait_until(
            lambda: (
                f"{refused}etcd 127.0.0.1:{proxy.port}: TLS handshake failed: etcd refused "
                "this client" in a.output()
            ),
            20,
            "the untrusted certificate refused",
            a,
        )
        # A key that does not belong to the certificate: refused before any handshake.
        rotate(files, short_cert, untrusted_key)
        wait_until(
            lambda: (
                f"{refused}etcd 127.0.0.1:{proxy.port}: TLS setup failed: "
                "settings.ha.tls.cert and key are not a usable pair" in a.output()
            ),
            20,
            "the mismatched pair refused",
            a,
        )
        assert a.ha()["owner"] is True and a.ha()["fenced_count"] == 0, a.ha()
        # A good new certificate: taken, the condition clears.
        fresh_cert, fresh_key, _ = client_pair(tls)
        rotate(files, fresh_cert, fresh_key)
        taken = "HA: the changed settings.ha.tls files are in use"
        wait_until(lambda: taken in a.output(), 20, "the new certificate taken", a)
        recovered = ("recovered", "process/HaEtcdTls")
        wait_until(lambda: recovered in [e[:2] for e in hook.events()], 20, "cleared", a)
        # Once the first certificate has expired, etcd refuses it to any new connection...
        time.sleep(max(0.0, (expires - datetime.datetime.now(datetime.UTC)).total_seconds() + 2))
        said = asyncio.run(refused_with(proxy.port, tls.ca, short_cert, short_key))
        assert "etcd refused this client" in said, said
        # ...and after every connection was cut, the owner reconnects with the new one
        # and keeps its lease (with the files read at start it would fence itself).
        assert proxy.cut() > 0
        cut = time.monotonic()
        wait_until(lambda: time.monotonic() - cut > 2 * TTL, 3 * TTL, "two TTLs", a)
        doc = a.ha()
        assert doc["owner"] is True and doc["fenced_count"] == 0 and doc["since"] == since, doc
        assert "lost" not in a.output(), a.output()[-3000:]
        assert "BEGIN" not in a.output() and "PRIVATE" not in a.output()
    finally:
        a.stop()
        hook.server.shutdown()
        proxy.close()
