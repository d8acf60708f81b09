"""The stream's tracer and outbox, without a transport: what each transition becomes, what a full
outbox drops, and what a new connection starts with."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import pytest
from dbg_support import replay, taken, traced, txs
from hypothesis import given, settings
from hypothesis import strategies as st

import asyncmachine as am
from asyncmachine.telemetry._debug import DebugTracer, Outbox

SCHEMA = {"A": am.State(remove=("B",)), "B": am.State(remove=("A",))}


def test_schema_first_then_one_message_per_transition() -> None:
    mach, _, box = traced(SCHEMA, id="m1", tags=["web"])
    mach.add1("A")
    mach.add1("B")
    schema, *rest = taken(box, 100)
    assert schema["kind"] == "schema" and schema["id"] == "m1"
    assert schema["names"] == ["A", "B", "Exception"]
    assert schema["states"]["A"] == {"remove": ["B"]}
    assert schema["clock"] == {"A": 0, "B": 0, "Exception": 0}
    assert schema["parent"] is None and schema["tags"] == ["web"]
    assert [m["called"] for m in rest] == [["A"], ["B"]]
    second = rest[1]
    assert second["type"] == "add" and second["accepted"] is True and "auto" not in second
    assert second["ticks"] == {"A": 2, "B": 1}
    assert second["qt"] == 3 and "queue" not in second  # left out when 0 (and auto when false)
    assert len(second["tx"]) == 16
    json.dumps(rest)  # JSON-ready as they are


def test_checks_are_left_out_unless_asked() -> None:
    mach, _, box = traced(SCHEMA)
    assert mach.can_add1("A") == am.Executed
    mach.add1("A")
    assert [m["called"] for m in txs(box)] == [["A"]]
    outbox = Outbox()
    mach2 = am.Machine(SCHEMA)
    DebugTracer(mach2, outbox, checks=True)
    mach2.can_add1("A")
    assert len(txs(outbox)) == 1


def test_args_as_logged_and_the_source_of_a_handler_mutation() -> None:
    class H:
        def AState(self, e: am.Event) -> None:
            e.machine.ev_add1(e, "B", {"name": "from-A"})

    mach, _, box = traced({"A": am.State(), "B": am.State()}, id="src")
    mach.set_args_mapper(am.new_log_args_mapper())
    mach.bind_handlers(H())
    mach.add1("A", {"name": "file.txt", "secret": object()})
    first, second = txs(box)
    assert first["args"] == {"name": "file.txt"}  # only what logging shows
    assert "source" not in first
    assert second["source"] == {"mach": "src", "tx": first["tx"], "time": 0}


def test_log_lines_are_copied_and_still_reach_the_machine_logger() -> None:
    seen: list[str] = []
    mach = am.Machine(
        SCHEMA, id="logs", log_level=am.LogLevel.CHANGES, logger=lambda lvl, m: seen.append(m)
    )
    box = Outbox()
    tracer = DebugTracer(mach, box)
    mach.add1("A")
    mach.log("hello")  # between transitions: goes with the next one
    mach.add1("B")
    first, second = txs(box)
    assert first["log"] == [[2, "[state] +A"]]
    assert second["log"] == [[1, "[exter] hello"], [2, "[state] +B -A"]]
    assert seen == ["[logs] [state] +A", "[logs] [exter] hello", "[logs] [state] +B -A"]
    tracer.close()
    mach.add1("A")
    assert seen[-1] == "[logs] [state] +A -B" and len(box) == 0
    assert tracer not in mach.tracers()


def test_full_outbox_drops_oldest_and_keeps_clocks_exact() -> None:
    mach, _, box = traced(SCHEMA, limit=10, id="busy")
    for _ in range(50):
        mach.add1("A")
        mach.add1("B")
    assert len(box) == 10 and box.dropped_total == 91  # 100 transitions + schema, 10 kept
    msgs = taken(box, 100)
    assert msgs[0]["kind"] == "schema"  # never dropped
    dropped = msgs[1]
    assert dropped["kind"] == "dropped" and dropped["count"] == 91
    assert dropped["clock"] == {"A": 91, "B": 90, "Exception": 0}  # the clock after them
    clocks = replay(msgs)["busy"]
    assert len(clocks) == 9 and clocks[-1][1] == mach.clock()


def test_a_new_connection_gets_schemas_with_the_clock_of_the_first_waiting_record() -> None:
    mach, _, box = traced(SCHEMA, limit=1000, id="re")
    mach.add1("A")
    first_batch = taken(box, 100)  # sent over a connection that then breaks
    assert [m["kind"] for m in first_batch] == ["schema", "tx"]
    mach.add1("B")
    mach.add1("A")
    greeting = box.greeting()
    assert [m["kind"] for m in greeting] == ["schema"]
    assert greeting[0]["clock"] == {"A": 1, "B": 0, "Exception": 0}
    rest = taken(box, 100)
    assert replay([*greeting, *rest])["re"][-1][1] == mach.clock()


def test_no_schema_in_the_greeting_before_it_was_taken() -> None:
    _, _, box = traced(SCHEMA)
    assert box.greeting() == []
    taken(box, 10)
    assert len(box.greeting()) == 1


def test_schema_changes_and_state_order_are_streamed() -> None:
    mach, _, box = traced(SCHEMA, id="grow")
    mach.add1("A")
    mach.set_schema({**SCHEMA, "C": am.State()}, ["C", "A", "B", "Exception"])
    mach.add1("C")
    kinds = [(m["kind"], m.get("names")) for m in taken(box, 100)]
    assert kinds == [
        ("schema", ["A", "B", "Exception"]),
        ("tx", None),
        ("schema", ["C", "A", "B", "Exception"]),
        ("tx", None),
    ]


def test_submachines_are_streamed_and_dispose_is_reported() -> None:
    mach, tracer, box = traced(SCHEMA, id="parent")
    child = am.Machine(SCHEMA, id="child", parent=mach)
    child.add1("A")
    child.dispose()
    msgs = taken(box, 100)
    assert [(m["kind"], m["id"]) for m in msgs] == [
        ("schema", "parent"),
        ("schema", "child"),
        ("tx", "child"),
        ("dispose", "child"),
    ]
    assert msgs[1]["parent"] == "parent"
    assert box.greeting() == [{**msgs[0], "clock": msgs[0]["clock"]}]  # the child is gone
    tracer.close()


def test_outbox_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Outbox(0)


def test_on_ready_fires_when_the_outbox_stops_being_empty() -> None:
    calls: list[int] = []
    box = Outbox()
    box.on_ready = lambda: calls.append(len(box))
    mach = am.Machine(SCHEMA)
    DebugTracer(mach, box)
    mach.add1("A")
    assert calls == [1]
    taken(box, 10)
    mach.add1("B")
    box.wanted = True  # the transport could not start: every push retries
    mach.add1("A")
    assert calls == [1, 1, 2]


PACKAGE = Path(am.__file__).parent
IO_FREE = [
    "telemetry/_debug.py",
    "telemetry/_recording.py",
    "debugger/_steps.py",
    "debugger/_session.py",
    "debugger/_messages.py",
]


@pytest.mark.parametrize("name", IO_FREE)
def test_message_builder_and_store_are_io_free(name: str) -> None:
    tree = ast.parse((PACKAGE / name).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert not imported & {"asyncio", "socket", "websockets", "threading", "js", "pyodide"}


class _TrueClocks(am.Tracer):
    """The clock after each transition, read from the machine itself."""

    def __init__(self, mach: am.Machine) -> None:
        self.mach = mach
        self.after: dict[str, dict[str, int]] = {}

    def transition_end(self, tx: am.Transition) -> None:
        if not tx.mutation.is_check:
            self.after[tx.id] = self.mach.clock()


@settings(max_examples=60 if sys.platform != "emscripten" else 15, deadline=None)
@given(
    ops=st.lists(
        st.tuples(st.sampled_from(["A", "B", "C", "take", "reconnect", "grow"]), st.integers(1, 4)),
        max_size=60,
    ),
    limit=st.integers(1, 6),
)
def test_replay_is_exact_whatever_was_dropped_or_resent(
    ops: list[tuple[str, int]], limit: int
) -> None:
    """Whatever the outbox dropped and whenever connections restarted, every transition that
    arrives replays to the machine's real clock after it."""
    schema = {"A": am.State(remove=("B",)), "B": am.State(), "C": am.State(require=("B",))}
    mach, _, box = traced(schema, limit=limit, id="p")
    truth = _TrueClocks(mach)
    mach.bind_tracer(truth)
    received: list[dict[str, object]] = []
    grown = False
    for op, n in ops:
        if op == "take":
            received += taken(box, n)
        elif op == "reconnect":
            received += box.greeting()
        elif op == "grow" and not grown:
            grown = True
            mach.set_schema({**schema, "D": am.State()}, ["D", "A", "B", "C", "Exception"])
        elif op in "ABC":
            mach.toggle1(op)
    received += taken(box, 1_000_000)
    for tx_id, clock in replay(received).get("p", []):
        assert clock == truth.after[tx_id]


def test_transition_lines_are_json_whatever_the_names() -> None:
    """The tx lines are written out by hand for speed: they must parse as the message."""
    odd = {
        'Quote"d': am.State(),
        "Back\\slash": am.State(),
        "Ünïcode ✓": am.State(),
        "New\nline": am.State(),
    }

    mach, _, box = traced(odd, id='m"1', log_level=am.LogLevel.CHANGES, logger=lambda *a: None)
    mach.set_args_mapper(am.new_log_args_mapper(names=["name"]))
    mach.add(['Quote"d', "Ünïcode ✓"], {"name": 'a"b\\c ü'})
    mach.remove1('Quote"d')
    lines = box.take(100)
    for line in lines:
        json.loads(line)
    first = json.loads(lines[1])
    assert first["id"] == 'm"1'
    assert first["called"] == ['Quote"d', "Ünïcode ✓"]
    assert first["ticks"] == {'Quote"d': 1, "Ünïcode ✓": 1}
    assert first["args"] == {"name": 'a"b\\c ü'}
    assert first["log"] == [[2, '[state] +Quote"d +Ünïcode ✓ (name=a"b\\c ü)']]
    assert isinstance(first["t"], float) and first["accepted"] is True
