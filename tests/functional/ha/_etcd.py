"""A 3-member etcd cluster on loopback ports for the HA tests (Debian's etcd-server),
optionally serving its clients over TLS with client-certificate auth."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from tests._ports import free_port_run
from tests.functional.ha._tls import TlsFiles


def etcd_binary() -> str | None:
    return shutil.which("etcd")


class EtcdCluster:
    """Three ``etcd`` processes with their data in ``root``; ``url`` for ``run --ha``."""

    def __init__(
        self,
        root: Path,
        members: int = 3,
        tls: TlsFiles | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        binary = etcd_binary()
        assert binary is not None
        self.tls = tls
        scheme = "https" if tls else "http"
        tls_args = (
            [
                "--cert-file",
                str(tls.server_cert),
                "--key-file",
                str(tls.server_key),
                "--trusted-ca-file",
                str(tls.ca),
                "--client-cert-auth",
            ]
            if tls
            else []
        )
        ports = [free_port_run(2) for _ in range(members)]
        self.client_ports = [p[0] for p in ports]
        names = [f"m{i}" for i in range(members)]
        initial = ",".join(
            f"{n}=http://127.0.0.1:{p[1]}" for n, p in zip(names, ports, strict=True)
        )
        self.procs: list[subprocess.Popen[bytes]] = []
        for name, (client, peer) in zip(names, ports, strict=True):
            log = (root / f"{name}.log").open("wb")
            self.procs.append(
                subprocess.Popen(
                    [
                        binary,
                        "--name",
                        name,
                        "--data-dir",
                        str(root / name),
                        "--listen-client-urls",
                        f"{scheme}://127.0.0.1:{client}",
                        "--advertise-client-urls",
                        f"{scheme}://127.0.0.1:{client}",
                        "--listen-peer-urls",
                        f"http://127.0.0.1:{peer}",
                        "--initial-advertise-peer-urls",
                        f"http://127.0.0.1:{peer}",
                        "--initial-cluster",
                        initial,
                        "--initial-cluster-state",
                        "new",
                        "--initial-cluster-token",
                        f"poolkeeper-test-{self.client_ports[0]}",
                        "--heartbeat-interval",
                        "100",
                        "--election-timeout",
                        "1000",
                        *tls_args,
                        *extra_args,
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        self.url = ("etcds://" if tls else "etcd://") + ",".join(
            f"127.0.0.1:{p}" for p in self.client_ports
        )
        try:
            self._wait_healthy(root)
        except BaseException:
            self.close()
            raise

    def _wait_healthy(self, root: Path) -> None:
        import ssl
        import urllib.request

        context = None
        scheme = "http"
        if self.tls is not None:
            scheme = "https"
            context = ssl.create_default_context(cafile=str(self.tls.ca))
            context.load_cert_chain(str(self.tls.client_cert), str(self.tls.client_key))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(
                    f"{scheme}://127.0.0.1:{self.client_ports[0]}/health",
                    timeout=1,
                    context=context,
                ) as reply:
                    if b'"true"' in reply.read():
                        return
            except OSError:
                pass
            time.sleep(0.2)
        logs = (root / "m0.log").read_text(errors="replace")[-2000:]
        raise AssertionError(f"etcd cluster not healthy within 30s:\n{logs}")

    def close(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
