"""The server's own machine (``server.mach``, ``rpc.ServerStates``), what a server leaves bound on
the machines it exposes, and idempotency keys that outlive a ``Server`` object."""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("websockets")
if sys.platform == "emscripten":
    pytest.skip("needs listening sockets", allow_module_level=True)

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from rpc_support import TIMEOUT, Taps

import asyncmachine as am
from asyncmachine import rpc

Serve = Callable[..., Awaitable[rpc.Server]]
Connect = Callable[..., Awaitable[rpc.Client]]

SS = rpc.ServerStates()
CS = rpc.ClientStates()


class Events:
    """Records the args of the server machine's multi states."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def ClientConnectedState(self, e: am.Event) -> None:
        self.seen.append(("connected", dict(e.args)))

    def ClientSubscribedState(self, e: am.Event) -> None:
        self.seen.append(("subscribed", dict(e.args)))

    def ClientDisconnectedState(self, e: am.Event) -> None:
        self.seen.append(("disconnected", dict(e.args)))


async def test_the_server_machine_follows_its_life_and_its_clients(
    mach: am.Machine, connect: Connect
) -> None:
    server = rpc.Server(
        [mach], authenticate=lambda token, conn: rpc.Principal("staff") if token else None
    )
    assert server.mach.state_names()[:1] == ["Exception"]
    assert set(SS.names()) <= set(server.mach.state_names())
    events = Events()
    server.mach.bind_handlers(events)
    ready = server.mach.when1(SS.RpcReady)
    await server.start()
    try:
        assert ready.done() and server.mach.is_([SS.Start, SS.RpcReady])
        assert server.mach.not1(SS.RpcStarting)
        client = await connect(server.url, client_id="alice", token="t")
        await client.machine(mach.id)
        session_id = client.session_id
        await client.close()
        async with asyncio.timeout(TIMEOUT):
            while len(events.seen) < 3:
                await asyncio.sleep(0.01)
    finally:
        await server.stop()
    args = {"client_id": "alice", "principal": "staff", "session_id": session_id}
    assert events.seen == [
        ("connected", args),
        ("subscribed", {**args, "machine_id": mach.id}),
        ("disconnected", args),
    ]
    assert server.mach.not1(SS.RpcReady) and server.mach.not1(SS.Start)


async def test_a_subscriber_can_be_greeted_right_after_its_snapshot(
    mach: am.Machine, connect: Connect
) -> None:
    """What the demo does instead of resending its status every second."""
    server = rpc.Server([mach])

    class Greeter:
        def ClientSubscribedState(self, e: am.Event) -> None:
            server.send_payload("hello", e.args["machine_id"], session=e.args["session_id"])

    server.mach.bind_handlers(Greeter())
    await server.start()
    try:
        client = await connect(server.url)
        greeted: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        client.on_payload(lambda name, data, m: greeted.put_nowait((name, data)))
        net = await client.machine(mach.id)
        async with asyncio.timeout(TIMEOUT):
            assert await greeted.get() == ("hello", mach.id)
        assert net.state_names()  # the snapshot came first
    finally:
        await server.stop()


def bound(mach: am.Machine) -> int:
    return sum(type(t).__module__.startswith("asyncmachine.rpc") for t in mach.tracers())


async def test_a_server_watches_a_machine_only_while_someone_subscribes(
    mach: am.Machine, connect: Connect
) -> None:
    for _ in range(3):  # replaced servers, on and off
        server = rpc.Server([mach])
        await server.start()
        assert bound(mach) == 0
        client = await connect(server.url)
        net = await client.machine(mach.id)
        assert bound(mach) == 1
        other = await connect(server.url)
        await other.machine(mach.id)
        assert bound(mach) == 1
        assert await net.add1("Multi") == am.Executed
        await server.stop()
        await client.close()
        await other.close()
        assert bound(mach) == 0
    assert mach.tracers() == []


async def test_a_new_server_object_remembers_the_keys_of_the_old_one(
    mach: am.Machine, connect: Connect
) -> None:
    """The old server ran the mutation but its answer was lost; the new one must not run it
    again when the client resends it."""
    runs: list[int] = []

    class Count:
        def MultiState(self, e: am.Event) -> None:
            runs.append(1)

    mach.bind_handlers(Count())
    old = rpc.Server([mach])
    await old.start()
    port = old.port
    taps = Taps()
    client = await connect(old.url, connector=taps, client_id="shop")
    net = await client.machine(mach.id)
    taps.opened[0].drop = lambda message: message["t"] == "res"  # the answer never arrives
    mutation = asyncio.ensure_future(net.add1("Multi"))
    async with asyncio.timeout(TIMEOUT):
        while not runs:
            await asyncio.sleep(0.005)
    await old.stop()
    new = rpc.Server([mach])  # same machine object, a new Server, the same port
    await new.start(port=port)
    try:
        async with asyncio.timeout(TIMEOUT):
            assert await mutation == am.Executed
        assert runs == [1]
        assert net.time() == mach.time()
    finally:
        await new.stop()
