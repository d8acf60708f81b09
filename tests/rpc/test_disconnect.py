"""``Server.disconnect``: the application ends one client's access (close code 4003)."""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("websockets")
if sys.platform == "emscripten":
    pytest.skip("needs listening sockets", allow_module_level=True)

import asyncio
from collections.abc import Awaitable, Callable

from rpc_support import TIMEOUT

import asyncmachine as am
from asyncmachine import rpc

Serve = Callable[..., Awaitable[rpc.Server]]
Connect = Callable[..., Awaitable[rpc.Client]]
CS = rpc.ClientStates()


async def test_disconnect_closes_only_that_client_and_a_revoked_token_stays_out(
    mach: am.Machine, serve: Serve, connect: Connect
) -> None:
    allowed = {"t-a", "t-b"}

    def authenticate(token: str | None, conn: rpc.ConnInfo) -> rpc.Principal | None:
        return rpc.Principal(conn.client_id) if token in allowed else None

    server = await serve(mach, authenticate=authenticate)
    a = await connect(server.url, token="t-a", client_id="a")
    b = await connect(server.url, token="t-b", client_id="b")
    net_b = await b.machine(mach.id)
    closed: list[tuple[int, str]] = []
    assert a._link is not None
    a._link.closed.add_done_callback(lambda f: closed.append(f.result()))
    allowed.discard("t-a")  # revoke first, so the reconnect is refused

    assert server.disconnect(client="a", reason="worker released") == 1
    await asyncio.wait_for(a.mach.when1(CS.ErrAuth), TIMEOUT)
    assert closed == [(4003, "worker released")]
    assert a.mach.not1(CS.Start)  # a refused token stops the client
    # the other client never noticed
    assert b.mach.is1(CS.Ready) and b.reconnects == 0
    assert await net_b.add1("A") == am.Executed
    assert server.disconnect(client="nobody") == 0


async def test_disconnect_by_session_and_bad_calls(
    mach: am.Machine, serve: Serve, connect: Connect
) -> None:
    server = await serve(mach)
    a = await connect(server.url, client_id="a")
    first = a.session_id
    assert server.disconnect(session=first) == 1
    # nothing refuses it: the client reconnects with a new session
    await asyncio.wait_for(a.mach.when_ticks(CS.Ready, 2), TIMEOUT)
    assert a.session_id != first
    assert server.disconnect(client="a", session=first) == 0
    with pytest.raises(ValueError, match="client id or a session id"):
        server.disconnect()
