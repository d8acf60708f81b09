"""A CPython client and raw WebSockets against a real ``rpc.Server`` on 127.0.0.1.

Handshake, mirrored reads and waits, mutations and their results, payloads, auth and policies,
origins, error codes, reconnects, diff-chain gaps, heartbeats and slow readers.
"""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("websockets")
if sys.platform == "emscripten":
    pytest.skip("the RPC server needs sockets", allow_module_level=True)

import asyncio
import json
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from rpc_support import Taps
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus

import asyncmachine as am
from asyncmachine import rpc

TIMEOUT = 5.0
"""Upper bound for anything a test waits on: a broken feature fails instead of hanging."""

MACHINE_ID = "mach"  # the id conftest's `mach` fixture uses

S = rpc.ClientStates()

Serve = Callable[..., Awaitable[rpc.Server]]
MakeClient = Callable[..., rpc.Client]
Connect = Callable[..., Awaitable[rpc.Client]]
RawConnect = Callable[..., Awaitable[ClientConnection]]


class Counter:
    """Server-side handlers: how many times ``Multi`` really activated."""

    def __init__(self) -> None:
        self.runs = 0

    def MultiState(self, e: am.Event) -> None:
        self.runs += 1


async def recv_json(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(TIMEOUT):
        message = json.loads(await ws.recv())
    assert isinstance(message, dict)
    return message


async def until_closed(ws: ClientConnection) -> list[dict[str, Any]]:
    """Every message the server sent until it closed the connection."""
    messages: list[dict[str, Any]] = []
    async with asyncio.timeout(TIMEOUT):
        try:
            while True:
                messages.append(json.loads(await ws.recv()))
        except ConnectionClosed:
            return messages


async def restart(server: rpc.Server, client: rpc.Client) -> None:
    """Stop the server, start it on the same port, and wait until ``client`` is Ready again."""
    port = server.port
    disconnected = client.mach.when1(S.Disconnected)
    await server.stop()
    async with asyncio.timeout(TIMEOUT):
        await disconnected
    ready = client.mach.when1(S.Ready)
    await server.start(port=port)
    async with asyncio.timeout(TIMEOUT):
        await ready


# ------------------------------------------------------------------------------------ handshake


async def test_welcome_tells_version_session_heartbeat_and_machines(
    serve: Serve, mach: am.Machine, raw: RawConnect
) -> None:
    hidden = am.Machine({"X": am.State()}, id="hidden")
    server = await serve(
        mach,
        hidden,
        heartbeat=2.5,
        authenticate=rpc.tokens(
            {"t": rpc.Principal("p", policies={"hidden": rpc.Policy(read=False, write=False)})}
        ),
    )
    ws = await raw(server.url, hello=False)
    await ws.send(json.dumps({"t": "hello", "v": rpc.VERSION, "cid": "me", "token": "t"}))
    welcome = await recv_json(ws)
    assert welcome["t"] == "welcome"
    assert welcome["v"] == rpc.VERSION
    assert isinstance(welcome["sid"], str) and welcome["sid"]
    assert welcome["hb_ms"] == 2500
    assert welcome["machines"] == [MACHINE_ID]


async def test_client_learns_the_welcome(server: rpc.Server, connect: Connect) -> None:
    client = await connect(server.url)
    assert client.server_machines == [MACHINE_ID]
    assert client.session_id in {session.id for session in server.sessions}
    assert client.heartbeat == server.heartbeat
    assert client.mach.is_([S.Start, S.Connected, S.Ready])


async def test_version_mismatch_gets_err_and_close_4000(
    server: rpc.Server, raw: RawConnect
) -> None:
    ws = await raw(server.url, hello=False)
    await ws.send(json.dumps({"t": "hello", "v": rpc.VERSION + 1}))
    messages = await until_closed(ws)
    assert [(m["t"], m["code"]) for m in messages] == [("err", "version")]
    assert ws.close_code == 4000


async def test_first_message_must_be_hello(server: rpc.Server, raw: RawConnect) -> None:
    ws = await raw(server.url, hello=False)
    await ws.send(json.dumps({"t": "sub", "id": 1, "m": MACHINE_ID}))
    messages = await until_closed(ws)
    assert [(m["t"], m["code"]) for m in messages] == [("err", "bad_message")]
    assert ws.close_code == 4000


async def test_no_hello_in_time_closes_4000(
    serve: Serve, mach: am.Machine, raw: RawConnect
) -> None:
    server = await serve(mach, handshake_timeout=0.05)
    ws = await raw(server.url, hello=False)
    messages = await until_closed(ws)
    assert [m["t"] for m in messages] == ["err"]
    assert ws.close_code == 4000


# ------------------------------------------------------------------------------------ reads


async def test_mirror_reads_equal_the_server_machine(
    server: rpc.Server, mach: am.Machine, connect: Connect
) -> None:
    mach.add(["A", "Multi"])
    mach.add1("Multi")
    client = await connect(server.url)
    net = await client.machine(MACHINE_ID)

    assert net.id == MACHINE_ID
    assert net.state_names() == mach.state_names()
    assert am.schema_to_dict(net.schema) == am.schema_to_dict(mach.schema)
    assert net.is1("A") and net.is1("Auto") and not net.is1("B")
    assert net.is_(["A", "Auto"]) and net.not1("C")
    assert net.tick("Multi") == mach.tick("Multi") == 3
    assert net.clock() == mach.clock()
    assert net.time() == mach.time()
    # the order of active states is the resolver's, and only the server has it
    assert sorted(net.active_states()) == sorted(mach.active_states())
    assert net.string_all() == mach.string_all()
    assert net.queue_tick() == mach.queue_tick()
    assert net.machine_tick() == mach.machine_tick()


# ------------------------------------------------------------------------------------ waits


@pytest.mark.parametrize("side", ["server", "client"])
async def test_waiters_resolve_on_remote_and_own_changes(
    side: str, server: rpc.Server, mach: am.Machine, connect: Connect
) -> None:
    mach.add1("C")
    client = await connect(server.url)
    net = await client.machine(MACHINE_ID)

    async def mutate(op: str, state: str) -> None:
        if side == "server":
            getattr(mach, op)(state)
        else:
            assert await getattr(net, op)(state) == am.Executed

    waiters = {
        "when1": net.when1("Auto"),
        "when_not1": net.when_not1("C"),
        "when_ticks": net.when_ticks("Multi", 3),
        "when_time": net.when_time(["A", "Multi"], [1, 3]),
        "when_query": net.when_query(lambda clock: clock["Auto"] == 1 and clock["C"] == 2),
        "when_queue": net.when_queue(mach.queue_tick() + 4),
    }
    assert not any(w.done() for w in waiters.values())

    await mutate("remove1", "C")  # C removes A: A can only come after C left
    await mutate("add1", "A")  # Auto follows A
    await mutate("add1", "Multi")
    await mutate("add1", "Multi")
    if side == "client":  # read-your-writes: resolved by the time the awaits returned
        assert {name: w.done() for name, w in waiters.items()} == dict.fromkeys(waiters, True)
    async with asyncio.timeout(TIMEOUT):
        for waiter in waiters.values():
            await waiter
    assert net.time() == mach.time()


async def test_when_queue_with_a_queued_result(
    server: rpc.Server, mach: am.Machine, connect: Connect
) -> None:
    queued: list[am.Result] = []

    class QueuesMulti:
        def CState(self, e: am.Event) -> None:
            queued.append(e.machine.add1("Multi"))

    mach.bind_handlers(QueuesMulti())
    client = await connect(server.url)
    net = await client.machine(MACHINE_ID)

    assert await net.add1("C") == am.Executed
    [tick] = queued
    assert tick.is_queued
    assert net.when_queue(tick).done()  # the queued mutation ran before the result came back
    assert net.is1("Multi")
    assert net.queue_tick() == mach.queue_tick()

    later = net.when_queue(mach.queue_tick() + 1)
    assert not later.done()
    mach.add1("A")
    async with asyncio.timeout(TIMEOUT):
        await later


# ------------------------------------------------------------------------------------ mutations

SCRIPT: list[tuple[str, Any]] = [
    ("add1", "B"),  # Canceled: requires A
    ("add1", "A"),  # Auto follows
    ("add1", "B"),
    ("add", ["C", "Multi"]),  # C removes A, then B and Auto lose their requirement
    ("add1", "Multi"),  # a multi state ticks twice
    ("remove1", "C"),
    ("remove", ["Multi", "A"]),
    ("set", ["A", "B"]),
    ("toggle", ["A", "B"]),
    ("toggle", ["A", "Multi"]),
    ("toggle1", "C"),
    ("toggle1", "C"),
    ("set", ["C", "B"]),  # Canceled: B requires A, C removes A
    ("set", []),
    ("remove1", "A"),
]


async def test_mutations_answer_like_a_local_machine(
    server: rpc.Server, mach: am.Machine, connect: Connect
) -> None:
    twin = am.Machine(mach.schema, id="twin")
    client = await connect(server.url)
    net = await client.machine(MACHINE_ID)
    for op, states in SCRIPT:
        expected = getattr(twin, op)(states)
        assert await getattr(net, op)(states) == expected, (op, states)
        # the mirror already shows the effect: read-your-writes
        assert net.string_all() == mach.string_all() == twin.string_all(), (op, states)
        assert net.time() == mach.time()


async def test_args_reach_server_handlers_that_may_cancel(
    server: rpc.Server, mach: am.Machine, connect: Connect
) -> None:
    seen: list[dict[str, Any]] = []

    class Guard:
        def AEnter(self, e: am.Event) -> bool:
            seen.append(dict(e.args))
            return not e.args.get("deny")

    mach.bind_handlers(Guard())
    client = await connect(server.url)
    net = await client.machine(MACHINE_ID)

    assert await net.add1("A", {"deny": True, "who": "client"}) == am.Canceled
    assert not net.is1("A") and net.time() == mach.time()
    assert await net.add1("A", {"who": "client"}) == am.Executed
    assert net.is_(["A", "Auto"])
    assert seen == [{"deny": True, "who": "client"}, {"who": "client"}]


async def test_local_checks_fail_like_a_local_machine(
    server: rpc.Server, mach: am.Machine, connect: Connect
) -> None:
    client = await connect(server.url)
    net = await client.machine(MACHINE_ID)
    with pytest.raises(am.StateMissingError):
        mach.add1("Nope")
    with pytest.raises(am.StateMissingError):
        await net.add1("Nope")
    with pytest.raises(TypeError):
        await net.add("A")  # a string is not a list of states
    with pytest.raises(am.StateMissingError):
        net.when1("Nope")


# ------------------------------------------------------------------------------------ payloads


async def test_payloads_to_everyone_by_machine_and_by_client(
    server: rpc.Server, connect: Connect
) -> None:
    alice = await connect(server.url, client_id="alice")
    bob = await connect(server.url, client_id="bob")
    await alice.machine(MACHINE_ID)  # only alice watches the machine
    inbox: dict[str, asyncio.Queue[tuple[str, Any, str | None]]] = {
        "alice": asyncio.Queue(),
        "bob": asyncio.Queue(),
    }
    alice.on_payload(lambda name, data, m: inbox["alice"].put_nowait((name, data, m)))
    bob.on_payload(lambda name, data, m: inbox["bob"].put_nowait((name, data, m)))

    assert server.send_payload("news", {"n": 1}) == 2
    assert server.send_payload("report", [1, 2], machine=MACHINE_ID) == 1
    assert server.send_payload("direct", "hi bob", client="bob") == 1
    assert server.send_payload("direct", "hi bob", client="nobody") == 0

    async def received(who: str, count: int) -> list[tuple[str, Any, str | None]]:
        async with asyncio.timeout(TIMEOUT):
            return [await inbox[who].get() for _ in range(count)]

    assert await received("alice", 2) == [("news", {"n": 1}, None), ("report", [1, 2], MACHINE_ID)]
    # per session order is kept, so "direct" arriving means "report" was never coming
    assert await received("bob", 2) == [("news", {"n": 1}, None), ("direct", "hi bob", None)]
    assert inbox["alice"].empty() and inbox["bob"].empty()


async def test_payload_handler_can_be_removed(server: rpc.Server, connect: Connect) -> None:
    client = await connect(server.url)
    kept: asyncio.Queue[str] = asyncio.Queue()
    removed: list[str] = []
    client.on_payload(lambda name, data, m: kept.put_nowait(name))
    remove = client.on_payload(lambda name, data, m: removed.append(name))
    remove()
    server.send_payload("ping-ish", None)
    async with asyncio.timeout(TIMEOUT):
        assert await kept.get() == "ping-ish"
    assert removed == []


async def test_payloads_reach_a_consumer_machine(server: rpc.Server, connect: Connect) -> None:
    consumer = am.Machine({"ServerPayload": am.State(multi=True)}, id="consumer")
    received: list[dict[str, Any]] = []

    class Consumer:
        def ServerPayloadState(self, e: am.Event) -> None:
            received.append(dict(e.args))

    consumer.bind_handlers(Consumer())
    client = await connect(server.url, consumer=consumer)
    await client.machine(MACHINE_ID)
    both = consumer.when_ticks("ServerPayload", 3)  # a multi state: 1, then +2 per re-activation

    server.send_payload("job", {"id": 7})
    server.send_payload("done", [7], machine=MACHINE_ID)
    async with asyncio.timeout(TIMEOUT):
        await both
    assert received == [
        {"name": "job", "data": {"id": 7}, "machine": None},
        {"name": "done", "data": [7], "machine": MACHINE_ID},
    ]


async def test_payload_data_must_be_json(server: rpc.Server) -> None:
    with pytest.raises(TypeError):
        server.send_payload("bad", object())


# ------------------------------------------------------------------------------------ auth

TOKENS = rpc.tokens(
    {
        "admin-token": rpc.Principal("admin"),
        "viewer-token": rpc.Principal("viewer", default=rpc.READ_ONLY),
        "limited-token": rpc.Principal(
            "limited", default=rpc.Policy(states=frozenset({"A", "Multi"}))
        ),
    }
)


async def test_allowed_token_reads_and_writes(
    serve: Serve, mach: am.Machine, connect: Connect
) -> None:
    server = await serve(mach, authenticate=TOKENS)
    client = await connect(server.url, token="admin-token")
    net = await client.machine(MACHINE_ID)
    assert await net.add1("A") == am.Executed
    assert mach.is_(["A", "Auto"])


@pytest.mark.parametrize("token", ["wrong", None])
async def test_refused_token_raises_auth_error_and_stops(
    token: str | None,
    serve: Serve,
    mach: am.Machine,
    make_client: MakeClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="asyncmachine.rpc")
    server = await serve(mach, authenticate=TOKENS)
    client = make_client(server.url, token=token, client_id="intruder")
    with pytest.raises(rpc.AuthError) as err:
        await client.connect()
    assert err.value.code == "auth"
    assert client.mach.is_([S.ErrAuth, S.Exception])
    assert client.mach.not_([S.Start, S.Ready])  # a refused token is not retried
    assert client.reconnects == 0
    refused = [r for r in caplog.records if r.name == "asyncmachine.rpc" and "auth" in r.message]
    assert len(refused) == 1 and "intruder" in refused[0].getMessage()
    assert refused[0].levelno == logging.WARNING


async def test_refused_token_on_the_wire_is_err_auth_and_close_4001(
    serve: Serve, mach: am.Machine, raw: RawConnect
) -> None:
    server = await serve(mach, authenticate=TOKENS)
    ws = await raw(server.url, hello=False)
    await ws.send(json.dumps({"t": "hello", "v": rpc.VERSION, "token": "wrong"}))
    messages = await until_closed(ws)
    assert [(m["t"], m["code"]) for m in messages] == [("err", "auth")]
    assert ws.close_code == 4001


async def test_authenticate_hook_may_be_async_and_see_the_connection(
    serve: Serve, mach: am.Machine, connect: Connect
) -> None:
    seen: list[rpc.ConnInfo] = []

    async def authenticate(token: str | None, conn: rpc.ConnInfo) -> rpc.Principal | None:
        seen.append(conn)
        return rpc.Principal("ok") if token == "async-token" else None

    server = await serve(mach, authenticate=authenticate)
    client = await connect(server.url, token="async-token", client_id="web-1")
    [conn] = seen
    assert conn.client_id == "web-1" and conn.origin is None and "127.0.0.1" in conn.remote
    assert client.mach.is1(S.Ready)


async def test_read_only_principal_reads_but_may_not_write(
    serve: Serve, mach: am.Machine, connect: Connect
) -> None:
    server = await serve(mach, authenticate=TOKENS)
    mach.add1("A")
    client = await connect(server.url, token="viewer-token")
    net = await client.machine(MACHINE_ID)
    assert net.is_(["A", "Auto"]) and net.string_all() == mach.string_all()

    before = mach.time()
    calls = [("add1", "Multi"), ("remove1", "A"), ("set", ["C"]), ("toggle1", "A"), ("add", [])]
    for op, states in calls:
        with pytest.raises(rpc.RpcError) as err:
            await getattr(net, op)(states)
        assert err.value.code == "forbidden", (op, states)
    assert mach.time() == before
    assert net.time() == before
    mach.add1("Multi")  # the subscription still works
    async with asyncio.timeout(TIMEOUT):
        await net.when1("Multi")


async def test_policy_states_limit_what_may_be_called(
    serve: Serve, mach: am.Machine, connect: Connect
) -> None:
    server = await serve(mach, authenticate=TOKENS)
    client = await connect(server.url, token="limited-token")
    net = await client.machine(MACHINE_ID)

    assert await net.add(["A", "Multi"]) == am.Executed
    assert await net.remove1("Multi") == am.Executed
    for states in (["B"], ["A", "B"], ["C"]):
        with pytest.raises(rpc.RpcError) as err:
            await net.add(states)
        assert err.value.code == "forbidden"
    assert mach.string_all() == net.string_all() == "(A:1 Auto:1) [B:0 C:0 Exception:0 Multi:2]"


async def test_policy_states_also_guard_what_set_removes(
    serve: Serve, mach: am.Machine, connect: Connect
) -> None:
    server = await serve(mach, authenticate=TOKENS)
    mach.add(["C", "Multi"])
    client = await connect(server.url, token="limited-token")
    net = await client.machine(MACHINE_ID)
    with pytest.raises(rpc.RpcError):
        await net.set([])
    assert mach.is1("C")


async def test_policy_per_machine_hides_a_machine(
    serve: Serve, mach: am.Machine, connect: Connect
) -> None:
    secret = am.Machine({"X": am.State()}, id="secret")
    hidden = rpc.Policy(read=False, write=False)
    server = await serve(
        mach, secret, authenticate=rpc.tokens({"t": rpc.Principal("p", {"secret": hidden})})
    )
    client = await connect(server.url, token="t")
    assert client.server_machines == [MACHINE_ID]
    with pytest.raises(rpc.RpcError) as err:
        await client.machine("secret")
    assert err.value.code == "unknown_machine"  # as if it did not exist


async def test_allowed_origins(serve: Serve, mach: am.Machine, raw: RawConnect) -> None:
    server = await serve(mach, allowed_origins=["https://app.example"])
    with pytest.raises(InvalidStatus) as err:
        await raw(server.url, hello=False, origin="https://evil.example")
    assert err.value.response.status_code == 403
    await raw(server.url, origin="https://app.example")  # welcomed
    await raw(server.url)  # no Origin header: not a browser, not restricted


# ------------------------------------------------------------------------------------ errors


async def test_unknown_machine(server: rpc.Server, connect: Connect, raw: RawConnect) -> None:
    client = await connect(server.url)
    with pytest.raises(rpc.RpcError) as err:
        await client.machine("nope")
    assert err.value.code == "unknown_machine"

    ws = await raw(server.url)
    await ws.send(json.dumps({"t": "sub", "id": 8, "m": "nope"}))
    reply = await recv_json(ws)
    assert (reply["t"], reply["code"], reply["id"]) == ("err", "unknown_machine", 8)


async def test_unknown_state_on_the_wire(
    server: rpc.Server, mach: am.Machine, raw: RawConnect
) -> None:
    ws = await raw(server.url)
    await ws.send(
        json.dumps({"t": "mut", "id": 7, "m": MACHINE_ID, "op": "add", "states": ["A", "Nope"]})
    )
    reply = await recv_json(ws)
    assert (reply["t"], reply["code"], reply["id"]) == ("err", "unknown_state", 7)
    assert "Nope" in reply["msg"]
    assert not mach.is1("A")  # nothing of it ran


async def test_a_refused_mirror_does_not_break_reconnects(
    server: rpc.Server, mach: am.Machine, connect: Connect
) -> None:
    client = await connect(server.url)
    net = await client.machine(MACHINE_ID)
    with pytest.raises(rpc.RpcError):
        await client.machine("nope")
    await restart(server, client)
    mach.add1("A")  # the mirror that did exist was resubscribed
    async with asyncio.timeout(TIMEOUT):
        await net.when1("A")
    with pytest.raises(rpc.RpcError) as err:
        await client.machine("nope")
    assert err.value.code == "unknown_machine"


# ------------------------------------------------------------------------------------ reconnects


async def test_restart_reconnects_resubscribes_and_resyncs(
    server: rpc.Server, mach: am.Machine, connect: Connect
) -> None:
    client = await connect(server.url)
    net = await client.machine(MACHINE_ID)
    flow: list[str] = []

    def activations(m: am.Machine, before: am.Time, after: am.Time) -> None:
        for state in (S.Ready, S.Disconnected):
            i = m.index1(state)
            if after.is1(i) and not before.is1(i) and flow[-1:] != [state]:
                flow.append(state)

    client.mach.on_change(activations)
    port = server.port

    disconnected = client.mach.when1(S.Disconnected)
    await server.stop()
    async with asyncio.timeout(TIMEOUT):
        await disconnected
    assert client.mach.not1(S.Ready)
    mach.add(["A", "Multi"])  # changes the client cannot see yet
    ready = client.mach.when1(S.Ready)
    await server.start(port=port)
    async with asyncio.timeout(TIMEOUT):
        await ready

    assert flow == [S.Disconnected, S.Ready]
    assert client.reconnects >= 1
    assert net.time() == mach.time() and net.string_all() == mach.string_all()
    mach.add1("C")  # the new subscription is live
    async with asyncio.timeout(TIMEOUT):
        await net.when1("C")
    assert await net.remove1("C") == am.Executed and mach.not1("C")


@pytest.mark.parametrize("yields", [0, 1, 2, 3, 4])
async def test_mutation_in_flight_during_restart_runs_once(
    yields: int, server: rpc.Server, mach: am.Machine, connect: Connect
) -> None:
    """Wherever the restart catches the mutation (before its frame left, after it ran but before
    its result came back, after the result), it runs once: it is resent with the same key."""
    counter = Counter()
    mach.bind_handlers(counter)
    client = await connect(server.url)
    net = await client.machine(MACHINE_ID)
    port = server.port

    mutation = asyncio.ensure_future(net.add1("Multi"))
    for _ in range(yields):
        await asyncio.sleep(0)
    await server.stop()
    await server.start(port=port)
    async with asyncio.timeout(TIMEOUT):
        assert await mutation == am.Executed
    assert counter.runs == 1
    assert mach.tick("Multi") == net.tick("Multi") == 1


async def test_mutation_while_disconnected_is_sent_after_reconnect(
    server: rpc.Server, mach: am.Machine, connect: Connect
) -> None:
    counter = Counter()
    mach.bind_handlers(counter)
    client = await connect(server.url)
    net = await client.machine(MACHINE_ID)
    port = server.port
    disconnected = client.mach.when1(S.Disconnected)
    await server.stop()
    async with asyncio.timeout(TIMEOUT):
        await disconnected

    mutation = asyncio.ensure_future(net.add1("Multi"))
    await server.start(port=port)
    async with asyncio.timeout(TIMEOUT):
        assert await mutation == am.Executed
    assert counter.runs == 1 and net.is1("Multi")


async def test_mutation_sent_into_a_closing_connection_survives(
    server: rpc.Server, mach: am.Machine, connect: Connect
) -> None:
    counter = Counter()
    mach.bind_handlers(counter)
    taps = Taps()
    client = await connect(server.url, connector=taps)
    net = await client.machine(MACHINE_ID)
    port = server.port

    tap = taps.opened[0]
    tap.hold()  # the client's reader is late: it has not seen the close yet
    await server.stop()
    assert client.mach.is1(S.Connected)
    mutation = asyncio.ensure_future(net.add1("Multi"))
    await asyncio.sleep(0)  # the mutation meets the closed socket
    await server.start(port=port)
    tap.release()
    async with asyncio.timeout(TIMEOUT):
        assert await mutation == am.Executed
    assert counter.runs == 1


async def test_idempotency_key_runs_once_across_a_reconnect(
    server: rpc.Server, mach: am.Machine, connect: Connect
) -> None:
    counter = Counter()
    mach.bind_handlers(counter)
    client = await connect(server.url, client_id="shop")
    net = await client.machine(MACHINE_ID)

    assert await net.add1("Multi", key="order-1") == am.Executed
    await restart(server, client)
    assert await net.add1("Multi", key="order-1") == am.Executed  # the first answer, again
    assert counter.runs == 1 and net.tick("Multi") == mach.tick("Multi") == 1

    assert await net.add1("Multi", key="order-2") == am.Executed
    other = await connect(server.url, client_id="another-shop")
    other_net = await other.machine(MACHINE_ID)
    assert await other_net.add1("Multi", key="order-1") == am.Executed  # keys are per client
    assert counter.runs == 3


# ------------------------------------------------------------------------------------ diff chain


async def test_a_diff_gap_is_healed_by_exactly_one_sync(
    server: rpc.Server, mach: am.Machine, connect: Connect
) -> None:
    taps = Taps()
    client = await connect(server.url, connector=taps)
    net = await client.machine(MACHINE_ID)
    tap = taps.opened[0]
    dropped: list[dict[str, Any]] = []

    def drop_first_diff(message: dict[str, Any]) -> bool:
        if message["t"] == "diff" and not dropped:
            dropped.append(message)
            return True
        return False

    tap.hold()  # let several diffs pile up, so the gap shows in a burst
    tap.drop = drop_first_diff
    for state in ["A", "Multi", "B", "Multi"]:
        mach.add1(state)
        await asyncio.sleep(0)  # the server flushes one diff per loop turn
    tap.release()
    async with asyncio.timeout(TIMEOUT):
        await net.when_time(mach.state_names(), mach.time())

    assert len(dropped) == 1
    assert [m["t"] for m in tap.received] == ["welcome", "snap", "diff", "diff", "diff", "snap"]
    assert net.time() == mach.time() and net.string_all() == mach.string_all()
    assert [m["t"] for m in tap.sent].count("sync") == 1
    mach.add1("C")  # the healed chain goes on without another sync
    async with asyncio.timeout(TIMEOUT):
        await net.when1("C")
    assert net.time() == mach.time()
    assert [m["t"] for m in tap.sent].count("sync") == 1


async def test_sync_fetches_a_snapshot(
    server: rpc.Server, mach: am.Machine, connect: Connect
) -> None:
    taps = Taps()
    client = await connect(server.url, connector=taps)
    net = await client.machine(MACHINE_ID)
    taps.opened[0].drop = lambda message: message["t"] == "diff"  # the mirror falls behind
    mach.add1("A")
    await asyncio.sleep(0.01)
    assert not net.is1("A")
    await net.sync()
    assert net.time() == mach.time() and net.is1("A")
    assert net.seq == server.exposed[MACHINE_ID].epoch


# ------------------------------------------------------------------------------------ heartbeat


async def test_silent_peer_is_dropped_within_two_heartbeats(
    serve: Serve, mach: am.Machine, raw: RawConnect
) -> None:
    server = await serve(mach, heartbeat=0.05)
    ws = await raw(server.url)
    started = asyncio.get_running_loop().time()
    messages = await until_closed(ws)  # never answers the pings
    took = asyncio.get_running_loop().time() - started
    assert messages and {m["t"] for m in messages} == {"ping"}
    assert ws.close_code == 1006  # dropped: a dead peer would not answer a closing handshake
    assert took < 2 * server.heartbeat + 0.5


async def test_pongs_keep_a_session_alive(serve: Serve, mach: am.Machine, raw: RawConnect) -> None:
    server = await serve(mach, heartbeat=0.1)
    ws = await raw(server.url)
    async with asyncio.timeout(TIMEOUT):
        for _ in range(4):  # twice as long as the timeout
            ping = json.loads(await ws.recv())
            assert ping["t"] == "ping"
            await ws.send(json.dumps({"t": "pong", "ts": ping["ts"]}))
    await ws.send(json.dumps({"t": "ping", "ts": 1}))
    async with asyncio.timeout(TIMEOUT):
        while (message := json.loads(await ws.recv()))["t"] == "ping":
            pass
    assert message == {"t": "pong", "ts": 1}


async def test_client_reconnects_when_the_server_goes_silent(
    serve: Serve, mach: am.Machine, connect: Connect
) -> None:
    server = await serve(mach, heartbeat=0.1)
    taps = Taps()
    client = await connect(server.url, connector=taps)
    net = await client.machine(MACHINE_ID)
    assert client.heartbeat == 0.1

    disconnected = client.mach.when1(S.Disconnected)
    taps.opened[0].deaf = True
    async with asyncio.timeout(TIMEOUT):
        await disconnected
        await client.mach.when1(S.Ready)
    assert taps.opened[0].closes[0] == "abort"  # the client's watchdog, not the server
    assert len(taps.opened) == 2
    mach.add1("A")
    async with asyncio.timeout(TIMEOUT):
        await net.when1("A")


# ------------------------------------------------------------------------------------ slow readers

WIDE = [f"S{i:02}" for i in range(80)]
"""Set alternately to the even and the odd half, every change is an 80-entry diff."""


@dataclass
class Backlog:
    mach: am.Machine
    server: rpc.Server
    ws: ClientConnection
    server_end: socket.socket
    snap: dict[str, Any]
    """The first snapshot, read before the client stopped reading."""
    outbox: list[int]
    """The session's outbox length after each change."""

    def catch_up(self) -> None:
        """The reader reads again, and the server's send buffer may grow."""
        self.server_end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        self.ws.transport.resume_reading()


async def backlog(serve: Serve, raw: RawConnect, changes: int) -> Backlog:
    """A subscriber that stops reading while ``changes`` diffs are due."""
    wide = am.Machine({name: am.State() for name in WIDE}, id="wide")
    server = await serve(wide, outbox_limit=8)
    ws = await raw(server.url, close_timeout=0.1)
    await ws.send(json.dumps({"t": "sub", "id": 1, "m": "wide"}))
    snap = await recv_json(ws)
    assert snap["t"] == "snap"
    ws.transport.pause_reading()  # the frames stay in the kernel's buffers, then the server's
    [session] = server.sessions
    server_end = server._conns[session].ws.transport.get_extra_info("socket")
    server_end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    outbox: list[int] = []
    for i in range(changes):
        wide.set(WIDE[i % 2 :: 2])
        await asyncio.sleep(0)  # the server flushes one diff per loop turn
        outbox.append(session.backlog())
    return Backlog(wide, server, ws, server_end, snap, outbox)


async def test_slow_client_is_resynced_with_a_snapshot(serve: Serve, connect: Connect) -> None:
    wide = am.Machine({name: am.State() for name in WIDE}, id="wide")
    server = await serve(wide, outbox_limit=8)
    taps = Taps()
    client = await connect(server.url, connector=taps)
    net = await client.machine("wide")
    [tap] = taps.opened
    [session] = server.sessions
    server_end = server._conns[session].ws.transport.get_extra_info("socket")
    server_end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    tap.inner._transport.pause_reading()  # the client stops reading; the kernel buffers fill up
    longest = 0
    for i in range(400):
        wide.set(WIDE[i % 2 :: 2])
        await asyncio.sleep(0)  # the server flushes one diff per loop turn
        longest = max(longest, session.backlog())
    assert longest >= server.outbox_limit  # it did fall behind

    tap.inner._transport.resume_reading()
    async with asyncio.timeout(TIMEOUT):
        await net.when_time(WIDE, wide.time(WIDE))
    assert net.time() == wide.time()
    kinds = [message["t"] for message in tap.received]
    assert kinds.count("snap") >= 2  # the subscription's, then the resync's
    assert kinds.count("diff") < 400


async def test_slow_raw_reader_gets_a_snapshot_instead_of_the_diffs(
    serve: Serve, raw: RawConnect
) -> None:
    slow = await backlog(serve, raw, changes=400)
    assert max(slow.outbox) >= slow.server.outbox_limit  # it did fall behind
    slow.catch_up()

    # a reader by the rules of docs/protocol.md §6: on a gap, one sync; snapshots always apply
    time: list[int] = slow.snap["time"]
    seq: int = slow.snap["seq"]
    syncing = False
    kinds: list[str] = []
    async with asyncio.timeout(TIMEOUT):
        while time != slow.mach.time():
            message = json.loads(await slow.ws.recv())
            kinds.append(message["t"])
            if message["t"] == "snap":
                time, seq, syncing = message["time"], message["seq"], False
            elif message["t"] == "diff" and message["base"] == seq:
                for index, delta in message["d"]:
                    time[index] += delta
                seq = message["seq"]
            elif message["t"] == "diff" and not syncing:
                await slow.ws.send(json.dumps({"t": "sync", "id": 2, "m": "wide"}))
                syncing = True
    assert "snap" in kinds  # unprompted: the resync
    assert kinds.count("diff") < 400


async def test_slow_reader_outbox_stays_bounded(serve: Serve, raw: RawConnect) -> None:
    slow = await backlog(serve, raw, changes=600)
    longest = max(slow.outbox)
    assert longest <= 2 * slow.server.outbox_limit
