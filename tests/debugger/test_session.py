"""am-dbg's session store and session files: what it keeps, what it refuses, what it writes."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from dbg_support import replay, traced

import asyncmachine as am
from asyncmachine.debugger import MessageError, Session, read_session, write_session
from asyncmachine.debugger._files import decode, encode
from asyncmachine.debugger._messages import parse

SCHEMA = {"A": am.State(remove=("B",)), "B": am.State(remove=("A",))}


def stream(n: int = 6, mach_id: str = "m") -> list[str]:
    """Lines a machine sends: its schema and ``n`` transitions."""
    mach, _, box = traced(SCHEMA, id=mach_id)
    for i in range(n):
        mach.add1("AB"[i % 2])
    return box.take(10_000)


def frame(lines: list[str]) -> str:
    return "\n".join(lines)


def test_machines_are_kept_and_fed_to_listeners() -> None:
    session = Session()
    fed: list[str] = []
    assert session.subscribe(fed.extend) == [
        json.dumps({"kind": "session", "v": 1, "max": 100_000}, separators=(",", ":"))
    ]
    conn = session.connect("peer")
    hello = json.dumps({"kind": "hello", "v": 1, "proc": {"pid": 7}})
    assert session.receive(conn, frame([hello, *stream(3)])) == []
    mach = session.machines["m"]
    assert mach.connected and mach.proc == {"pid": 7} and len(mach.ring) == 3
    assert [json.loads(line)["kind"] for line in fed] == ["schema", "status", "tx", "tx", "tx"]
    session.disconnect(conn)
    assert not session.machines["m"].connected  # still listed
    assert json.loads(fed[-1]) == {
        "kind": "status",
        "id": "m",
        "connected": False,
        "disposed": False,
        "evicted": 0,
        "proc": {"pid": 7},
    }


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"kind": "nope"}', "unknown kind 'nope'"),
        ('{"kind": "tx", "id": "m"}', "tx message without 'tx'"),
        (
            '{"kind":"tx","id":"m","tx":"1","t":1,"type":"add","called":["A"],'
            '"ticks":{"A":-1},"accepted":true}',
            "'ticks' must be an object of ticks",
        ),
        (
            '{"kind":"tx","id":"m","tx":"1","t":NaN,"type":"add","called":["A"],'
            '"ticks":{},"accepted":true}',
            "not strict JSON: NaN",
        ),
        (
            '{"kind":"tx","id":"other","tx":"1","t":1,"type":"add","called":["A"],'
            '"ticks":{},"accepted":true}',
            "whose schema was not sent",
        ),
        (
            '{"kind":"schema","id":"x","names":["A"],"states":{},"clock":{}}',
            "states ['A'] are not in 'states'",
        ),
        ('{"kind":"hello","v":99}', "protocol version 99 is newer"),
    ],
)
def test_a_bad_line_is_refused_with_a_reason_and_loses_nothing_else(line: str, error: str) -> None:
    session = Session()
    conn = session.connect()
    good = stream(4)
    errors = session.receive(conn, frame([*good[:3], line, *good[3:]]))
    assert len(errors) == 1 and errors[0].startswith("line 4: ") and error in errors[0]
    assert len(session.machines["m"].ring) == 4 and conn.rejected == 1


def test_ring_keeps_the_last_n_and_still_replays_exact_clocks() -> None:
    session = Session(max_transitions=5)
    lines = stream(20)
    session.receive(session.connect(), frame(lines))
    mach = session.machines["m"]
    assert len(mach.ring) == 5 and mach.evicted == 15
    full = replay(lines)["m"]
    kept = replay(session.lines())["m"]
    assert kept == full[-5:]


def test_export_and_import_reproduce_the_same_timeline(tmp_path: Path) -> None:
    session = Session()
    conn = session.connect()
    session.receive(conn, frame([json.dumps({"kind": "hello", "v": 1, "proc": {"pid": 1}})]))
    session.receive(conn, frame(stream(8, "one") + stream(3, "two")))
    path = tmp_path / "s.jsonl.gz"
    size = write_session(path, session.lines())
    assert path.read_bytes()[:2] == b"\x1f\x8b" and size == path.stat().st_size
    again = Session()
    assert again.load(read_session(path), str(path)) == 2
    assert replay(again.lines()) == replay(session.lines())
    assert not again.machines["one"].connected and again.machines["one"].proc == {"pid": 1}
    plain = tmp_path / "s.jsonl"
    write_session(plain, again.lines())
    assert plain.read_text().splitlines() == list(again.lines())


def test_importing_a_known_machine_continues_its_timeline() -> None:
    session = Session()
    session.receive(session.connect(), frame(stream(4)))
    before = len(session.machines["m"].ring)
    other = Session()
    other.receive(other.connect(), frame(stream(2)))
    assert session.load(list(other.lines())) == 0
    assert len(session.machines["m"].ring) == before + 3  # a schema keyframe and 2 transitions


def test_a_bad_file_is_refused_whole_naming_the_line(tmp_path: Path) -> None:
    session = Session()
    session.receive(session.connect(), frame(stream(2, "kept")))
    good = list(Session().lines()) + stream(3, "new")
    with pytest.raises(MessageError, match=r"f\.jsonl, line 4: not JSON"):
        session.load([*good[:3], "oops", *good[3:]], "f.jsonl")
    assert list(session.machines) == ["kept"]  # nothing added
    with pytest.raises(MessageError, match="status of 'ghost' before its schema"):
        session.load(['{"kind":"status","id":"ghost"}'])
    with pytest.raises(MessageError, match="no machines in it"):
        session.load([""])


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"\x1f\x8b\x08\x00broken", "broken gzip data"),
        (gzip.compress(b"\xff\xfe\x00"), "not UTF-8 text"),
    ],
)
def test_unreadable_files_are_refused(data: bytes, error: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl.gz"
    path.write_bytes(data)
    with pytest.raises(MessageError, match=error):
        read_session(path)
    with pytest.raises(MessageError, match="cannot read"):
        read_session(tmp_path / "missing.jsonl.gz")


def test_files_round_trip_both_encodings() -> None:
    lines = ['{"kind":"session","v":1}', '{"a":"é"}']
    assert decode(encode(lines)) == lines == decode(encode(lines, compress=False))
    assert encode(lines) == encode(lines)  # no timestamp in the gzip header: reproducible


def test_dispose_and_clear() -> None:
    session = Session()
    conn = session.connect()
    mach, _, box = traced(SCHEMA, id="gone")
    mach.add1("A")
    mach.dispose()
    session.receive(conn, frame(box.take(100)))
    assert session.machines["gone"].disposed
    assert session.clear() == []  # still connected
    session.disconnect(conn)
    assert session.clear() == ["gone"] and session.machines == {}


def test_parse_rejects_oversized_lines() -> None:
    with pytest.raises(MessageError, match="over the"):
        parse(" " * (5 << 20))


def test_max_transitions_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Session(0)


def test_same_id_from_two_live_processes_stays_two_machines() -> None:
    session = Session()
    first = session.connect("a")
    session.receive(
        first, frame([json.dumps({"kind": "hello", "v": 1, "proc": {"pid": 1}}), *stream(2, "ui")])
    )
    tab = session.connect("b")
    hello = json.dumps({"kind": "hello", "v": 1, "proc": {"tab": "3f2a1b9c"}})
    assert session.receive(tab, frame([hello, *stream(3, "ui")])) == []
    assert sorted(session.machines) == ["ui", "ui@3f2a1b"]
    assert len(session.machines["ui@3f2a1b"].ring) == 3
    assert replay(session.lines())["ui@3f2a1b"][-1][1] == {"A": 3, "B": 2, "Exception": 0}
    # a process that comes back after its machine disconnected continues the same timeline
    session.disconnect(first)
    again = session.connect("c")
    session.receive(again, frame(stream(1, "ui")))
    assert sorted(session.machines) == ["ui", "ui@3f2a1b"]
    assert len(session.machines["ui"].ring) == 2 + 2  # a schema keyframe and one transition
