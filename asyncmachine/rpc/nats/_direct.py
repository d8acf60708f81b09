"""``rpc.nats.connect``: a ``NetMachine`` over NATS for Python services, without a gateway.

It is the same client and the same server session as over WebSocket, joined in memory: a private
gateway hub (this process's own) follows the machine on NATS, and the ``Client`` talks to it
through a loopback transport. Reconnects, resends with the same idempotency key and the mirror's
chain all behave as they do over a socket.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .._auth import ANONYMOUS
from .._client import Client
from .._hub import Hub
from .._netmachine import NetMachine
from .._server_session import ServerSession
from .._transport import Receiver, Transport, TransportClosed
from . import _subjects as subjects
from ._gateway import Gateway
from ._link import soon

LOOPBACK_HEARTBEAT = 3600.0
"""Nothing can go silent in memory: the heartbeat only needs to never fire."""


class _Loopback:
    """A transport whose other end is a ``ServerSession`` in this process. Frames cross on the
    next loop iteration (never re-entrantly), in order."""

    def __init__(self, hub: Hub, receiver: Receiver) -> None:
        self.loop = asyncio.get_running_loop()
        self.receiver = receiver
        self.session = ServerSession(hub, "nats-direct", None, self.loop.time())
        self.session.wake = self._wake
        self.closed = False

    def send(self, frame: str) -> None:
        if self.closed:
            raise TransportClosed(1006, "not open")
        self.loop.call_soon(self._deliver_up, frame)

    def close(self, code: int = 1000, reason: str = "") -> None:
        self.loop.call_soon(self._end, code, reason)

    def abort(self) -> None:
        self._end(1006, "dropped")

    def _deliver_up(self, frame: str) -> None:
        if not self.closed:
            self.session.receive(frame, self.loop.time())

    def _wake(self) -> None:
        session = self.session
        if session.pending_auth is not None:
            session.authenticated(ANONYMOUS, self.loop.time())
        for frame in session.data_to_send():
            self.loop.call_soon(self._deliver_down, frame)
        request = session.close_request
        if request is not None:
            self.loop.call_soon(self._end, request.code, request.reason)

    def _deliver_down(self, frame: str) -> None:
        if not self.closed:
            self.receiver.frame_received(frame)

    def _end(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.session.connection_lost()
        self.receiver.connection_lost(code, reason)


class NatsMachine(NetMachine):
    """A ``NetMachine`` whose connection is its own: ``await net.close()`` ends both."""

    def __init__(self, client: Client, machine_id: str, gateway: Gateway) -> None:
        super().__init__(client, machine_id)
        self._gateway = gateway
        self._owner = client

    async def close(self) -> None:
        await self._owner.close()
        await self._gateway.stop()


async def connect(
    nats_url: str,
    machine_id: str,
    *,
    states: list[str] | None = None,
    client_id: str | None = None,
    request_timeout: float = 10.0,
    **nats_options: Any,
) -> NatsMachine:
    """Mirror ``machine_id``, hosted anywhere on the NATS network, in this process. Raises
    ``rpc.RpcError`` (``unknown_machine``) when no host serves it; ``nats_options`` go to
    ``nats.connect`` (credentials, TLS)."""
    subjects.check_id(machine_id)
    hub = Hub(schedule=soon, heartbeat=LOOPBACK_HEARTBEAT)
    gateway = Gateway(hub, nats_url, nats_options, request_timeout=request_timeout)
    await gateway.start()

    async def loopback(url: str, receiver: Receiver) -> Transport:
        return _Loopback(hub, receiver)

    client = Client(
        f"nats:{machine_id}",
        client_id=client_id,
        connector=loopback,
        request_timeout=request_timeout,
        backoff=0.1,
        backoff_max=1.0,
    )
    try:
        await client.connect()
        net = NatsMachine(client, machine_id, gateway)
        client.session.add_mirror(net, states)
        await client.machine(machine_id, states)
    except BaseException:
        await client.close()
        await gateway.stop()
        raise
    return net
