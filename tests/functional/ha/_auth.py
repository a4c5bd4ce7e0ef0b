"""etcd RBAC for the HA tests: a root user, and a user whose role may read and write only
under one key prefix, then ``auth enable`` (what docs/ha.md tells operators to run with
etcdctl, done here through etcd's gRPC auth API since etcdctl is not installed)."""

from __future__ import annotations

import asyncio

import grpc
from aetcd import rpc

READWRITE = 2  # authpb.Permission.Type


def prefix_end(prefix: bytes) -> bytes:
    """The range end etcd uses for "every key starting with ``prefix``"."""
    return prefix[:-1] + bytes([prefix[-1] + 1])


async def enable_auth_async(
    port: int, root_password: str, user: str, password: str, prefix: str
) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        auth = rpc.AuthStub(channel)
        await auth.UserAdd(rpc.AuthUserAddRequest(name="root", password=root_password))
        await auth.RoleAdd(rpc.AuthRoleAddRequest(name="root"))
        await auth.UserGrantRole(rpc.AuthUserGrantRoleRequest(user="root", role="root"))
        await auth.RoleAdd(rpc.AuthRoleAddRequest(name="poolkeeper"))
        key = prefix.encode()
        await auth.RoleGrantPermission(
            rpc.AuthRoleGrantPermissionRequest(
                name="poolkeeper",
                perm=rpc.Permission(permType=READWRITE, key=key, range_end=prefix_end(key)),
            )
        )
        await auth.UserAdd(rpc.AuthUserAddRequest(name=user, password=password))
        await auth.UserGrantRole(rpc.AuthUserGrantRoleRequest(user=user, role="poolkeeper"))
        await auth.AuthEnable(rpc.AuthEnableRequest())


def enable_auth(port: int, root_password: str, user: str, password: str, prefix: str) -> None:
    """Users ``root`` and ``user`` (readwrite on ``prefix`` only), then auth on."""
    asyncio.run(enable_auth_async(port, root_password, user, password, prefix))
