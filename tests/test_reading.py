"""Reading a machine: string formats, inspect(), any/has/switch/index
(docs/semantics.md#reading)."""

from __future__ import annotations

import pytest

import asyncmachine as am

St = am.State
NO_RELS = {"A": St(), "B": St(), "C": St(), "D": St()}
RELS = {
    "A": St(auto=True, require=("C",)),
    "B": St(multi=True, add=("C",)),
    "C": St(after=("D",)),
    "D": St(add=("C", "B")),
}

INSPECT_RELS = """\
1 A
    |Tick     1
    |Auto     true
    |Require  C
0 B
    |Tick     0
    |Multi    true
    |Add      C
1 C
    |Tick     1
    |After    D
0 D
    |Tick     0
    |Add      C B
0 Exception
    |Tick     0
    |Multi    true
"""


def mk(schema: dict[str, am.State] | None = None) -> am.Machine:
    """A NoRels machine (A B C D) unless a schema is given."""
    return am.Machine(dict(schema or NO_RELS))


def test_string_formats() -> None:
    """TestString: active in parentheses, inactive in brackets, state_names() order."""
    mach = mk()
    assert mach.string() == "()"
    assert mach.string_all() == "() [A:0 B:0 C:0 D:0 Exception:0]"
    mach.add(["D", "B"])
    assert mach.string() == "(B:1 D:1)"
    assert str(mach) == "(B:1 D:1)"
    assert mach.string_all() == "(B:1 D:1) [A:0 C:0 Exception:0]"
    mach.add(["A", "B", "C", "D", "Exception"])
    assert mach.string_all() == "(A:1 B:1 C:1 D:1 Exception:1) []"


def test_string_after_verify_states_uses_that_order() -> None:
    """The verified order replaces the sorted one."""
    mach = mk({"Foo": St(), "Bar": St(), "Baz": St()})
    assert mach.string_all() == "() [Bar:0 Baz:0 Exception:0 Foo:0]"
    mach.verify_states(["Foo", "Bar", "Baz", "Exception"])
    mach.add1("Baz")
    assert mach.string_all() == "(Baz:1) [Foo:0 Bar:0 Exception:0]"


def test_inspect_example() -> None:
    """TestInspect: Rels after Set(A,C), exact text."""
    mach = mk(RELS)
    assert mach.set(["A", "C"]) == am.Executed
    assert mach.string_all() == "(A:1 C:1) [B:0 D:0 Exception:0]"
    assert mach.inspect() == INSPECT_RELS


def test_inspect_subset_in_given_order_and_no_tags() -> None:
    """inspect(states) prints the given states in the given order; tags are never printed."""
    mach = mk({"A": St(tags=("ui", "key:val")), "B": St(remove=("A",), after=("A",))})
    mach.add1("A")
    assert mach.inspect(["B", "A"]) == (
        "0 B\n    |Tick     0\n    |Remove   A\n    |After    A\n1 A\n    |Tick     1\n"
    )


def test_any() -> None:
    """TestAny: some list fully active."""
    mach = mk()
    mach.add(["A", "B"])
    assert mach.any(["A", "B"], ["C"]) is True
    assert mach.any(["A", "B", "C"], ["A"]) is True
    assert mach.any(["C"]) is False
    assert mach.any() is False


def test_any1() -> None:
    """Some single state active."""
    mach = mk()
    mach.add1("B")
    assert mach.any1("C", "B") is True
    assert mach.any1("C", "D") is False
    assert mach.any1() is False


def test_is_and_not() -> None:
    """is_ answers False for unknown names; not_ raises StateMissingError."""
    mach = mk()
    mach.add(["A", "B"])
    assert mach.is_(["A", "B"]) is True
    assert mach.is_(["A", "C"]) is False
    assert mach.is_([]) is True
    assert mach.is_(["A", "Nope"]) is False
    assert mach.is1("Nope") is False
    assert mach.not_(["C", "D"]) is True
    assert mach.not_(["A", "C"]) is False
    assert mach.not_([]) is True
    assert mach.not1("C") is True
    assert mach.not1("A") is False
    with pytest.raises(am.StateMissingError):
        mach.not_(["Nope"])
    with pytest.raises(am.StateMissingError):
        mach.not1("Nope")


def test_has() -> None:
    """TestHas: all names defined; duplicates fine."""
    mach = mk()
    assert mach.has(["A", "A", "B"]) is True
    assert mach.has(["A", "Err"]) is False
    assert mach.has1("Exception") is True
    assert mach.has1("Err") is False


def test_switch() -> None:
    """TestSwitch: the first active state scanning groups in order, else ""."""
    mach = mk()
    mach.add1("A")
    assert mach.switch(["A", "B"]) == "A"
    assert mach.switch(["C", "B"]) == ""
    assert mach.switch(["C"], ["B", "A"]) == "A"
    mach.add1("B")
    assert mach.switch(["C"], ["B", "A"]) == "B"
    assert mach.switch() == ""


def test_active_states() -> None:
    """Target order for the whole list (docs/semantics.md#ordering); filter order for a filter."""
    mach = mk()
    mach.add1("A")
    mach.add1("B")
    mach.add1("C")
    assert mach.active_states() == ["C", "B", "A"]
    assert mach.active_states(["D", "A", "C"]) == ["A", "C"]
    copy = mach.active_states()
    copy.append("D")
    assert mach.active_states() == ["C", "B", "A"]


def test_index() -> None:
    """Position in state_names(), -1 when unknown."""
    mach = mk()
    assert mach.state_names() == ["A", "B", "C", "D", "Exception"]
    assert mach.index1("C") == 2
    assert mach.index1("Exception") == 4
    assert mach.index1("Nope") == -1
    assert mach.index(["D", "A", "Nope"]) == [3, 0, -1]


def test_tick_time_clock() -> None:
    """tick/time/clock read the same ticks; unknown tick is 0."""
    mach = mk()
    mach.add(["A", "B"])
    mach.remove1("A")
    assert mach.tick("A") == 2
    assert mach.tick("Nope") == 0
    t = mach.time()
    assert isinstance(t, am.Time)
    assert list(t) == [2, 1, 0, 0, 0]
    assert list(mach.time(["B", "A"])) == [1, 2]
    assert mach.clock() == {"A": 2, "B": 1, "C": 0, "D": 0, "Exception": 0}
    assert mach.clock(["B"]) == {"B": 1}
