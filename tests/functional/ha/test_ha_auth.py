"""``run --ha`` against a real etcd with authentication enabled (a user whose role may
read and write only its cluster's keys, under ``/poolkeeper/auth/``) whose tokens expire
after one second unused (``--auth-token-ttl 1``), and the devnet: the process
authenticates, wins the shard and converges the workers while its token expires between
every renewal, without losing the lease once; the password is nowhere (its log,
``ha.json``, ``status --json``, the control API, the state dir); and a wrong password, an
unknown user, a user without access, no user at all and a readable password file each end
``run`` with exit 1 and the reason."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aetcd
import pytest

from poolkeeper.control import ControlClient
from poolkeeper.control.protocol import socket_path
from poolkeeper.ha.auth import EtcdAuth
from poolkeeper.ha.etcd import EtcdBackend
from poolkeeper.keys import Secret
from tests.functional.apply._world import World
from tests.functional.ha._auth import enable_auth, enable_auth_async
from tests.functional.ha._etcd import EtcdCluster, etcd_binary
from tests.functional.ha.test_ha_failover import Runner, converged, start, wait_until

pytestmark = pytest.mark.slow

if etcd_binary() is None:
    pytest.skip(
        "etcd not installed (Debian: apt-get install etcd-server; scripts/setup does it)",
        allow_module_level=True,
    )

USER = "poolkeeper"
PASSWORD = "pk-etcd-Zq81-horse"
ROOT_PASSWORD = "root-etcd-Kd02-battery"
TOKEN_TTL = 1
"""etcd forgets a token unused this long (seconds; checked every second)."""
HA_TTL = 12.0
"""The lease TTL of the runs below: the owner renews every TTL/6 = 2 s, so its token has
expired at every renewal, and a renewal failing for it would fence it at TTL·2/3 = 8 s."""


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    cluster = EtcdCluster(
        tmp_path_factory.mktemp("etcd-auth"), extra_args=("--auth-token-ttl", str(TOKEN_TTL))
    )
    try:
        # The least the docs tell operators to grant: readwrite under the cluster's prefix.
        enable_auth(cluster.client_ports[0], ROOT_PASSWORD, USER, PASSWORD, "/poolkeeper/auth/")
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


def with_password(world: World, text: str, mode: int = 0o600) -> None:
    """The password file every run's inventory copy gets (``etcd-password``, relative)."""
    path = world.inventory / "etcd-password"
    path.write_text(text + "\n")
    path.chmod(mode)


def auth_settings(user: str = USER, source: str = "password_file: etcd-password") -> str:
    """``settings.ha``'s ``auth`` member, to append inside its flow mapping."""
    return f", auth: {{user: {user}, {source}}}"


def backend(etcd: EtcdCluster, password: str = PASSWORD) -> EtcdBackend:
    auth = EtcdAuth(USER, Secret(password), "test")
    return EtcdBackend([("127.0.0.1", p) for p in etcd.client_ports], timeout=2.0, auth=auth)


async def _expired_token_refused(etcd: EtcdCluster) -> str:
    """What etcd answers aetcd's own client (which never authenticates again) once its
    token went unused for longer than the TTL."""
    raw = aetcd.Client(
        host="127.0.0.1", port=etcd.client_ports[0], username=USER, password=PASSWORD, timeout=2
    )
    try:
        await raw.get(b"/poolkeeper/auth/x")
        await asyncio.sleep(TOKEN_TTL + 1.5)
        with pytest.raises(aetcd.exceptions.UnauthenticatedError) as refused:
            await raw.get(b"/poolkeeper/auth/x")
        return str(refused.value)
    finally:
        await raw.close()


async def _renew_and_read_after_expiry(etcd: EtcdCluster) -> tuple[int, int, int]:
    client = backend(etcd)
    try:
        lease = await client.grant(30)
        assert await client.acquire("/poolkeeper/auth/t/owner", "me", lease)
        await asyncio.sleep(TOKEN_TTL + 1.5)
        remaining = await client.renew(lease)
        found = await client.read("/poolkeeper/auth/t/owner")
        assert found == ("me", lease), found
        return remaining, client.authentications, client.tokens_renewed
    finally:
        await client.close()


def test_an_expired_token_is_renewed_inside_the_request(etcd: EtcdCluster) -> None:
    # The control: aetcd alone is refused once its token expired.
    assert "invalid auth token" in asyncio.run(_expired_token_refused(etcd))
    # The backend authenticates again and the read succeeds, in the same call.
    remaining, authentications, renewed = asyncio.run(_renew_and_read_after_expiry(etcd))
    assert 0 < remaining <= 30
    assert renewed == 1 and authentications == 2, (renewed, authentications)


async def _control_messages(state_dir: Path, seconds: float) -> list[dict[str, Any]]:
    """The hello and the messages a front end attached to that run receives, until the
    HA document has come (at most ``seconds``)."""
    client = await ControlClient.connect(socket_path(state_dir))
    seen: list[dict[str, Any]] = [client.hello]

    async def collect() -> None:
        async for message in client.messages():
            seen.append(message)
            if message.get("ha"):
                return

    try:
        if not client.view.ha:  # the snapshot may already hold it
            await asyncio.wait_for(collect(), seconds)
        seen.append({"type": "view", "ha": client.view.ha})
    finally:
        await client.close()
    return seen


def owner_lease(etcd: EtcdCluster, cluster: str) -> int:
    async def read() -> int:
        client = backend(etcd)
        try:
            found = await client.read(f"/poolkeeper/{cluster}/shards/all/owner")
            assert found is not None
            return found[1]
        finally:
            await client.close()

    return asyncio.run(read())


def test_auth_run_owns_converges_and_keeps_its_lease_while_tokens_expire(
    world: World, etcd: EtcdCluster
) -> None:
    with_password(world, PASSWORD)
    # One endpoint (as behind a load balancer or a DNS name): no other member to fail over
    # to when a request is refused for its expired token.
    saved, etcd.url = etcd.url, f"etcd://127.0.0.1:{etcd.client_ports[0]}"
    try:
        a = start(  # -vv: at debug level, so debug lines are searched for the password too
            world, etcd, "a", "auth", "-vv", ha_extra=auth_settings(), ttl_seconds=f"{HA_TTL:g}"
        )
    finally:
        etcd.url = saved
    try:
        wait_until(lambda: a.ha().get("owner") is True, 60, "a owns and signs", a)
        won = time.monotonic()
        lease = owner_lease(etcd, "auth")
        since = a.ha()["since"]
        problems: set[str] = set()

        def no_problem_until_converged() -> bool:
            problems.add(a.ha().get("last_problem") or "")
            return converged(world)

        wait_until(no_problem_until_converged, 120, "convergence", a)
        # Stay past several token lifetimes and twice the lease TTL, watching every
        # renewal's outcome (a failed one shows as last_problem until the next succeeds).
        while time.monotonic() - won < 2 * HA_TTL:
            problems.add(a.ha().get("last_problem") or "")
            time.sleep(0.1)
        held = time.monotonic() - won
        assert problems == {""}, problems
        doc = a.ha()
        assert doc["owner"] is True and doc["fenced_count"] == 0, doc
        assert doc["since"] == since, doc
        assert owner_lease(etcd, "auth") == lease
        out = a.output()
        assert "lost" not in out and "auth token" not in out, out[-3000:]
        assert "HA journal" not in out, out[-3000:]  # no journal write failed
        print(f"lease held {held:.0f}s with tokens expiring after {TOKEN_TTL}s unused")
        # The password is nowhere an operator or a front end can see.
        messages = asyncio.run(_control_messages(a.state_dir, 3 * HA_TTL / 6))
        assert messages[-1]["ha"]["owner"] is True, messages
        shown = world.cli("status", str(a.inventory), "--json", "--ha", etcd.url, timeout=60)
        assert shown.returncode == 0, shown.stderr
        (row,) = json.loads(shown.stdout)["ha"]["shards"]
        assert row["owner"] == doc["identity"], row
        texts = {
            "run output": out,
            "ha.json": (a.state_dir / "ha.json").read_text(),
            "status": shown.stdout + shown.stderr,
            "control API": json.dumps(messages, default=str),
        }
        for path in a.state_dir.rglob("*"):
            if path.is_file():
                texts[str(path)] = path.read_bytes().decode("latin-1")
        leaked = [where for where, text in texts.items() if PASSWORD in text]
        assert not leaked, leaked
    finally:
        a.stop()


def run_refused(world: World, etcd: EtcdCluster, name: str, ha: str) -> str:
    """``run --ha`` with these settings, which must exit 1 by itself before any pass."""
    runner: Runner = start(world, etcd, name, "auth-bad", ha_extra=ha)
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


def test_auth_faults_end_run_with_a_clear_message(world: World, etcd: EtcdCluster) -> None:
    started = time.monotonic()
    wrong = "not-the-pw-3141"
    with_password(world, wrong)
    out = run_refused(world, etcd, "wrong-password", auth_settings())
    path = world.root / "wrong-password" / "inventory" / "etcd-password"
    assert (
        f"etcd refused user '{USER}': unknown user or wrong password; password from "
        "settings.ha.auth.password_file (settings.yaml:"
    ) in out, out
    assert f"): {path}" in out and all(f"127.0.0.1:{p}" in out for p in etcd.client_ports)
    assert out.count("wrong password") == 1, out  # said once for the three endpoints
    assert wrong not in out
    with_password(world, PASSWORD)
    out = run_refused(world, etcd, "unknown-user", auth_settings("nobody"))
    assert "etcd refused user 'nobody': unknown user or wrong password" in out, out
    assert PASSWORD not in out
    out = run_refused(world, etcd, "no-user", "")
    assert "etcd requires authentication (its auth is enabled): set settings.ha.auth" in out
    out = run_refused(world, etcd, "env-unset", auth_settings(source="password_env: PK_ETCD_PW"))
    assert "settings.ha.auth.password_env (settings.yaml:" in out, out
    assert "): environment variable PK_ETCD_PW is not set" in out, out
    with_password(world, PASSWORD, 0o640)
    out = run_refused(world, etcd, "loose", auth_settings())
    loose = world.root / "loose" / "inventory" / "etcd-password"
    assert "settings.ha.auth.password_file (settings.yaml:" in out
    assert f"): {loose} has mode 0640" in out
    assert f"chmod 600 {loose}" in out and PASSWORD not in out, out
    print(f"five refusals in {time.monotonic() - started:.1f}s")


def test_a_user_without_access_to_the_prefix_ends_run(world: World, etcd: EtcdCluster) -> None:
    # A user etcd knows, with no role: every read of /poolkeeper/… is denied.
    asyncio.run(_add_user_without_role(etcd, "outsider", "outsider-pw-77"))
    with_password(world, "outsider-pw-77")
    out = run_refused(world, etcd, "outsider", auth_settings("outsider"))
    assert (
        "etcd denied user 'outsider' access: grant its role readwrite on the prefix "
        "/poolkeeper/<cluster>/"
    ) in out, out
    assert "outsider-pw-77" not in out


async def _as_root(etcd: EtcdCluster, *requests: Any) -> None:
    """Send these ``(AuthStub method name, request)`` pairs as etcd's root user."""
    from aetcd import rpc

    root = aetcd.Client(
        host="127.0.0.1",
        port=etcd.client_ports[0],
        username="root",
        password=ROOT_PASSWORD,
        timeout=5,
    )
    try:
        await root.connect()
        stub = rpc.AuthStub(root.channel)
        for method, request in requests:
            await getattr(stub, method)(request, metadata=root.metadata)
    finally:
        await root.close()


async def _add_user_without_role(etcd: EtcdCluster, user: str, password: str) -> None:
    from aetcd import rpc

    await _as_root(etcd, ("UserAdd", rpc.AuthUserAddRequest(name=user, password=password)))


def test_a_password_changed_in_its_file_then_in_etcd_keeps_the_lease(
    world: World, etcd: EtcdCluster
) -> None:
    from aetcd import rpc

    user, old, new = "rotating", "rot-old-pw-11", "rot-new-pw-22"
    asyncio.run(
        _as_root(
            etcd,
            ("UserAdd", rpc.AuthUserAddRequest(name=user, password=old)),
            ("UserGrantRole", rpc.AuthUserGrantRoleRequest(user=user, role="poolkeeper")),
        )
    )
    with_password(world, old)
    saved, etcd.url = etcd.url, f"etcd://127.0.0.1:{etcd.client_ports[0]}"
    try:
        # TTL 6: 1 s per request, room for the refused and the accepted authentication.
        a = start(world, etcd, "a", "auth", ha_extra=auth_settings(user), ttl_seconds="6")
    finally:
        etcd.url = saved
    try:
        wait_until(lambda: a.ha().get("owner") is True, 60, "a owns and signs", a)
        since = a.ha()["since"]
        # The operator writes the new password where poolkeeper reads it, then changes it
        # in etcd (which forgets the tokens of that user at once).
        path = a.inventory / "etcd-password"
        tmp = path.with_name("etcd-password.new")
        tmp.write_text(new + "\n")
        tmp.chmod(0o600)
        tmp.replace(path)
        asyncio.run(
            _as_root(
                etcd,
                ("UserChangePassword", rpc.AuthUserChangePasswordRequest(name=user, password=new)),
            )
        )
        changed = time.monotonic()
        read_again = "HA: etcd refused the password; a new one was read from "
        wait_until(lambda: read_again in a.output(), 20, "the new password read", a)
        problems: set[str] = set()
        while time.monotonic() - changed < 18:
            problems.add(a.ha().get("last_problem") or "")
            time.sleep(0.1)
        doc = a.ha()
        assert doc["owner"] is True and doc["fenced_count"] == 0 and doc["since"] == since, doc
        assert problems == {""}, problems
        out = a.output()
        assert old not in out and new not in out
    finally:
        a.stop()


async def _across_auth_enable(etcd: EtcdCluster, logged: list[str]) -> tuple[int, int]:
    """A client given a user, against an etcd whose auth is off, then turned on."""
    client = EtcdBackend(
        [("127.0.0.1", etcd.client_ports[0])],
        timeout=2.0,
        auth=EtcdAuth(USER, Secret(PASSWORD), "test"),
        log=logged.append,
    )
    try:
        assert await client.read("/poolkeeper/auth/x") is None
        before = client.authentications
        await enable_auth_async(
            etcd.client_ports[0], ROOT_PASSWORD, USER, PASSWORD, "/poolkeeper/auth/"
        )
        assert await client.read("/poolkeeper/auth/x") is None
        return before, client.authentications
    finally:
        await client.close()


def test_a_client_given_a_user_goes_on_when_auth_is_enabled(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    cluster = EtcdCluster(tmp_path_factory.mktemp("etcd-no-auth-yet"), members=1)
    try:
        logged: list[str] = []
        before, after = asyncio.run(_across_auth_enable(cluster, logged))
    finally:
        cluster.close()
    assert (before, after) == (0, 1), (before, after)
    assert logged == [
        "HA: etcd has authentication disabled: connecting without the user of "
        "settings.ha.auth until it is enabled (etcdctl auth enable)"
    ], logged
