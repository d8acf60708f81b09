"""The remote machine's API over a real server on 127.0.0.1: policies that bound what a mutation
does, selective distribution, dry runs and errors from clients, where a mutation comes from,
frame limits, payload ordering and strict JSON."""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("websockets")
if sys.platform == "emscripten":
    pytest.skip("needs listening sockets", allow_module_level=True)

import asyncio
import json
import math
from collections.abc import Awaitable, Callable
from typing import Any

from rpc_support import TIMEOUT, Taps
from websockets.asyncio.client import ClientConnection

import asyncmachine as am
from asyncmachine import rpc
from asyncmachine._transition import MutationSource

Serve = Callable[..., Awaitable[rpc.Server]]
Connect = Callable[..., Awaitable[rpc.Client]]
RawConnect = Callable[..., Awaitable[ClientConnection]]

SCHEMA: am.Schema = {
    "A": am.State(remove=("Prot",)),
    "B": am.State(add=("C",)),
    "C": am.State(),
    "Prot": am.State(),
    "Multi": am.State(multi=True),
    "Guarded": am.State(),
}


@pytest.fixture
def mach() -> am.Machine:
    return am.Machine(SCHEMA, id="api")


class Negotiator:
    """Server handlers: ``GuardedEnter`` refuses without ``ok``; every call is recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def GuardedEnter(self, e: am.Event) -> bool:
        self.calls.append((e.name, dict(e.args)))
        return bool(e.args.get("ok"))

    def AEnter(self, e: am.Event) -> None:
        self.calls.append((e.name, dict(e.args)))

    def BEnter(self, e: am.Event) -> None:
        self.calls.append((e.name, dict(e.args)))


# ------------------------------------------------------------------------------------ policies

LIMITED = rpc.tokens(
    {"limited": rpc.Principal("limited", default=rpc.Policy(states={"A", "B", "Multi"}))}
)


async def test_a_policy_bounds_what_a_mutation_does_through_each_relation(
    serve: Serve, mach: am.Machine, connect: Connect
) -> None:
    negotiator = Negotiator()
    mach.bind_handlers(negotiator)
    mach.add1("Prot")
    server = await serve(mach, authenticate=LIMITED)
    net = await (await connect(server.url, token="limited")).machine("api")
    before = mach.time()
    for call in (net.add1("A"), net.add1("B"), net.set(["Multi"]), net.add_err(ValueError())):
        with pytest.raises(rpc.RpcError) as err:
            await call
        assert err.value.code == "forbidden"
    assert mach.time() == before and negotiator.calls == []  # refused before any handler
    assert net.time() == before
    mach.remove1("Prot")
    assert await net.add1("A") == am.Executed  # nothing outside the policy changes now
    assert await net.can_add1("B") == am.Canceled  # B would activate C
    assert await net.can_add1("Multi") == am.Executed


# ------------------------------------------------------------------------------------ selective


def hidden_names(frames: list[dict[str, Any]], hidden: set[str]) -> set[str]:
    """Names from ``hidden`` that appear anywhere in ``frames``."""
    text = json.dumps(frames)
    return {name for name in hidden if f'"{name}"' in text}


async def test_read_states_decide_what_reaches_the_connection(
    serve: Serve, mach: am.Machine, connect: Connect
) -> None:
    server = await serve(
        mach,
        authenticate=rpc.tokens(
            {"ui": rpc.Principal("ui", default=rpc.Policy(read_states={"A", "Multi"}))}
        ),
    )
    taps = Taps()
    client = await connect(server.url, token="ui", connector=taps)
    net = await client.machine("api")
    assert net.state_names() == ["A", "Multi"]
    assert set(am.schema_to_dict(net.schema)) == {"A", "Multi"}
    tap = taps.opened[0]
    seen = len(tap.received)
    for state in ("Prot", "B", "Guarded"):  # invisible changes: the connection hears nothing
        mach.add1(state)
        await asyncio.sleep(0)
    mach.add1("Multi")
    async with asyncio.timeout(TIMEOUT):
        await net.when1("Multi")
    assert [m["t"] for m in tap.received[seen:]] == ["diff"]
    mach.add(["A", "Multi"])  # A removes Prot: only A's tick travels
    async with asyncio.timeout(TIMEOUT):
        await net.when1("A")
    assert net.clock() == mach.clock(["A", "Multi"])  # exact ticks
    assert hidden_names(tap.received, {"B", "C", "Prot", "Guarded", "Exception"}) == set()
    with pytest.raises(am.StateMissingError):
        await net.add1("Prot")  # unknown to the mirror
    assert await net.add1("Multi") == am.Executed
    assert net.clock() == mach.clock(["A", "Multi"])


async def test_a_client_subscribes_to_the_states_it_renders(
    server: rpc.Server, mach: am.Machine, connect: Connect
) -> None:
    client = await connect(server.url)
    net = await client.machine("api", states=["Multi", "B"])
    assert net.state_names() == ["B", "Multi"]
    mach.add(["B", "Multi"])
    async with asyncio.timeout(TIMEOUT):
        await net.when(["B", "Multi"])
    assert net.clock() == {"B": 1, "Multi": 1}
    with pytest.raises(rpc.RpcError) as err:
        await client.machine("api", states=["Nope"])
    assert err.value.code == "unknown_state"
    with pytest.raises(TypeError):
        await client.machine("api", states="B")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ dry runs


async def test_dry_runs_run_the_servers_negotiation_and_change_nothing(
    server: rpc.Server, mach: am.Machine, connect: Connect
) -> None:
    negotiator = Negotiator()
    mach.bind_handlers(negotiator)
    net = await (await connect(server.url)).machine("api")
    before, queue_tick = mach.time(), mach.queue_tick()
    assert await net.can_add1("Guarded") == am.Canceled
    assert await net.can_add1("Guarded", {"ok": True}) == am.Executed
    assert await net.can_add(["Guarded", "A"], {"ok": True}) == am.Executed
    assert await net.can_remove1("Prot") == am.Executed
    assert await net.can_remove(["Prot", "C"]) == am.Executed
    assert [name for name, _ in negotiator.calls] == ["GuardedEnter"] * 3 + ["AEnter"]
    assert negotiator.calls[1][1] == {"ok": True}
    assert (mach.time(), mach.queue_tick()) == (before, queue_tick)
    assert net.time() == before


async def test_explain_add1_is_a_dry_run_on_the_server(
    server: rpc.Server, mach: am.Machine, connect: Connect
) -> None:
    net = await (await connect(server.url)).machine("api")
    mach.add1("Prot")
    await net.when1("Prot")
    before, queue_tick = mach.time(), mach.queue_tick()
    explained = await net.explain_add1("B")
    assert explained.result == am.Executed and set(explained.added) == {"B", "C"}
    assert explained.canceled_by is None and explained.rejected == []
    explained = await net.explain_add1("A")  # A removes Prot
    assert explained.result == am.Executed and explained.removed == ["Prot"]
    assert (mach.time(), mach.queue_tick()) == (before, queue_tick)
    assert net.time() == before


# ------------------------------------------------------------------------------------ errors


async def test_errors_from_a_client_reach_the_server_machine(
    server: rpc.Server, mach: am.Machine, connect: Connect
) -> None:
    net = await (await connect(server.url)).machine("api")
    assert await net.add_err(KeyError("order 7")) == am.Executed
    err = mach.err()
    assert isinstance(err, rpc.RemoteError)
    assert (err.type_name, err.message) == ("KeyError", "'order 7'")
    assert net.is_err()
    assert await net.add_err_state("Prot", ValueError("bad")) == am.Executed
    assert net.is_(["Prot", "Exception"]) and mach.is_(["Prot", "Exception"])
    with pytest.raises(TypeError):
        net.add_err("not an exception")  # type: ignore[arg-type]
    with pytest.raises(am.StateMissingError):
        net.add_err_state("Nope", ValueError())


# ------------------------------------------------------------------------------------ sources


async def test_a_mutation_carries_its_source_tab_and_meta(
    server: rpc.Server, mach: am.Machine, connect: Connect
) -> None:
    seen: list[MutationSource | None] = []

    class Watcher(am.Tracer):
        def transition_start(self, tx: am.Transition) -> None:
            seen.append(tx.mutation.source)

    mach.bind_tracer(Watcher())
    client = await connect(server.url, client_id="web", tab_id="tab-1")
    client.add_mutation_meta(lambda machine_id, op, states: {"traceparent": f"00-{op}-{states[0]}"})
    net = await client.machine("api")
    local = am.Machine({"Click": am.State()}, id="page")
    sent: list[Awaitable[am.Result]] = []
    made: list[tuple[str, str, int]] = []

    class Page:
        def ClickState(self, e: am.Event) -> None:
            made.append((e.machine.id, e.transition.id, sum(e.transition.time_before)))
            sent.append(net.add1("A", source=e))  # from a handler: no await here

    local.bind_handlers(Page())
    local.add1("Click")
    assert await sent[0] == am.Executed
    [(mach_id, tx_id, mach_time)] = made
    assert seen[-1] == MutationSource(
        mach_id, tx_id, mach_time, "web", "tab-1", {"traceparent": "00-add-A"}
    )
    assert await net.add1("B") == am.Executed  # no source transition: the client's fields
    assert seen[-1] == MutationSource("", "", 0, "web", "tab-1", {"traceparent": "00-add-B"})


async def test_bad_meta_fails_at_the_call_and_sends_nothing(
    server: rpc.Server, mach: am.Machine, connect: Connect
) -> None:
    taps = Taps()
    client = await connect(server.url, connector=taps)
    net = await client.machine("api")
    remove = client.add_mutation_meta(lambda machine_id, op, states: {"n": 1})  # type: ignore
    with pytest.raises(TypeError):
        await net.add1("A")
    remove()
    client.add_mutation_meta(lambda machine_id, op, states: {"k": "v" * 1000})
    with pytest.raises(ValueError):
        await net.add1("A")
    assert "mut" not in [m["t"] for m in taps.opened[0].sent]
    assert not mach.is1("A")


# ------------------------------------------------------------------------------------ frame limits


async def test_an_oversized_mutation_fails_locally_and_sends_nothing(
    serve: Serve, mach: am.Machine, connect: Connect
) -> None:
    server = await serve(mach, max_frame=2048)
    taps = Taps()
    client = await connect(server.url, connector=taps)
    net = await client.machine("api")
    assert client.server_max_frame == 2048
    with pytest.raises(ValueError, match="2048"):
        await net.add1("A", {"blob": "x" * 4096})
    assert "mut" not in [m["t"] for m in taps.opened[0].sent]
    assert await net.add1("A", {"blob": "x" * 1000}) == am.Executed  # the connection is fine
    assert client.reconnects == 0


async def test_a_mutation_the_server_refused_for_size_is_never_resent(
    serve: Serve, mach: am.Machine, connect: Connect
) -> None:
    """A server that announces more than it accepts: its 1009 close fails the mutation with
    ``ValueError`` once, and the client reconnects once, not in a storm."""
    server = await serve(mach, max_frame=2048)
    taps = Taps()

    def lie(message: dict[str, Any]) -> dict[str, Any]:
        return {**message, "max_frame": 10**6} if message["t"] == "welcome" else message

    original = taps.__call__

    async def lying(url: str, receiver: rpc.Receiver) -> Any:
        tap = await original(url, receiver)
        tap.edit = lie
        return tap

    client = await connect(server.url, connector=lying)
    net = await client.machine("api")
    with pytest.raises(ValueError, match="too large"):
        await net.add1("A", {"blob": "x" * 4096})
    async with asyncio.timeout(TIMEOUT):
        await client.mach.when1("Ready")
    await asyncio.sleep(0.3)
    assert client.reconnects == 1
    sent = [m for tap in taps.opened for m in tap.sent if m["t"] == "mut"]
    assert len(sent) == 1 and not mach.is1("A")


async def test_the_server_sends_nothing_over_the_clients_limit(
    serve: Serve, connect: Connect
) -> None:
    wide = am.Machine({f"S{i:04}": am.State() for i in range(400)}, id="wide")
    server = await serve(wide)
    small = await connect(server.url, max_frame=2048, client_id="small")
    with pytest.raises(rpc.RpcError) as err:
        await small.machine("wide")  # its snapshot is larger than the client takes
    assert err.value.code == "too_large"
    assert await small.machine("wide", states=["S0001"])  # a subset fits
    got: list[str] = []
    small.on_payload(lambda name, data, machine_id: got.append(name))
    assert server.send_payload("big", "x" * 4000, client="small") == 0
    assert server.send_payload("fits", "x" * 100, client="small") == 1
    async with asyncio.timeout(TIMEOUT):
        while not got:
            await asyncio.sleep(0.01)
    assert got == ["fits"] and small.reconnects == 0


# ------------------------------------------------------------------------------------ ordering


async def test_a_payload_does_not_overtake_the_diff_before_it(
    server: rpc.Server, mach: am.Machine, connect: Connect
) -> None:
    client = await connect(server.url)
    net = await client.machine("api")
    states_when_paid: list[bool] = []
    done = asyncio.Event()

    def paid(name: str, data: Any, machine_id: str | None) -> None:
        states_when_paid.append(net.is1("B"))
        done.set()

    client.on_payload(paid)
    mach.add1("B")
    server.send_payload("b-is-on", None, machine="api")
    async with asyncio.timeout(TIMEOUT):
        await done.wait()
    assert states_when_paid == [True]


async def test_the_server_writes_strict_json_only(server: rpc.Server, raw: RawConnect) -> None:
    with pytest.raises(ValueError):
        server.send_payload("nan", math.nan)
    with pytest.raises(ValueError):
        server.send_payload("inf", {"x": [math.inf]})
    with pytest.raises(TypeError):
        server.send_payload("object", object())
    ws = await raw(server.url)
    await ws.send('{"t":"ping","ts":1e999}')
    async with asyncio.timeout(TIMEOUT):
        reply = await ws.recv()
    assert json.loads(reply, parse_constant=lambda c: pytest.fail(c))["code"] == "bad_json"


async def test_trace_context_travels_with_a_mutation(
    server: rpc.Server, mach: am.Machine, connect: Connect
) -> None:
    """``add_mutation_meta`` with the OpenTelemetry exporter's ``trace_meta``: the server's span
    of the mutation is a child of the client's span."""
    otel = pytest.importorskip("asyncmachine.telemetry.otel")
    sdk = pytest.importorskip("opentelemetry.sdk.trace")
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = sdk.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    otel.OtelTracer(tracer).bind(mach)
    client = await connect(server.url)
    client.add_mutation_meta(lambda machine_id, op, states: otel.trace_meta())
    net = await client.machine("api")
    with tracer.start_as_current_span("click") as click:
        assert await net.add1("A") == am.Executed
    [add_a] = [span for span in exporter.get_finished_spans() if span.name == "add A"]
    assert add_a.parent is not None and add_a.parent.is_remote
    assert add_a.parent.span_id == click.get_span_context().span_id
    assert add_a.context.trace_id == click.get_span_context().trace_id
    provider.shutdown()
