"""The protocol's sessions joined in memory: a hub with server sessions, client sessions, a
clock the test moves, and a scheduler the test runs. No sockets, no event loop needed (the auth
hook aside), so these tests run the same in CPython and in Pyodide.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import asyncmachine as am
from asyncmachine.rpc import _protocol as p
from asyncmachine.rpc._auth import Principal
from asyncmachine.rpc._client_session import ClientSession
from asyncmachine.rpc._hub import Hub
from asyncmachine.rpc._netmachine import NetMachine
from asyncmachine.rpc._server_session import ServerSession


class Owner:
    """What a mirror needs of its owner, for mirrors driven by hand (no remote calls)."""

    mach = am.Machine({"Start": am.State()})

    async def _mutate(self, *args: Any) -> am.Result:
        raise AssertionError("no remote calls in the loopback tests")

    _check = _explain = _sync = _mutate


class Loopback:
    """A hub and its sessions; ``now`` is the clock every session sees."""

    def __init__(self, *machines: am.Machine, **options: Any) -> None:
        self.scheduled: list[Callable[[], None]] = []
        self.hub = Hub(schedule=self.scheduled.append, **options)
        for mach in machines:
            self.hub.expose(mach)
        self.now = 0.0

    def run_scheduled(self) -> None:
        while self.scheduled:
            self.scheduled.pop(0)()

    def server(self, principal: Principal | None = None, **hello: Any) -> ServerSession:
        """A server session that has said hello and been let in as ``principal``."""
        session = ServerSession(self.hub, "loopback", None, self.now)
        session.receive(p.encode({"t": "hello", "v": p.VERSION, **hello}), self.now)
        session.authenticated(principal or Principal("tester"), self.now)
        [welcome] = session.data_to_send()
        assert p.loads(welcome)["t"] == "welcome"
        return session

    def send(self, session: ServerSession, message: dict[str, Any] | str) -> list[dict[str, Any]]:
        """Deliver one frame; run what it scheduled; every message the session sent back."""
        frame = message if isinstance(message, str) else json.dumps(message)
        session.receive(frame, self.now)
        self.run_scheduled()
        return [p.loads(f) for f in session.data_to_send()]

    def client(self, client_id: str = "c1", **options: Any) -> ClientSession:
        return ClientSession(client_id, **options)

    def join(self, client: ClientSession, principal: Principal | None = None) -> ServerSession:
        """Connect ``client`` to a new server session (the handshake done)."""
        server = ServerSession(self.hub, "loopback", None, self.now)
        client.open(self.now)
        self.pump(client, server)
        assert server.pending_auth is not None
        server.authenticated(principal or Principal("tester"), self.now)
        self.pump(client, server)
        assert client.connected
        return server

    def pump(self, client: ClientSession, server: ServerSession) -> None:
        """Move frames both ways until neither side has anything to say."""
        while True:
            self.run_scheduled()
            up = client.data_to_send()
            down = server.data_to_send()
            if not up and not down:
                return
            for frame in up:
                server.receive(frame, self.now)
            for frame in down:
                client.receive(frame, self.now)

    def mirror(
        self, client: ClientSession, machine_id: str, states: list[str] | None = None
    ) -> NetMachine:
        net = NetMachine(Owner(), machine_id)  # type: ignore[arg-type]
        client.add_mirror(net, states)
        client.subscribe(machine_id)
        return net

    def mirrored(
        self, mach: am.Machine, states: list[str] | None = None
    ) -> tuple[ClientSession, ServerSession, NetMachine]:
        """A client joined to this hub, mirroring ``mach`` (its snapshot applied)."""
        client = self.client()
        server = self.join(client)
        net = self.mirror(client, mach.id, states)
        self.pump(client, server)
        return client, server, net
