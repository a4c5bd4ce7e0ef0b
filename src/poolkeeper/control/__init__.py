"""The control API of a running ``poolkeeper run``: its status stream and its requests.

Front ends (the TUI, ``status --watch``) attach to the loop that owns the state dir
instead of running a second reconciler and a second set of relays. The protocol is
newline-delimited JSON over a Unix socket; docs/api.md describes it.
"""

from poolkeeper.control.client import ControlClient, ControlUnavailable, StatusView
from poolkeeper.control.conditions import ConditionDocuments, ConditionReader
from poolkeeper.control.protocol import FORMAT_VERSION, SOCKET_NAME, ProtocolError, Request
from poolkeeper.control.server import ControlServer, StatusHub

__all__ = [
    "FORMAT_VERSION",
    "SOCKET_NAME",
    "ConditionDocuments",
    "ConditionReader",
    "ControlClient",
    "ControlServer",
    "ControlUnavailable",
    "ProtocolError",
    "Request",
    "StatusHub",
    "StatusView",
]
