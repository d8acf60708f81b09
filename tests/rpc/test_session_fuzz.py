"""Hypothesis against the protocol core, in memory: any frames a client may send to a server
session, and any frames a server may send to a client session. Neither raises, both answer only
strict JSON of known kinds, the server never lets a principal change what its policy forbids, and
a mirror never holds a malformed clock. Thousands of cases in CPython, fewer inside Pyodide."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loopback import Loopback
from rpc_strategies import ERR_CODES, PYODIDE, client_frames, dumps, json_values, noise

import asyncmachine as am
from asyncmachine import rpc
from asyncmachine.rpc import _protocol as p
from asyncmachine.rpc._client_session import ClientSession
from asyncmachine.rpc._netmachine import NetMachine

EXAMPLES = 150 if PYODIDE else 1000

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

SERVER_KINDS = {"welcome", "snap", "diff", "res", "err", "pong", "ping", "payload"}


def schema() -> am.Schema:
    return {
        "A": am.State(remove=("Prot",)),
        "B": am.State(add=("C",)),
        "C": am.State(),
        "Prot": am.State(),
        "Multi": am.State(multi=True),
    }


FUZZER = rpc.Principal(
    "fuzzer",
    {
        "guarded": rpc.READ_ONLY,
        "sandbox": rpc.Policy(
            states={"A", "B", "Multi", "Exception"},
            read_states={"A", "B", "C", "Prot", "Multi", "Exception"},
        ),
    },
)


def check_output(frames: list[str]) -> list[dict[str, Any]]:
    out = []
    for frame in frames:
        message = p.loads(frame)  # strict: no NaN or Infinity ever leaves
        assert isinstance(message, dict) and message["t"] in SERVER_KINDS, message
        if message["t"] == "err":
            assert message["code"] in ERR_CODES, message
            assert isinstance(message["msg"], str)
        out.append(message)
    return out


@FUZZ
@given(batch=st.lists(client_frames, min_size=1, max_size=10))
def test_a_server_session_survives_any_frames(batch: list[str | bytes]) -> None:
    guarded = am.Machine(schema(), id="guarded")
    sandbox = am.Machine(schema(), id="sandbox")
    sandbox.add1("Prot")
    loop = Loopback(guarded, sandbox, flood_burst=20, flood_rate=1.0)
    good = loop.server()
    loop.send(good, {"t": "sub", "id": 1, "m": "guarded"})
    fuzzer = loop.server(FUZZER, cid="fuzzer")
    before, prot = guarded.time(), sandbox.tick("Prot")

    for frame in batch:
        fuzzer.receive(frame, loop.now)
        loop.now += 0.001
    loop.run_scheduled()
    check_output(fuzzer.data_to_send())

    assert guarded.time() == before  # read-only: nothing it sent changed it
    assert sandbox.tick("Prot") == prot  # the policy held: only A could remove it, and A may not
    if fuzzer.close_request is None:  # still open: it answers a ping
        loop.now += 60.0  # the flood limit's bucket refills
        out = loop.send(fuzzer, {"t": "ping", "ts": 7})
        assert out[-1] == {"t": "pong", "ts": 7}, out
    assert fuzzer.backlog() == 0
    # the well-behaved client never noticed
    [res] = [
        m
        for m in loop.send(
            good, {"t": "mut", "id": 2, "m": "guarded", "op": "add", "states": ["Multi"]}
        )
        if m["t"] == "res"
    ]
    assert res["r"] == 0 and res["diff"]["qt"] == guarded.queue_tick()


# ------------------------------------------------------------------------------------ the client

NAMES = ["A", "B", "Exception"]

server_fields: dict[str, st.SearchStrategy[Any]] = {
    "id": st.integers(min_value=0, max_value=6) | json_values,
    "m": st.sampled_from(["m", "other"]) | json_values,
    "seq": st.integers(min_value=0, max_value=8) | json_values,
    "base": st.integers(min_value=0, max_value=8) | json_values,
    "d": st.lists(
        st.lists(st.integers(min_value=-2, max_value=4), min_size=0, max_size=3), max_size=4
    )
    | json_values,
    "qt": st.integers(min_value=0, max_value=9) | json_values,
    "mt": st.integers(min_value=0, max_value=2) | json_values,
    "names": st.lists(st.sampled_from(["A", "B", "C", "Exception"]), max_size=5) | json_values,
    "time": st.lists(st.integers(min_value=-1, max_value=9), max_size=5) | json_values,
    "schema": st.dictionaries(st.sampled_from(["A", "B", "C"]), json_values, max_size=3)
    | json_values,
    "r": st.integers(min_value=-1, max_value=5) | json_values,
    "code": st.sampled_from(["unknown_machine", "forbidden", "auth"]) | json_values,
    "msg": json_values,
    "name": json_values,
    "data": json_values,
    "ts": json_values,
}


@st.composite
def server_messages(draw: st.DrawFn) -> dict[str, Any]:
    kinds = ["snap", "diff", "res", "err", "payload", "ping", "pong", "welcome"]
    message: dict[str, Any] = {"t": draw(st.sampled_from(kinds) | st.text(max_size=8))}
    for name in draw(st.lists(st.sampled_from(sorted(server_fields)), max_size=6, unique=True)):
        message[name] = draw(server_fields[name])
    if message["t"] == "res" and draw(st.booleans()):
        message["diff"] = {
            key: draw(server_fields[key])
            for key in ("seq", "base", "d", "qt")
            if draw(st.booleans())
        }
    return message


server_frames = st.one_of(server_messages().map(dumps), noise)
"""Mostly well-formed messages: the first malformed frame ends the connection."""


class Owner:
    mach = am.Machine({"Start": am.State()})


@FUZZ
@given(batch=st.lists(server_frames, min_size=1, max_size=10))
def test_a_client_session_survives_any_server_frames(batch: list[str | bytes]) -> None:
    client = ClientSession("c1")
    net = NetMachine(Owner(), "m")  # type: ignore[arg-type]
    client.add_mirror(net, None)
    answers: dict[int, int] = {}
    client.open(0.0)
    client.receive(
        dumps({"t": "welcome", "v": p.VERSION, "sid": "s", "hb_ms": 1000, "max_frame": 4096}), 0.0
    )
    for rid in range(3):
        call = client.request({"t": "mut", "m": "m", "op": "add", "states": ["A"]}, "m", True, 0.0)
        call.on_done = lambda reply, error, rid=call.id: answers.__setitem__(
            rid, answers.get(rid, 0) + 1
        )
    client.receive(
        dumps(
            {
                "t": "snap",
                "m": "m",
                "seq": 1,
                "names": NAMES,
                "schema": {},
                "time": [0, 1, 0],
                "qt": 1,
                "mt": 0,
            }
        ),
        0.0,
    )
    for frame in batch:
        client.receive(frame, 0.0)  # never raises: a malformed frame ends the connection
        names, time = net.state_names(), net.time()
        if net.is_disposed:  # a gone machine reads like a disposed one: an empty time
            assert time == [] and net.active_states() == []
            continue
        assert len(names) == len(time) == len(set(names))
        assert all(type(t) is int and t >= 0 for t in time)
        assert set(net.active_states()) == {n for n in names if net.tick(n) % 2 == 1}
    for frame in client.data_to_send():
        assert p.loads(frame)["t"] in {"hello", "mut", "sync", "pong"}
    assert all(count == 1 for count in answers.values())  # each answered at most once


# ------------------------------------------------------------------------------------ the clock


class Rollback:
    """``FailState`` raises: the engine rolls the transition back (ticks move twice)."""

    def FailState(self, e: am.Event) -> None:
        raise ValueError("rolled back")


CHANGES = st.lists(
    st.tuples(
        st.sampled_from(["add", "remove", "set", "toggle", "client", "flush"]),
        st.lists(st.sampled_from(["A", "B", "C", "Prot", "Multi", "Auto", "Fail"]), max_size=3),
    ),
    min_size=1,
    max_size=20,
)


@FUZZ
@given(changes=CHANGES)
def test_mirrors_follow_any_sequence_of_changes(changes: list[tuple[str, list[str]]]) -> None:
    """Relations, auto states, multi states and rollbacks, from the server and from a client,
    flushed at any point: every mirror ends on the machine's exact clock (filtered ones too)."""
    mach = am.Machine(
        {
            **schema(),
            "Auto": am.State(auto=True, require=("B",)),
            "Fail": am.State(),
        },
        id="m",
    )
    mach.bind_handlers(Rollback())
    loop = Loopback(mach, flood_burst=10**9, flood_rate=1e9)
    full_client, full_server, full = loop.mirrored(mach)
    part_client, part_server, part = loop.mirrored(mach, states=["Auto", "Multi", "Prot"])
    for op, states in changes:
        if op == "flush":
            loop.pump(full_client, full_server)
        elif op == "client":  # its result carries the diff: read your writes
            message = {"t": "mut", "m": "m", "op": "add", "states": states}
            part_client.request(message, "m", True, loop.now)
            loop.pump(part_client, part_server)
        else:
            getattr(mach, op)(states)
    loop.pump(full_client, full_server)
    loop.pump(part_client, part_server)
    assert full.time() == mach.time()
    assert part.clock() == mach.clock(["Auto", "Multi", "Prot"])
    assert full.queue_tick() == mach.queue_tick()
