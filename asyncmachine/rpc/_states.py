"""The RPC layer's own machines: a server's (``server.mach``) and a client's (``client.mach``).

Apps pipe or wait on them like any machine: ``await server.mach.when1("RpcReady")``,
``client.mach.when1("Ready")``, a ``ClientSubscribedState`` handler that greets a new subscriber.
"""

from __future__ import annotations

from .._schema import State
from .._states_base import StatesBase


class ServerStates(StatesBase):
    """A server's life and its clients. The multi states carry args: ``client_id``,
    ``principal``, ``session_id`` and, for ``ClientSubscribed``, ``machine_id``."""

    Start: str
    RpcStarting: str
    RpcReady: str
    ClientConnected: str
    """A client completed the handshake (multi)."""
    ClientDisconnected: str
    """A client's connection ended (multi)."""
    ClientSubscribed: str
    """A client subscribed to an exposed machine; its snapshot is already queued (multi)."""


_s = ServerStates()

SERVER_SCHEMA: dict[str, State] = {
    _s.Exception: State(multi=True),
    _s.Start: State(add=(_s.RpcStarting,)),
    _s.RpcStarting: State(require=(_s.Start,), remove=(_s.RpcReady,)),
    _s.RpcReady: State(require=(_s.Start,), remove=(_s.RpcStarting,)),
    _s.ClientConnected: State(multi=True),
    _s.ClientDisconnected: State(multi=True),
    _s.ClientSubscribed: State(multi=True),
}


class ClientStates(StatesBase):
    """The connection's states: apps wait on ``Ready`` and react to ``Disconnected``."""

    Start: str
    Connecting: str
    Connected: str
    Ready: str
    Retrying: str
    Disconnected: str
    ErrNetwork: str
    ErrAuth: str
    ErrRpc: str


_c = ClientStates()

CLIENT_SCHEMA: dict[str, State] = {
    _c.Exception: State(multi=True),
    _c.Start: State(),
    _c.Connecting: State(require=(_c.Start,), remove=(_c.Connected, _c.Disconnected)),
    _c.Connected: State(require=(_c.Start,), remove=(_c.Connecting, _c.Disconnected)),
    _c.Ready: State(require=(_c.Connected,)),
    _c.Retrying: State(require=(_c.Start,), remove=(_c.Connecting, _c.Connected)),
    _c.Disconnected: State(auto=True, remove=(_c.Connecting, _c.Connected)),
    _c.ErrNetwork: State(multi=True, require=(_c.Exception,)),
    _c.ErrAuth: State(require=(_c.Exception,)),
    _c.ErrRpc: State(multi=True, require=(_c.Exception,)),
}
