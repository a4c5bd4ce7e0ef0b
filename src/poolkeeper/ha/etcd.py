"""The etcd adapter of ``LeaseBackend`` (aetcd, asyncio, v3 gRPC API; works against
etcd 3.4 and later). Several endpoints may be given: a request that fails on one is
retried on the next, so losing one member of a 3-member cluster is not an outage.

TLS (``etcds://``): aetcd 1.0's client only opens plaintext channels. ``_TlsClient``
wraps its ``connect`` so the channel aetcd opens is a ``grpc.aio.secure_channel`` with
this backend's credentials (handed over through a context variable, so other clients
and other threads are untouched), without copying aetcd's connection code.

User/password auth (``settings.ha.auth``): aetcd authenticates once, when it connects,
and sends that token with every request; it never renews it. etcd forgets a token after
``--auth-token-ttl`` without use (simple tokens; a JWT expires at its TTL whatever its
use) and on a restart, and then refuses requests ("invalid auth token"). Such a refusal
is answered here: the connection is made again (a new Authenticate) and the request sent
once more, on the same endpoint, inside the same call, so neither a lease renewal nor a
journal write fails because a token expired (etcd rejects such a request before applying
it, so sending it again is safe).

Certificate rotation: the files of ``settings.ha.tls`` are examined (stat) at most once a
second, when a request is made. When they changed, they are read and checked again and,
in the background, a new connection made with them must complete its handshake with
etcd (a Status request) before it replaces the current one; the replaced connection is
closed once its requests are done. New files that cannot be read or that etcd refuses
are reported (``tls_problem``, logged as an ALERT) and the connection in use, with the
files read before, is kept: a bad rotation never breaks a working client."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from typing import Any, TypeVar
from urllib.parse import urlsplit

# gRPC's C core logs handshake failures to stderr on its own; the errors raised here
# carry the same facts in words. GRPC_VERBOSITY=ERROR (set by the operator) shows them.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

import aetcd
import aetcd.rpc
import grpc

from poolkeeper.ha.auth import EtcdAuth
from poolkeeper.ha.ports import LeaseBackendError
from poolkeeper.ha.tls import Stamp, TlsConfigError, TlsMaterial, TlsSource

T = TypeVar("T")

PLAIN = "etcd://"
TLS = "etcds://"


def parse_ha_url(spec: str) -> tuple[tuple[tuple[str, int], ...], bool]:
    """``etcd[s]://HOST:PORT[,HOST:PORT…]`` → (((host, port), …), whether TLS);
    ValueError naming the fault."""
    if spec.startswith(TLS):
        tls, rest = True, spec.removeprefix(TLS)
    elif spec.startswith(PLAIN):
        tls, rest = False, spec.removeprefix(PLAIN)
    else:
        raise ValueError(
            f"--ha {spec!r}: expected etcd://HOST:PORT[,HOST:PORT…] (or etcds:// for TLS)"
        )
    found: list[tuple[str, int]] = []
    for part in rest.split(","):
        parsed = urlsplit(f"//{part.strip()}")
        try:
            port = parsed.port
        except ValueError:
            port = None
        if not parsed.hostname or port is None:
            raise ValueError(f"--ha {spec!r}: {part!r} is not HOST:PORT")
        found.append((parsed.hostname, port))
    return tuple(found), tls


def parse_endpoints(spec: str) -> tuple[tuple[str, int], ...]:
    """The endpoints of ``etcd[s]://HOST:PORT[,…]``; ValueError naming the fault."""
    return parse_ha_url(spec)[0]


class EtcdConfigError(LeaseBackendError):
    """Every endpoint refused this client for a reason retrying will not fix (a
    configuration fault, to end ``run`` at start), not an outage."""


class EtcdTlsError(EtcdConfigError):
    """Every endpoint refused the TLS handshake (a configuration fault: wrong CA, no or
    refused client certificate, a plaintext etcd), not an outage."""


class EtcdAuthError(EtcdConfigError):
    """etcd refused this client's user or password, requires one it was not given, or
    denies the user access to the keys HA uses."""


_AUTH_FAILED = "authentication failed"
_AUTH_NOT_ENABLED = "authentication is not enabled"
_USER_EMPTY = "user name is empty"
_TOKEN_REFUSED = ("invalid auth token", "revision of auth store is old")
_PERMISSION_DENIED = "permission denied"


def explain_auth(detail: str, auth: EtcdAuth | None) -> tuple[str, str] | None:
    """etcd's words for an authentication problem in an operator's words, and what to
    do: ``"again"`` (authenticate again and resend: the token expired or etcd enabled
    auth since this client connected) or ``"fault"`` (configuration: retrying will not
    help); None when ``detail`` is not about authentication. Never holds the password."""
    if any(s in detail for s in _TOKEN_REFUSED):
        return "etcd refused the auth token (expired or forgotten)", "again"
    if _USER_EMPTY in detail:
        if auth is not None:
            return "etcd now requires authentication", "again"
        return (
            "etcd requires authentication (its auth is enabled): set settings.ha.auth "
            "(user and password_file; docs/ha.md)",
            "fault",
        )
    if _AUTH_FAILED in detail:
        who = f"user {auth.user!r}" if auth is not None else "this client"
        source = f"; password from {auth.source}" if auth is not None else ""
        return f"etcd refused {who}: unknown user or wrong password{source}", "fault"
    if _PERMISSION_DENIED in detail:
        who = f"user {auth.user!r}" if auth is not None else "this client"
        return (
            f"etcd denied {who} access: grant its role readwrite on the prefix "
            "/poolkeeper/<cluster>/ (settings.ha.cluster; docs/ha.md)",
            "fault",
        )
    return None


_credentials: ContextVar[grpc.ChannelCredentials | None] = ContextVar(
    "poolkeeper_etcd_credentials", default=None
)


def _install_channel_hook() -> None:
    """Let aetcd's ``rpc.insecure_channel`` open a secure channel while a ``_TlsClient``
    connects (and only then: without credentials it is the original function)."""
    plain = aetcd.rpc.insecure_channel
    if getattr(plain, "_poolkeeper_hook", False):
        return

    def channel(target: str, options: Any = None, *args: Any, **kwargs: Any) -> Any:
        credentials = _credentials.get()
        if credentials is None:
            return plain(target, options, *args, **kwargs)
        return grpc.aio.secure_channel(target, credentials, options, *args, **kwargs)

    channel._poolkeeper_hook = True  # type: ignore[attr-defined]
    aetcd.rpc.insecure_channel = channel


_install_channel_hook()


class _TlsClient(aetcd.Client):  # type: ignore[misc]
    """An aetcd client whose channel is TLS with ``credentials``."""

    def __init__(self, *, credentials: grpc.ChannelCredentials, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._poolkeeper_credentials = credentials

    async def connect(self) -> None:
        token = _credentials.set(self._poolkeeper_credentials)
        try:
            await super().connect()
        finally:
            _credentials.reset(token)


def credentials_of(tls: TlsMaterial) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=tls.ca, private_key=tls.key, certificate_chain=tls.cert
    )


def explain(detail: str, host: str, tls: TlsMaterial | None) -> tuple[str, bool]:
    """gRPC's words for a failed connection in an operator's words, and whether it is a
    TLS configuration fault (retrying will not help)."""
    if "CERTIFICATE_VERIFY_FAILED" in detail:
        why = detail.split("CERTIFICATE_VERIFY_FAILED:", 1)[-1].split(":", maxsplit=1)[0].strip()
        trusted = (
            f"the CA of settings.ha.tls.ca ({tls.ca_path})"
            if tls is not None and tls.ca_path
            else "the system's CA certificates (set settings.ha.tls.ca)"
        )
        return (
            f"TLS handshake failed: etcd's certificate is not signed by {trusted}"
            + (f" ({why})" if why else ""),
            True,
        )
    if "Hostname Verification" in detail or "Peer name" in detail:
        return (
            f"TLS handshake failed: etcd's certificate does not name {host} (use a name it "
            f"holds in --ha, or settings.ha.tls.server_name)",
            True,
        )
    if any(s in detail for s in ("TSI_DATA_CORRUPTED", "BAD_CERTIFICATE", "CERTIFICATE_REQ")):
        return (
            "TLS handshake failed: etcd refused this client (with --client-cert-auth it needs "
            "settings.ha.tls.cert and key, signed by the CA of its --trusted-ca-file)",
            True,
        )
    if tls is not None and "Failed to create security handshaker" in detail:
        return (
            "TLS setup failed: settings.ha.tls.cert and key are not a usable pair (a key "
            "that does not belong to the certificate, or a damaged PEM)",
            True,
        )
    if tls is not None and ("Handshake read failed" in detail or "WRONG_VERSION" in detail):
        return (
            "TLS handshake failed: no TLS server answered (a plaintext etcd? then use etcd://)",
            True,
        )
    if tls is None and "Socket closed" in detail:
        return f"{detail} (if etcd serves TLS, use etcds:// and settings.ha.tls)", False
    return detail, False


class EtcdBackend:
    """``LeaseBackend`` over etcd; ``timeout`` bounds each request; ``tls``: TLS with that
    material (None: plaintext); ``auth``: authenticate as that user; ``log``: told what an
    operator should know that is not an error of a request (once per event)."""

    def __init__(
        self,
        endpoints: Sequence[tuple[str, int]],
        *,
        timeout: float = 1.0,
        tls: TlsMaterial | None = None,
        auth: EtcdAuth | None = None,
        log: Callable[[str], None] | None = None,
        tls_source: TlsSource | None = None,
    ) -> None:
        self._endpoints = list(endpoints)
        self._timeout = timeout
        self._tls = tls
        self._tls_source = tls_source if tls is not None else None
        self._tls_next_check = 0.0
        self._tls_refused: Stamp | None = None
        self._tls_task: asyncio.Task[None] | None = None
        self._retired: list[asyncio.Task[None]] = []
        self.tls_problem = ""
        """Why the last change of the TLS files was refused ("" once a change is taken)."""
        self.tls_reloads = 0
        """Times changed TLS files were taken (a new connection with them replaced the
        one in use)."""
        self._auth = auth
        self._log = log or (lambda _message: None)
        self._credentials = credentials_of(tls) if tls is not None else None
        self._current = 0
        self._client: aetcd.Client | None = None
        self._connecting = asyncio.Lock()
        self._server_auth_off = False
        """etcd said its authentication is disabled: connect without a user until it
        asks for one ("user name is empty"), so auth can be enabled after the clients
        were given their user."""
        self.authentications = 0
        """Times a user was authenticated (each connection with ``auth``)."""
        self.tokens_renewed = 0
        """Times a request refused for its token was sent again after a new Authenticate."""

    async def _connected(self) -> aetcd.Client:
        async with self._connecting:  # agents of several shards share this client
            return await self._connected_unlocked()

    async def _connected_unlocked(self) -> aetcd.Client:
        if self._client is None:
            use_auth = self._auth is not None and not self._server_auth_off
            try:
                client = await self._connect(use_auth)
            except aetcd.exceptions.ClientError as exc:
                if use_auth and _AUTH_FAILED in str(exc) and self._password_changed():
                    client = await self._connect(True)
                elif use_auth and _AUTH_NOT_ENABLED in str(exc):
                    self._server_auth_off = True
                    self._log(
                        "HA: etcd has authentication disabled: connecting without the user "
                        "of settings.ha.auth until it is enabled (etcdctl auth enable)"
                    )
                    client = await self._connect(False)
                else:
                    raise
            self._client = client
        return self._client

    def _password_changed(self) -> bool:
        """etcd refused the password: whether the password file now holds another one
        (then it is used from now on)."""
        fresh = self._auth.reread() if self._auth is not None else None
        if fresh is None or self._auth is None or fresh.password == self._auth.password:
            return False
        self._auth = fresh
        self._log(f"HA: etcd refused the password; a new one was read from {fresh.source}")
        return True

    async def _connect(
        self,
        use_auth: bool,
        tls: TlsMaterial | None = None,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> aetcd.Client:
        """A connected client to the current endpoint (with ``tls`` and ``credentials``
        when given, else this backend's)."""
        host, port = self._endpoints[self._current]
        kwargs: dict[str, Any] = {"host": host, "port": port, "timeout": self._timeout}
        if use_auth and self._auth is not None:
            kwargs.update(username=self._auth.user, password=self._auth.password.reveal())
        tls = tls or self._tls
        credentials = credentials or self._credentials
        client: aetcd.Client
        if credentials is None:
            client = aetcd.Client(**kwargs)
        else:
            options = {}
            if tls is not None and tls.server_name:
                options["grpc.ssl_target_name_override"] = tls.server_name
            client = _TlsClient(credentials=credentials, options=options, **kwargs)
        try:
            await asyncio.wait_for(client.connect(), self._timeout)
        except BaseException:
            with contextlib.suppress(Exception):
                await client.close()
            raise
        if use_auth:
            self.authentications += 1
        return client

    async def _request(self, fn: Callable[[aetcd.Client], Awaitable[T]]) -> T:
        """``fn`` on the current endpoint; sent once more after authenticating again when
        etcd refused it for its token."""
        client = await self._connected()
        try:
            return await asyncio.wait_for(fn(client), self._timeout)
        except aetcd.exceptions.ClientError as exc:
            said = explain_auth(str(exc), self._auth)
            if self._auth is None or said is None or said[1] != "again":
                raise
        await self._drop()
        self._server_auth_off = False
        self.tokens_renewed += 1
        client = await self._connected()
        return await asyncio.wait_for(fn(client), self._timeout)

    @property
    def watches_tls(self) -> bool:
        """Whether the TLS files are read again when they change."""
        return self._tls_source is not None

    def _watch_tls(self) -> None:
        """Start taking the TLS files in the background if they changed (checked at most
        once a second; not again while one change is being tried)."""
        source = self._tls_source
        if source is None or self._tls is None:
            return
        now = time.monotonic()
        if now < self._tls_next_check or (self._tls_task and not self._tls_task.done()):
            return
        self._tls_next_check = now + 1.0
        stamp = source.stamp()
        if stamp in (self._tls.stamp, self._tls_refused):
            return
        self._tls_task = asyncio.get_running_loop().create_task(self._rotate(source, stamp))

    async def _rotate(self, source: TlsSource, stamp: Stamp) -> None:
        """Take the changed TLS files if they can be read and etcd accepts them."""
        try:
            material = source.load()
        except TlsConfigError as error:
            self._refuse_tls(stamp, str(error))
            return
        if material == self._tls:  # touched or rewritten with the same content
            self._tls = material
            return
        credentials = credentials_of(material)
        index = self._current
        host, port = self._endpoints[index]
        use_auth = self._auth is not None and not self._server_auth_off
        client: aetcd.Client | None = None
        try:
            client = await self._connect(use_auth, material, credentials)
            await asyncio.wait_for(client.status(), self._timeout)
        except Exception as exc:  # in a background task: each failure is a verdict or a retry
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.close()
            name = material.server_name or host
            text, tls_fault = explain(str(exc), name, material)
            if tls_fault:
                self._refuse_tls(stamp, f"etcd {host}:{port}: {text}")
            else:  # etcd unreachable or busy: not a verdict on the files; try again later
                self._tls_next_check = time.monotonic() + 5.0
            return
        old, self._client, self._current = self._client, client, index
        self._tls, self._credentials = material, credentials
        self._tls_refused, self.tls_problem = None, ""
        self.tls_reloads += 1
        self._log(
            f"HA: the changed settings.ha.tls files are in use (etcd {host}:{port} accepted them)"
        )
        if old is not None:  # closed once the requests it carries are done
            self._retired = [t for t in self._retired if not t.done()]
            self._retired.append(asyncio.get_running_loop().create_task(self._retire(old)))

    async def _retire(self, client: aetcd.Client) -> None:
        try:
            await asyncio.sleep(self._timeout * 2)
        finally:
            with contextlib.suppress(Exception):
                await client.close()

    def _refuse_tls(self, stamp: Stamp, reason: str) -> None:
        self._tls_refused = stamp
        self.tls_problem = f"new settings.ha.tls files refused: {reason}"
        self._log(
            f"ALERT: HA: {self.tls_problem}; etcd connections keep the files read before "
            "(fix the files: they are read again when they change)"
        )

    async def _call(self, what: str, fn: Callable[[aetcd.Client], Awaitable[T]]) -> T:
        self._watch_tls()
        errors: dict[str, list[str]] = {}  # what went wrong -> where (said once)
        tls_faults = auth_faults = 0
        for _ in range(len(self._endpoints)):
            try:
                return await self._request(fn)
            except (aetcd.exceptions.ClientError, grpc.RpcError, OSError, TimeoutError) as exc:
                host, port = self._endpoints[self._current]
                name = self._tls.server_name if self._tls and self._tls.server_name else host
                text, tls_fault = explain(str(exc), name, self._tls)
                auth = explain_auth(str(exc), self._auth)
                if auth is not None and auth[1] == "fault":
                    text = auth[0]
                    auth_faults += 1
                tls_faults += tls_fault
                fault = tls_fault or (auth is not None and auth[1] == "fault")
                said = text if fault else f"{type(exc).__name__} {text}".strip()
                errors.setdefault(said, []).append(f"{host}:{port}")
                await self._drop()
                self._current = (self._current + 1) % len(self._endpoints)
        error: type[LeaseBackendError] = LeaseBackendError
        if tls_faults + auth_faults == len(self._endpoints):
            error = EtcdAuthError if auth_faults else EtcdTlsError
        raise error(
            f"etcd {what} failed: "
            + "; ".join(f"{', '.join(where)}: {said}" for said, where in errors.items())
        )

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()

    async def grant(self, ttl_seconds: int) -> int:
        async def go(c: aetcd.Client) -> int:
            return int((await c.lease(ttl_seconds)).id)

        return await self._call("lease grant", go)

    async def renew(self, lease: int) -> int:
        async def go(c: aetcd.Client) -> int:
            reply: Any = await c.refresh_lease(lease)
            return int(reply.TTL)

        return await self._call("lease renewal", go)

    async def revoke(self, lease: int) -> None:
        async def go(c: aetcd.Client) -> None:
            await c.revoke_lease(lease)

        await self._call("lease revoke", go)

    async def lease_ttl(self, lease: int) -> int:
        async def go(c: aetcd.Client) -> int:
            reply: Any = await c.get_lease_info(lease, keys=False)
            return int(reply.TTL)

        return await self._call("lease read", go)

    async def acquire(self, key: str, value: str, lease: int) -> bool:
        async def go(c: aetcd.Client) -> bool:
            t = c.transactions
            ok, _ = await c.transaction(
                compare=[t.create(key.encode()) == 0],
                success=[t.put(key.encode(), value.encode(), lease=lease)],
                failure=[],
            )
            return bool(ok)

        return await self._call("election", go)

    async def read(self, key: str) -> tuple[str, int] | None:
        async def go(c: aetcd.Client) -> tuple[str, int] | None:
            got = await c.get(key.encode())
            if got is None:
                return None
            return got.value.decode(), int(got.lease)

        return await self._call("read", go)

    async def put_if_owner(self, owner_key: str, owner_value: str, key: str, value: str) -> bool:
        async def go(c: aetcd.Client) -> bool:
            t = c.transactions
            ok, _ = await c.transaction(
                compare=[t.value(owner_key.encode()) == owner_value.encode()],
                success=[t.put(key.encode(), value.encode())],
                failure=[],
            )
            return bool(ok)

        return await self._call("journal write", go)

    async def delete_if_owner(self, owner_key: str, owner_value: str, key: str) -> bool:
        async def go(c: aetcd.Client) -> bool:
            t = c.transactions
            ok, _ = await c.transaction(
                compare=[t.value(owner_key.encode()) == owner_value.encode()],
                success=[t.delete(key.encode())],
                failure=[],
            )
            return bool(ok)

        return await self._call("journal delete", go)

    async def read_prefix(self, prefix: str) -> dict[str, str]:
        async def go(c: aetcd.Client) -> dict[str, str]:
            found = await c.get_prefix(prefix.encode())
            return {kv.key.decode(): kv.value.decode() for kv in found}

        return await self._call("read", go)

    async def close(self) -> None:
        tasks = [t for t in (self._tls_task, *self._retired) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._drop()
