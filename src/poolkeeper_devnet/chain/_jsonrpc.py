"""The JSON-RPC error object the devnet chain answers with, shared by the engine and server.

The engine refuses extrinsics with a node's author-API codes (1010, 1013, ...); the server
adds the protocol's own (-32700, -32601, ...). Both reach the client as the same
``{"code", "message", "data"?}`` object.
"""

from __future__ import annotations

from typing import Any


class JsonRpcError(Exception):
    """An error a Substrate node would answer with: code, message and optional data."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message if data is None else f"{code} {message}: {data}")
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error
