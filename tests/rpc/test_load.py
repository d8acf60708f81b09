"""Many clients mutating one machine at once: every mutation is answered, none is lost or doubled,
and every mirror ends on the server's exact clock. Bounded in count and time; loopback only."""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("websockets")
if sys.platform == "emscripten":
    pytest.skip("the RPC server needs sockets", allow_module_level=True)

import asyncio
from collections.abc import Awaitable, Callable

import asyncmachine as am
from asyncmachine import rpc

Serve = Callable[..., Awaitable[rpc.Server]]
Connect = Callable[..., Awaitable[rpc.Client]]

CLIENTS = 50
MUTATIONS = 100
"""Enough to interleave every client with every other; the full 100 x 200 is a benchmark
(``python -m bench.rpc``, ``throughput``)."""
DEADLINE = 120.0
"""Seconds for the whole test; it takes a fraction of that on two cores."""


async def test_many_clients_end_on_the_server_clock(serve: Serve, connect: Connect) -> None:
    # one state per client, toggled: every accepted mutation moves the clock by exactly one tick
    names = [f"C{i:03}" for i in range(CLIENTS)]
    mach = am.Machine({name: am.State() for name in names}, id="load")
    server = await serve(mach)

    async def drive(net: rpc.NetMachine, state: str) -> list[am.Result]:
        return [await net.toggle1(state) for _ in range(MUTATIONS)]

    async with asyncio.timeout(DEADLINE):
        clients = await asyncio.gather(
            *(connect(server.url, request_timeout=DEADLINE) for _ in names)
        )
        nets = await asyncio.gather(*(client.machine("load") for client in clients))
        results = await asyncio.gather(
            *(drive(net, name) for net, name in zip(nets, names, strict=True))
        )

        executed = sum(result == am.Executed for batch in results for result in batch)
        assert executed == CLIENTS * MUTATIONS
        assert sum(mach.time()) == executed
        final = mach.time()
        for net in nets:  # what a client did not do itself reaches it as diffs
            await net.when_time(mach.state_names(), final)
    assert all(net.time() == final for net in nets)
    assert all(net.tick(name) == MUTATIONS for net, name in zip(nets, names, strict=True))
    assert all(client.reconnects == 0 for client in clients)
