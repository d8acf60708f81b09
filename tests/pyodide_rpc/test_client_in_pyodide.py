"""The RPC client inside Pyodide, over the JavaScript WebSocket, against a real server.

Runs only inside Pyodide with ``AM_TEST_RPC_URL`` set: ``tests/rpc/test_pyodide_node.py`` starts
the server on CPython and runs this file in Pyodide under Node.
"""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

import asyncmachine as am
from asyncmachine import rpc

URL = os.environ.get("AM_TEST_RPC_URL", "")
REFUSED = os.environ.get("AM_TEST_REFUSED_URL", "")
pytestmark = pytest.mark.skipif(
    sys.platform != "emscripten" or not URL, reason="runs inside Pyodide against a live server"
)


async def test_transport_is_the_browser_websocket() -> None:
    from asyncmachine.rpc._transport import PyodideTransport, default_connector

    lost: list[int] = []

    class Receiver:
        def frame_received(self, frame: str | bytes) -> None:
            pass

        def connection_lost(self, code: int, reason: str) -> None:
            lost.append(code)

    transport = await default_connector()(URL, Receiver())
    assert isinstance(transport, PyodideTransport)
    transport.abort()
    assert lost == [1006]  # a dropped socket is reported at once


async def test_reads_waits_and_mutations() -> None:
    async with asyncio.timeout(10), rpc.Client(URL, client_id="pyodide-1") as client:
        net = await client.machine("shared")
        assert net.state_names() == ["A", "B", "Counter", "Exception"]
        became_b = net.when1("B")
        assert await net.add1("B") == am.Canceled  # B requires A
        assert await net.add(["A", "B"]) == am.Executed
        assert became_b.done() and net.is_(["A", "B"])
        counted = net.when_ticks("Counter", 3)
        for _ in range(2):  # a Multi state: +1 when activated, then +2 per re-activation
            await net.add1("Counter")
        await counted
        assert net.tick("Counter") == 3
        assert await net.remove1("A") == am.Executed
        assert net.not_(["A", "B"])
        assert net.string_all().startswith("(")


async def test_payloads_and_auth() -> None:
    seen: list[tuple[str, object]] = []
    arrived = asyncio.Event()

    def on_payload(name: str, data: object, machine: str | None) -> None:
        seen.append((name, data))
        arrived.set()

    async with asyncio.timeout(10), rpc.Client(URL, client_id="pyodide-2") as client:
        client.on_payload(on_payload)
        net = await client.machine("shared")
        await net.add1("Counter", {"payload": "ping"})  # the server answers with a payload
        await arrived.wait()
        assert seen == [("pong", {"to": "pyodide-2"})]
    with pytest.raises(rpc.AuthError):
        await rpc.Client(URL, token="wrong", max_retries=0).connect()


async def test_connect_errors_say_why() -> None:
    """The browser's WebSocket says nothing; the client asks the URL over HTTP."""
    for url, reason in ((REFUSED, "refused"), (URL.replace("/rpc", "/nope"), "not_found")):
        client = rpc.Client(url, request_timeout=30)
        with pytest.raises(rpc.ConnectError) as err:
            async with asyncio.timeout(10):
                await client.connect()
        assert err.value.reason == reason
        await client.close()


async def test_dry_runs_subsets_and_errors() -> None:
    async with asyncio.timeout(10), rpc.Client(URL, client_id="pyodide-3") as client:
        net = await client.machine("shared", states=["B", "Counter", "Exception"])
        assert net.state_names() == ["B", "Counter", "Exception"]
        assert await net.can_add1("B") == am.Canceled  # B requires A, which it does not see
        assert await net.can_add1("Counter") == am.Executed
        assert await net.add_err(OverflowError("from pyodide")) == am.Executed
        assert net.is_err()
