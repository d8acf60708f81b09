"""Transparent remote machines over WebSocket.

A :class:`Server` exposes local machines by id; a :class:`Client` (CPython or Pyodide) mirrors them
as :class:`NetMachine` objects that answer reads and waits locally and send mutations to the
server. The wire protocol is documented in ``docs/protocol.md``. The server needs the
``websockets`` package (``pip install asyncmachine[rpc]``); the client in Pyodide does not.
"""

from typing import TYPE_CHECKING

from ._auth import READ_ONLY, READ_WRITE, ConnInfo, Policy, Principal, tokens
from ._client import AuthError, Client, ClientStates, DisconnectedError, RpcError
from ._netmachine import NetMachine
from ._protocol import VERSION, ProtocolError
from ._transport import Transport, TransportClosed

if TYPE_CHECKING:
    from ._server import Server

__all__ = [
    "READ_ONLY",
    "READ_WRITE",
    "VERSION",
    "AuthError",
    "Client",
    "ClientStates",
    "ConnInfo",
    "DisconnectedError",
    "NetMachine",
    "Policy",
    "Principal",
    "ProtocolError",
    "RpcError",
    "Server",
    "Transport",
    "TransportClosed",
    "tokens",
]


def __getattr__(name: str) -> object:
    # the server needs `websockets`, which the browser client never imports
    if name == "Server":
        from ._server import Server

        return Server
    raise AttributeError(name)
