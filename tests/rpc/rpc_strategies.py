"""Hypothesis strategies for the RPC fuzz tests: frames a client may send, well-formed or not.

Shared by the session-level fuzz (in memory, also in Pyodide) and the fuzz against a real server.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from hypothesis import strategies as st

PYODIDE = sys.platform == "emscripten"
DEPTH = 100 if PYODIDE else 2500
"""Deepest JSON nesting tried: WebAssembly's stack is smaller than CPython's."""
MAX_ID = 2**53 - 1
STATE_NAMES = ["A", "B", "C", "Prot", "Multi", "Exception", "Nope", ""]

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


def nested(depth: int, template: str = '{"t":"sub","id":1,"m":%s}') -> str:
    """``template`` with lists ``depth`` deep in it: by default as a (bad) machine id."""
    return template % ("[" * depth + "]" * depth)


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
