"""Hypothesis against the protocol core, in memory: any frames a client may send to a server
session, and any frames a server may send to a client session. Neither raises, both answer only
strict JSON of known kinds, the server never lets a principal change what its policy forbids, and
a mirror never holds a malformed clock. Thousands of cases in CPython, fewer inside Pyodide."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loopback import Loopback

import asyncmachine as am
from asyncmachine import rpc
from asyncmachine.rpc import _protocol as p
from asyncmachine.rpc._client_session import ClientSession
from asyncmachine.rpc._netmachine import NetMachine

PYODIDE = sys.platform == "emscripten"
EXAMPLES = 150 if PYODIDE else 1000
DEPTH = 100 if PYODIDE else 2500
"""Deepest JSON nesting tried: WebAssembly's stack is smaller than CPython's."""
MAX_ID = 2**53 - 1

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

SERVER_KINDS = {"welcome", "snap", "diff", "res", "err", "pong", "ping", "payload"}
ERR_CODES = {
    "bad_json",
    "bad_message",
    "unknown_type",
    "unknown_machine",
    "unknown_state",
    "forbidden",
    "not_subscribed",
    "unsupported",
    "flood",
}
"""What malformed input may be answered with; ``internal`` would be a server bug."""

STATE_NAMES = ["A", "B", "C", "Prot", "Multi", "Exception", "Nope", ""]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()  # NaN and Infinity too: json.dumps writes them, a strict peer refuses them
    | st.text(max_size=16),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=5,
)

FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "id": st.sampled_from([0, 1, MAX_ID, MAX_ID + 1, -1, 2**64, 1.5, True]) | json_values,
    "m": st.sampled_from(["guarded", "sandbox", "nope", ""]) | json_values,
    "op": st.sampled_from(["add", "remove", "set", "add_err", "toggle", "eval"]) | json_values,
    "states": st.lists(st.sampled_from(STATE_NAMES), max_size=4) | json_values,
    "args": st.dictionaries(st.text(max_size=8), json_values, max_size=3) | json_values,
    "key": st.text(max_size=140) | json_values,
    "ts": json_values,
    "v": json_values,
    "src": st.fixed_dictionaries(
        {},
        optional={
            "m": st.text(max_size=140) | json_values,
            "tx": st.text(max_size=10),
            "mt": st.integers(min_value=-5, max_value=2**60) | json_values,
            "cid": st.text(max_size=10),
            "tab": st.text(max_size=140),
            "meta": st.dictionaries(st.text(max_size=70), st.text(max_size=600), max_size=20)
            | json_values,
        },
    )
    | json_values,
    "err": st.fixed_dictionaries({"type": st.text(max_size=140), "msg": st.text(max_size=20)})
    | json_values,
}

CLIENT_TYPES = ["sub", "unsub", "sync", "mut", "check", "explain", "ping", "pong", "hello", "res"]
"""Known types and one only a server sends; not ``bye``, which ends the session."""


@st.composite
def messages(draw: st.DrawFn, types: list[str]) -> dict[str, Any]:
    """A message with a real or made-up type and any subset of fields, typed or not."""
    message: dict[str, Any] = {"t": draw(st.sampled_from(types) | st.text(max_size=12))}
    for name in draw(st.lists(st.sampled_from(sorted(FIELDS)), max_size=4, unique=True)):
        message[name] = draw(FIELDS[name])
    return message


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    """A well-formed request, then maybe one field dropped or replaced by any JSON value: it
    reaches past the shape checks into lookups, policies and the machines."""
    kind = draw(st.sampled_from(["sub", "unsub", "sync", "mut", "check", "explain"]))
    message: dict[str, Any] = {
        "t": kind,
        "id": draw(st.integers(min_value=0, max_value=MAX_ID)),
        "m": draw(st.sampled_from(["guarded", "sandbox", "nope"])),
    }
    if kind in ("mut", "check", "explain"):
        message["op"] = draw(st.sampled_from(["add", "remove", "set", "add_err"]))
        message["states"] = draw(st.lists(st.sampled_from(STATE_NAMES[:6]), max_size=3))
        message["args"] = draw(st.dictionaries(st.text(max_size=8), json_values, max_size=2))
        message["key"] = draw(st.text(min_size=1, max_size=8))
        if message["op"] == "add_err":
            message["err"] = {"type": "ValueError", "msg": draw(st.text(max_size=8))}
    if kind == "sub" and draw(st.booleans()):
        message["states"] = draw(st.lists(st.sampled_from(STATE_NAMES), max_size=3))
    damage = draw(st.sampled_from(["none", "drop", "replace"]))
    if damage != "none":
        field = draw(st.sampled_from(sorted(message)))
        if damage == "drop":
            del message[field]
        else:
            message[field] = draw(FIELDS.get(field, json_values))
    return message


def nested(depth: int) -> str:
    """A request whose machine id is lists ``depth`` deep."""
    return '{"t":"sub","id":1,"m":' + "[" * depth + "]" * depth + "}"


def dumps(message: Any) -> str:
    return json.dumps(message)  # not strict: NaN and Infinity get through, on purpose


noise = st.one_of(
    st.binary(max_size=64),
    st.text(max_size=64),
    json_values.map(dumps),
    st.just('{"t":"mut","id":' + "9" * 5000 + "}"),  # more digits than Python parses
    st.integers(min_value=1, max_value=DEPTH).map(nested),
)
client_frames = st.one_of(
    noise,
    messages(CLIENT_TYPES).map(dumps),
    requests().map(dumps),
    requests().map(lambda m: dumps(m)[:-1]),  # cut short
)


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
        assert len(names) == len(time) == len(set(names))
        assert all(type(t) is int and t >= 0 for t in time)
        assert set(net.active_states()) == {n for n in names if net.tick(n) % 2 == 1}
    for frame in client.data_to_send():
        assert p.loads(frame)["t"] in {"hello", "mut", "sync", "pong"}
    assert all(count == 1 for count in answers.values())  # each answered at most once
