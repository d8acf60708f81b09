"""Transparent remote machines over WebSocket.

A :class:`Server` exposes local machines by id; a :class:`Client` (CPython or Pyodide) mirrors them
as :class:`NetMachine` objects that answer reads and waits locally and send mutations and dry runs
to the server. The protocol itself lives in I/O-free session objects that the asyncio server and
client drive; it is documented in ``docs/protocol.md``. The server needs the ``websockets``
package (``pip install asyncmachine[rpc]``); the client in Pyodide does not.
"""

from typing import TYPE_CHECKING

from ._auth import NO_ACCESS, READ_ONLY, READ_WRITE, ConnInfo, Policy, Principal, tokens
from ._client import Client
from ._errors import (
    AuthError,
    ConnectError,
    DisconnectedError,
    ProtocolError,
    RemoteError,
    RpcError,
)
from ._idempotency import IdempotencyStore, MemoryIdempotency, Remembered, SqliteIdempotency
from ._netmachine import NetMachine
from ._protocol import VERSION
from ._states import ClientStates, ServerStates
from ._transport import Receiver, Transport, TransportClosed

if TYPE_CHECKING:
    from . import nats  # noqa: F401 (the lazy attribute below)
    from ._server import Server

__all__ = [
    "NO_ACCESS",
    "READ_ONLY",
    "READ_WRITE",
    "VERSION",
    "AuthError",
    "Client",
    "ClientStates",
    "ConnInfo",
    "ConnectError",
    "DisconnectedError",
    "IdempotencyStore",
    "MemoryIdempotency",
    "NetMachine",
    "Policy",
    "Principal",
    "ProtocolError",
    "Receiver",
    "Remembered",
    "RemoteError",
    "RpcError",
    "Server",
    "ServerStates",
    "SqliteIdempotency",
    "Transport",
    "TransportClosed",
    "tokens",
]


def __getattr__(name: str) -> object:
    # the server needs `websockets`, which the browser client never imports
    if name == "Server":
        from ._server import Server

        return Server
    if name == "nats":  # nats-py only when asked for
        import importlib

        return importlib.import_module(".nats", __name__)
    raise AttributeError(name)
