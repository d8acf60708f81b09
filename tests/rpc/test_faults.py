"""Faults between a real client and a real server: a TCP relay that resets and blackholes, a
server process killed with SIGKILL and started again with the same SQLite store.

In every case nothing the client was told succeeded is lost, nothing runs twice, and the mirror
converges to the server's exact clock.
"""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("websockets")
if sys.platform == "emscripten":
    pytest.skip("needs sockets and processes", allow_module_level=True)

import asyncio
import os
import signal
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from rpc_support import TIMEOUT, Relay

import asyncmachine as am
from asyncmachine import rpc

Serve = Callable[..., Awaitable[rpc.Server]]
MakeClient = Callable[..., rpc.Client]

CS = rpc.ClientStates()
HEARTBEAT = 0.2


class Runs:
    """Server handlers: every run of ``Multi``, with the ``n`` it was sent with."""

    def __init__(self) -> None:
        self.runs: list[object] = []
        self.on_run: Callable[[], None] = lambda: None

    def MultiState(self, e: am.Event) -> None:
        self.runs.append(e.args.get("n"))
        self.on_run()


@pytest.fixture
async def relay(server: rpc.Server) -> AsyncIterator[Relay]:
    relay = await Relay(server.port).listen()
    yield relay
    await relay.close()


async def converged(net: rpc.NetMachine, mach: am.Machine) -> None:
    async with asyncio.timeout(TIMEOUT):
        await net.when_time(mach.state_names(), mach.time())
    assert net.time() == mach.time() and net.queue_tick() <= mach.queue_tick()


@pytest.mark.parametrize("when", ["after it ran", "as it was sent"])
async def test_a_reset_mid_mutation(
    when: str, server: rpc.Server, mach: am.Machine, relay: Relay, make_client: MakeClient
) -> None:
    runs = Runs()
    mach.bind_handlers(runs)
    client = await make_client(relay.url, client_id="c").connect()
    net = await client.machine(mach.id)
    if when == "after it ran":
        runs.on_run = relay.reset  # the answer never leaves
        mutation = asyncio.ensure_future(net.add1("Multi", {"n": 1}))
    else:
        mutation = asyncio.ensure_future(net.add1("Multi", {"n": 1}))
        await asyncio.sleep(0)  # the frame is written...
        relay.reset()  # ...and the connection reset, wherever the frame got to
    async with asyncio.timeout(TIMEOUT):
        assert await mutation == am.Executed
    assert runs.runs == [1]
    assert client.reconnects >= 1
    await converged(net, mach)


async def test_a_reset_then_refused_connections_until_the_relay_listens_again(
    server: rpc.Server, mach: am.Machine, relay: Relay, make_client: MakeClient
) -> None:
    runs = Runs()
    mach.bind_handlers(runs)
    client = await make_client(relay.url, client_id="c").connect()
    net = await client.machine(mach.id)
    disconnected = client.mach.when1(CS.Disconnected)
    await relay.refuse()
    relay.reset()  # the open connection goes; new ones are refused
    mutation = asyncio.ensure_future(net.add1("Multi", {"n": 1}))
    async with asyncio.timeout(TIMEOUT):
        await disconnected
        while client.reconnects < 2:  # refused, and refused again
            await asyncio.sleep(0.01)
    assert not mutation.done() and runs.runs == []
    mach.add1("A")  # meanwhile, on the server
    await relay.listen()  # the same port
    async with asyncio.timeout(TIMEOUT):
        assert await mutation == am.Executed
    assert runs.runs == [1]
    await converged(net, mach)


async def test_a_blackholed_server_is_dropped_within_two_heartbeats(
    serve: Serve, mach: am.Machine, make_client: MakeClient
) -> None:
    """Blackholed for 3 heartbeats: both ends notice within two heartbeats (+0.5 s), whatever TCP
    does; the mutation sent into the silence runs once, after the line is back."""
    runs = Runs()
    mach.bind_handlers(runs)
    server = await serve(mach, heartbeat=HEARTBEAT)
    relay = await Relay(server.port).listen()
    try:
        client = await make_client(relay.url, client_id="c", connect_timeout=0.3).connect()
        net = await client.machine(mach.id)
        loop = asyncio.get_running_loop()
        disconnected = client.mach.when1(CS.Disconnected)
        [session] = server.sessions
        relay.blackhole()
        started = loop.time()
        mutation = asyncio.ensure_future(net.add1("Multi", {"n": 1}))
        async with asyncio.timeout(TIMEOUT):
            await disconnected
        noticed = loop.time() - started
        assert noticed <= 2 * HEARTBEAT + 0.5, noticed
        async with asyncio.timeout(TIMEOUT):
            while session in server.sessions:
                await asyncio.sleep(0.01)
        assert loop.time() - started <= 2 * HEARTBEAT + 0.5
        await asyncio.sleep(3 * HEARTBEAT - (loop.time() - started))
        relay.heal()
        async with asyncio.timeout(TIMEOUT):
            assert await mutation == am.Executed
        assert runs.runs == [1]
        await converged(net, mach)
    finally:
        await relay.close()


async def test_a_mutation_lost_in_the_silence_fails_with_a_clear_error(
    serve: Serve, mach: am.Machine, make_client: MakeClient
) -> None:
    server = await serve(mach, heartbeat=HEARTBEAT)
    relay = await Relay(server.port).listen()
    try:
        client = make_client(relay.url, request_timeout=1.0, connect_timeout=0.3)
        net = await (await client.connect()).machine(mach.id)
        relay.blackhole()
        with pytest.raises(rpc.DisconnectedError) as err:
            await net.add1("Multi")
        assert not isinstance(err.value, TimeoutError)
        assert "connection was lost" in str(err.value)
    finally:
        await relay.close()


# ------------------------------------------------------------------------------------ a crash

HERE = Path(__file__).resolve().parent
COUNT = 60


class CrashServer:
    """``crash_server.py`` in a process of its own."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.port = 0
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(HERE / "crash_server.py"),
            str(self.port),
            str(self.db),
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(HERE.parents[1])},
        )
        assert self.proc.stdout is not None
        async with asyncio.timeout(30):
            self.port = int(await self.proc.stdout.readline())

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()


@pytest.fixture
async def crash_server(tmp_path: Path) -> AsyncIterator[CrashServer]:
    server = CrashServer(tmp_path / "keys.sqlite")
    await server.start()
    yield server
    if server.proc is not None and server.proc.returncode is None:
        await server.kill()


async def test_a_server_killed_mid_burst_comes_back_and_runs_nothing_twice(
    crash_server: CrashServer, make_client: MakeClient
) -> None:
    url = f"ws://127.0.0.1:{crash_server.port}"
    client = await make_client(url, client_id="orders", request_timeout=30.0).connect()
    net = await client.machine("counter")
    mutations = [
        asyncio.ensure_future(net.add1("Count", {"n": n}, key=f"order-{n}")) for n in range(COUNT)
    ]
    async with asyncio.timeout(TIMEOUT):
        while sum(m.done() for m in mutations) < COUNT // 3:
            await asyncio.sleep(0.001)
    await crash_server.kill()  # some answered, some ran unanswered, some never arrived
    answered = sum(m.done() for m in mutations)
    assert answered < COUNT
    await crash_server.start()
    async with asyncio.timeout(30):
        results = await asyncio.gather(*mutations)
    assert results == [am.Executed] * COUNT

    with sqlite3.connect(crash_server.db) as db:
        runs = [n for (n,) in db.execute("SELECT n FROM runs ORDER BY n")]
    assert runs == list(range(COUNT))  # every one told "executed" ran, and ran once
    async with asyncio.timeout(TIMEOUT):
        await net.when_time(["Count"], [2 * COUNT - 1])  # a multi state: 1, then +2 per run
    assert net.tick("Count") == 2 * COUNT - 1
    fresh = await make_client(url).connect()
    assert (await fresh.machine("counter")).time() == net.time()
