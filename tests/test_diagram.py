"""Diagrams (asyncmachine.diagram): exact Mermaid and text output for schemas and machines."""

from __future__ import annotations

import pytest

import asyncmachine as am
from asyncmachine import diagram

SCHEMA = {
    "Start": am.State(),
    "Connecting": am.State(require=("Start",), remove=("Connected",)),
    "Connected": am.State(require=("Start",), remove=("Connecting",), add=("Ready",)),
    "Ready": am.State(auto=True, require=("Connected",), after=("Connected",)),
    "Event": am.State(multi=True),
}

EDGES = """\
    Connected ==>|add| Ready
    Connected -->|require| Start
    Connected --x|remove| Connecting
    Connecting -->|require| Start
    Connecting --x|remove| Connected
    Ready -->|require| Connected
    Ready -.->|after| Connected
"""


def connected_machine() -> am.Machine:
    mach = am.Machine(SCHEMA)
    mach.add1("Start")
    mach.add1("Connecting")
    mach.add1("Connected")
    assert mach.string_all() == "(Connected:1 Ready:1 Start:1) [Connecting:2 Event:0 Exception:0]"
    return mach


def test_mermaid_of_a_schema() -> None:
    """Sorted states (Exception included), flags in labels, one labelled arrow per relation."""
    assert diagram.mermaid(SCHEMA) == (
        "flowchart LR\n"
        '    Connected["Connected"]\n'
        '    Connecting["Connecting"]\n'
        '    Event["Event (multi)"]\n'
        '    Exception["Exception (multi)"]\n'
        '    Ready["Ready (auto)"]\n'
        '    Start["Start"]\n' + EDGES
    )


def test_mermaid_of_a_machine() -> None:
    """Ticks in labels; active states get the ``active`` class."""
    assert diagram.mermaid(connected_machine()) == (
        "flowchart LR\n"
        '    Connected["Connected:1"]\n'
        '    Connecting["Connecting:2"]\n'
        '    Event["Event:0 (multi)"]\n'
        '    Exception["Exception:0 (multi)"]\n'
        '    Ready["Ready:1 (auto)"]\n'
        '    Start["Start:1"]\n'
        + EDGES
        + "    classDef active fill:#d4f7d4,stroke:#2e7d32,stroke-width:2px\n"
        "    class Connected,Ready,Start active\n"
    )


def test_text_of_a_schema() -> None:
    assert diagram.text(SCHEMA) == (
        "Connected\n"
        "  add: Ready\n"
        "  require: Start\n"
        "  remove: Connecting\n"
        "Connecting\n"
        "  require: Start\n"
        "  remove: Connected\n"
        "Event (multi)\n"
        "Exception (multi)\n"
        "Ready (auto)\n"
        "  require: Connected\n"
        "  after: Connected\n"
        "Start\n"
    )


def test_text_of_a_machine() -> None:
    assert diagram.text(connected_machine()) == (
        "* Connected:1\n"
        "    add: Ready\n"
        "    require: Start\n"
        "    remove: Connecting\n"
        "  Connecting:2\n"
        "    require: Start\n"
        "    remove: Connected\n"
        "  Event:0 (multi)\n"
        "  Exception:0 (multi)\n"
        "* Ready:1 (auto)\n"
        "    require: Connected\n"
        "    after: Connected\n"
        "* Start:1\n"
    )


def test_machine_order_follows_verified_states() -> None:
    mach = am.Machine({"B": am.State(), "A": am.State(require=("B",))})
    mach.verify_states(["B", "A", "Exception"])
    assert diagram.text(mach) == "  B:0\n  A:0\n    require: B\n  Exception:0 (multi)\n"


def test_schema_is_drawn_as_parsed() -> None:
    """A relation of a state to itself is dropped, like the machine does."""
    schema = {"A": am.State(remove=("A",), after=("A",))}
    assert diagram.text(schema) == "A\nException (multi)\n"
    assert diagram.mermaid(schema) == diagram.mermaid({"A": am.State()})


def test_unknown_relation_targets_are_refused() -> None:
    """A relation to a state that does not exist is a SchemaError, as for the machine."""
    with pytest.raises(am.SchemaError, match="A: remove target Ghost is not a state"):
        diagram.text({"A": am.State(remove=("Ghost",))})


def test_names_mermaid_cannot_take_get_node_ids() -> None:
    """``s<index>`` ids for keywords and odd names, never colliding with a state's own name."""
    schema = {"end": am.State(), 'Say "hi"': am.State(require=("end",)), "s2": am.State()}
    assert diagram.mermaid(schema) == (
        "flowchart LR\n"
        '    Exception["Exception (multi)"]\n'
        '    s1["Say #quot;hi#quot;"]\n'
        '    _s2["end"]\n'
        '    s2["s2"]\n'
        "    s1 -->|require| _s2\n"
    )


def test_deterministic() -> None:
    assert diagram.mermaid(SCHEMA) == diagram.mermaid(dict(reversed(SCHEMA.items())))


def test_disposed_machine_is_refused() -> None:
    mach = am.Machine(SCHEMA)
    mach.dispose()
    with pytest.raises(ValueError, match="disposed"):
        diagram.mermaid(mach)
