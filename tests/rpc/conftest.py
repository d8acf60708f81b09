"""Fixtures for the RPC tests: real servers on 127.0.0.1 (port 0), real WebSocket clients.

Every server, client and raw socket a test opens is closed at teardown, so a failing test leaves
nothing running. Importing this module needs no ``websockets`` (the Pyodide run collects it too);
the test modules skip themselves where the server cannot run.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pytest

import asyncmachine as am
from asyncmachine import rpc

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

MACHINE_ID = "mach"

SCHEMA: am.Schema = {
    "A": am.State(),
    "B": am.State(require=("A",)),
    "C": am.State(remove=("A",)),
    "Auto": am.State(auto=True, require=("A",)),
    "Multi": am.State(multi=True),
}
"""Requires, removes, an auto state and a multi state: enough to tell server-side resolution
from a client guessing."""

Serve = Callable[..., Awaitable["rpc.Server"]]
MakeClient = Callable[..., rpc.Client]
Connect = Callable[..., Awaitable[rpc.Client]]
RawConnect = Callable[..., Awaitable["ClientConnection"]]


@pytest.fixture
def mach() -> am.Machine:
    return am.Machine(SCHEMA, id=MACHINE_ID)


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """``await serve(*machines, **Server options)``: a started server on a free local port."""
    servers: list[rpc.Server] = []

    async def start(*machines: am.Machine, **options: Any) -> rpc.Server:
        server = rpc.Server(machines, **options)
        await server.start("127.0.0.1", 0)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
async def server(serve: Serve, mach: am.Machine) -> rpc.Server:
    return await serve(mach)


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    """``make_client(url, **Client options)``: a client, not started yet.

    Reconnects are fast (50 ms backoff) and requests give up after 5 s, so a broken reconnect
    fails the test instead of hanging it.
    """
    clients: list[rpc.Client] = []

    def make(url: str, **options: Any) -> rpc.Client:
        options.setdefault("backoff", 0.05)
        options.setdefault("request_timeout", 5.0)
        client = rpc.Client(url, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
def connect(make_client: MakeClient) -> Connect:
    """``await connect(url, **Client options)``: a client that is ``Ready``."""

    async def open_client(url: str, **options: Any) -> rpc.Client:
        return await make_client(url, **options).connect()

    return open_client


@pytest.fixture
async def raw() -> AsyncIterator[RawConnect]:
    """``await raw(url, hello=True, token=None, **websockets options)``: a bare WebSocket that
    speaks the protocol by hand; with ``hello`` it has already been welcomed."""
    from websockets.asyncio.client import connect

    sockets: list[ClientConnection] = []

    async def open_raw(
        url: str, *, hello: bool = True, token: str | None = None, **options: Any
    ) -> ClientConnection:
        options.setdefault("ping_interval", None)
        options.setdefault("compression", None)
        options.setdefault("proxy", None)
        ws = await connect(url, **options)
        sockets.append(ws)
        if hello:
            message: dict[str, Any] = {"t": "hello", "v": rpc.VERSION}
            if token is not None:
                message["token"] = token
            await ws.send(json.dumps(message))
            welcome = json.loads(await ws.recv())
            assert welcome["t"] == "welcome", welcome
        return ws

    yield open_raw
    for ws in sockets:
        await ws.close()
