"""Why a connection failed, said as soon as it is known: ``rpc.ConnectError.reason`` for a refused
port, a wrong path, a refused origin, a peer that never answers, and a URL or peer that is not
the protocol. Real sockets on 127.0.0.1; each case must fail long before the request timeout."""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("websockets")
if sys.platform == "emscripten":
    pytest.skip("needs listening sockets", allow_module_level=True)

import asyncio
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from rpc_support import Relay
from websockets.asyncio.server import ServerConnection, serve

import asyncmachine as am
from asyncmachine import rpc

Serve = Callable[..., Awaitable[rpc.Server]]
MakeClient = Callable[..., rpc.Client]

PATIENT = 30.0
"""The client's timeouts: a reason known at once must not wait for them."""
PROMPT = 3.0
"""How long a failure may take to be reported, at most (generous for a busy machine)."""

S = rpc.ClientStates()


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def fails_with(client: rpc.Client, reason: str) -> rpc.ConnectError:
    started = time.monotonic()
    with pytest.raises(rpc.ConnectError) as err:
        await client.connect()
    took = time.monotonic() - started
    assert err.value.reason == reason, err.value
    assert took < PROMPT, f"{reason} took {took:.1f} s"
    assert client.mach.not1(S.Start), "a failed connect() stops the client"
    reconnects = client.reconnects
    await asyncio.sleep(0.1)
    assert client.reconnects == reconnects  # and it does not keep trying
    return err.value


def patient(make_client: MakeClient, url: str, **options: object) -> rpc.Client:
    return make_client(url, request_timeout=PATIENT, connect_timeout=PATIENT, **options)


async def test_refused(make_client: MakeClient) -> None:
    client = patient(make_client, f"ws://127.0.0.1:{free_port()}")
    await fails_with(client, "refused")


async def test_wrong_path_is_not_found(
    serve: Serve, mach: am.Machine, make_client: MakeClient
) -> None:
    server = await serve(mach, path="/rpc")
    assert server.url.endswith("/rpc")
    client = patient(make_client, f"ws://127.0.0.1:{server.port}/nope")
    err = await fails_with(client, "not_found")
    assert "404" in str(err)
    await patient(make_client, server.url).connect()  # the right path works


async def test_refused_origin_is_forbidden_and_logged(
    serve: Serve,
    mach: am.Machine,
    make_client: MakeClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="asyncmachine.rpc")
    server = await serve(mach, allowed_origins=["https://app.example"])
    client = patient(make_client, server.url, origin="https://evil.example")
    await fails_with(client, "forbidden_origin")
    assert any("https://evil.example" in r.getMessage() for r in caplog.records)
    await patient(make_client, server.url, origin="https://app.example").connect()
    await patient(make_client, server.url).connect()  # no Origin: not a browser


async def test_silence_is_a_timeout(
    serve: Serve, mach: am.Machine, make_client: MakeClient
) -> None:
    server = await serve(mach)
    relay = await Relay(server.port).listen()
    try:
        relay.blackhole()  # TCP connects; nothing ever comes back
        client = make_client(relay.url, request_timeout=PATIENT, connect_timeout=0.5)
        await fails_with(client, "timeout")
    finally:
        await relay.close()


@pytest.mark.parametrize("url", ["not a url", "http://127.0.0.1:1/", "ws://"])
async def test_a_malformed_url_is_a_protocol_error(make_client: MakeClient, url: str) -> None:
    await fails_with(patient(make_client, url), "protocol")


@pytest.fixture
async def echo_url() -> AsyncIterator[str]:
    """A WebSocket server that is not an RPC server: it echoes."""

    async def echo(ws: ServerConnection) -> None:
        async for frame in ws:
            await ws.send(frame)

    async with serve(echo, "127.0.0.1", 0) as ws_server:
        port = next(iter(ws_server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


async def test_a_peer_that_does_not_speak_the_protocol(
    echo_url: str, make_client: MakeClient
) -> None:
    await fails_with(patient(make_client, echo_url), "protocol")


async def test_another_protocol_version_is_a_protocol_error(make_client: MakeClient) -> None:
    async def old_server(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send(json.dumps({"t": "err", "code": "version", "msg": "unsupported"}))
        await ws.close(4000)

    async with serve(old_server, "127.0.0.1", 0) as ws_server:
        port = next(iter(ws_server.sockets)).getsockname()[1]
        err = await fails_with(patient(make_client, f"ws://127.0.0.1:{port}"), "protocol")
    assert "version" in str(err)


async def test_a_client_that_was_ready_keeps_retrying(
    serve: Serve, mach: am.Machine, make_client: MakeClient
) -> None:
    """Once connected, a refused reconnect is an outage to ride out, not an answer."""
    server = await serve(mach)
    client = await make_client(server.url).connect()
    port = server.port
    await server.stop()
    async with asyncio.timeout(5):
        while client.reconnects < 2:
            await asyncio.sleep(0.02)
    assert client.mach.is1(S.Start)
    await server.start(port=port)
    async with asyncio.timeout(5):
        await client.mach.when1(S.Ready)
