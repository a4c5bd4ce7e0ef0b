"""The etcd the HA tests elect and mirror journals on: a 3-member cluster on loopback,
one per test module (``test_ha_tls`` overrides it with a TLS one)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.functional.ha._etcd import EtcdCluster


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    cluster = EtcdCluster(tmp_path_factory.mktemp("etcd"))
    try:
        yield cluster
    finally:
        cluster.close()
