"""Malformed frames against a real ``rpc.Server``: it answers with ``err``, closes only where the
protocol says so, and never breaks: not itself, not its other clients, not the machine it hosts.
"""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("websockets")
pytest.importorskip("hypothesis")
if sys.platform == "emscripten":
    pytest.skip("the RPC server needs sockets", allow_module_level=True)

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rpc_strategies import ERR_CODES, client_frames, nested
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

import asyncmachine as am
from asyncmachine import rpc

TIMEOUT = 5.0
MAX_ID = 2**53 - 1

Serve = Callable[..., Awaitable[rpc.Server]]
Connect = Callable[..., Awaitable[rpc.Client]]
RawConnect = Callable[..., Awaitable[ClientConnection]]

TOKENS = rpc.tokens(
    {
        # the fuzzer may read the guarded machine and write only the sandbox
        "fuzzer": rpc.Principal("fuzzer", {"guarded": rpc.READ_ONLY}),
        "good": rpc.Principal("good"),
    }
)

frames = client_frames

FUZZ = settings(
    max_examples=60,
    deadline=None,
    # one server for all examples is the point: it must outlive every one of them
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# ------------------------------------------------------------------------------------ fixtures


@dataclass
class Target:
    server: rpc.Server
    guarded: am.Machine
    """Read-only for the fuzzer: its clock must never change."""
    net: rpc.NetMachine
    """A well-behaved client's mirror of ``guarded``, connected before any fuzzing."""


def schema() -> am.Schema:
    return {
        "A": am.State(),
        "B": am.State(require=("A",)),
        "C": am.State(remove=("A",)),
        "Multi": am.State(multi=True),
    }


@pytest.fixture
async def target(serve: Serve, connect: Connect) -> AsyncIterator[Target]:
    guarded = am.Machine(schema(), id="guarded")
    # writable for the fuzzer: whatever well-formed mutations it sends run here
    sandbox = am.Machine(schema(), id="sandbox")
    server = await serve(guarded, sandbox, authenticate=TOKENS)
    client = await connect(server.url, token="good")
    yield Target(server, guarded, await client.machine("guarded"))


sentinels = itertools.count()


def says_bye(frame: str | bytes) -> bool:
    try:
        message = json.loads(frame)
    except ValueError:
        return False
    return isinstance(message, dict) and message.get("t") == "bye"


async def send_and_collect(ws: ClientConnection, batch: list[str | bytes]) -> list[dict[str, Any]]:
    """Send ``batch``, then a ping; every message that came back before its pong (or before the
    normal close a ``bye`` in the batch asked for)."""
    replies: list[dict[str, Any]] = []
    sentinel = 10**9 + next(sentinels)  # the server echoes a numeric ts
    try:
        for frame in batch:
            await ws.send(frame)
        await ws.send(json.dumps({"t": "ping", "ts": sentinel}))
        async with asyncio.timeout(TIMEOUT):
            while (message := json.loads(await ws.recv())) != {"t": "pong", "ts": sentinel}:
                replies.append(message)
    except ConnectionClosed:
        assert ws.close_code == 1000 and any(map(says_bye, batch)), ws.close_code
    return replies


async def recv_json(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(TIMEOUT):
        message = json.loads(await ws.recv())
    assert isinstance(message, dict)
    return message


async def round_trip(target: Target) -> None:
    """The well-behaved client still mutates and reads its own write."""
    net = target.net
    assert await net.toggle1("A") == am.Executed
    assert net.time() == target.guarded.time()


# ------------------------------------------------------------------------------------ tests


@FUZZ
@given(batch=st.lists(frames, min_size=10, max_size=40))
async def test_malformed_frames_never_break_the_server(
    target: Target, raw: RawConnect, batch: list[str | bytes]
) -> None:
    before = target.guarded.time()
    ws = await raw(target.server.url, token="fuzzer")
    replies = await send_and_collect(ws, batch)
    await ws.close()

    for reply in replies:
        assert reply["t"] in {"err", "snap", "diff", "res", "pong"}, reply
        if reply["t"] == "err":
            assert reply["code"] in ERR_CODES, reply
            assert isinstance(reply["msg"], str)
    assert target.guarded.time() == before
    await round_trip(target)


@settings(FUZZ, max_examples=100)
@given(first=frames)
async def test_anything_but_a_hello_first_is_refused(
    target: Target, raw: RawConnect, first: str | bytes
) -> None:
    ws = await raw(target.server.url, hello=False)
    await ws.send(first)
    async with asyncio.timeout(TIMEOUT):
        reply = json.loads(await ws.recv())
        if reply["t"] == "err":  # refused: a bad hello (4000) or a bad token (4001)
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == (4001 if reply["code"] == "auth" else 4000)
        else:
            assert reply["t"] == "welcome"  # hypothesis found a valid hello with a valid token
    await ws.close()
    await round_trip(target)


# The fuzzer nests only where nothing is echoed: where a pong echoes it, the depth that fails
# depends on the stack and on the recursion limit (which Hypothesis raises while it runs).
async def test_a_ping_nested_near_the_recursion_limit_is_not_an_internal_error(
    target: Target, raw: RawConnect
) -> None:
    ws = await raw(target.server.url, token="fuzzer")
    codes: dict[int, str] = {}
    limit = sys.getrecursionlimit()
    for depth in range(limit // 2, limit + 100):
        await ws.send(nested(depth, '{"t":"ping","ts":%s}'))
        reply = await recv_json(ws)
        codes[depth] = reply.get("code", reply["t"])
    assert "internal" not in codes.values(), [d for d, code in codes.items() if code == "internal"]
    await round_trip(target)


async def test_oversized_frame_closes_1009(target: Target, raw: RawConnect) -> None:
    ws = await raw(target.server.url, token="fuzzer")
    await ws.send('{"t":"ping","ts":"' + "x" * target.server.max_frame + '"}')
    async with asyncio.timeout(TIMEOUT):
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert ws.close_code == 1009
    await round_trip(target)


async def flood(
    serve: Serve, connect: Connect, raw: RawConnect, pings: int, seconds: float
) -> None:
    """``pings`` pings at once against a burst of 20: ``err`` flood, then close 1008 within
    ``seconds``; a well-behaved client on the same server does not notice."""
    guarded = am.Machine(schema(), id="guarded")
    server = await serve(guarded, authenticate=TOKENS, flood_rate=10, flood_burst=20)
    client = await connect(server.url, token="good")
    net = await client.machine("guarded")

    ws = await raw(server.url, token="fuzzer")
    for i in range(pings):
        await ws.send(json.dumps({"t": "ping", "ts": i}))
    replies: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(seconds):
            with pytest.raises(ConnectionClosed):
                while True:
                    replies.append(json.loads(await ws.recv()))
    finally:  # should the close hang, end it, so that server.stop() need not wait for it
        for session in server.sessions:
            if session.principal.name == "fuzzer":
                server._conns[session].ws.transport.abort()
    assert ws.close_code == 1008
    assert replies[-1] == {"t": "err", "code": "flood", "msg": "too many messages"}
    served = [r["ts"] for r in replies[:-1]]
    assert served == list(range(len(served))) and 20 <= len(served) < pings  # the burst, in order

    assert await net.add1("A") == am.Executed  # the flood cost others nothing
    assert net.time() == guarded.time()


async def test_flood_gets_err_flood_and_close_1008(
    serve: Serve, connect: Connect, raw: RawConnect
) -> None:
    await flood(serve, connect, raw, pings=25, seconds=TIMEOUT)


async def test_a_big_flood_is_closed_promptly(
    serve: Serve, connect: Connect, raw: RawConnect
) -> None:
    await flood(serve, connect, raw, pings=200, seconds=1.0)
