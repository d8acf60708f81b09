"""Schema utilities: s_add, schema_merge, the schema dict round trip, StatesBase
(docs/semantics.md#schema)."""

from __future__ import annotations

import dataclasses
import json

import pytest

import asyncmachine as am

St = am.State


def test_s_add() -> None:
    """TestSMerge: ordered union, first occurrence wins."""
    assert am.s_add(["A", "B", "C"], ["C", "D", "E"]) == ["A", "B", "C", "D", "E"]
    assert am.s_add() == []
    assert am.s_add(["A", "A"], ["B", "A"]) == ["A", "B"]
    src = ["A"]
    am.s_add(src, ["B"])
    assert src == ["A"]


def test_state_defaults_and_frozen() -> None:
    """am.State is a frozen dataclass whose relation fields are tuples."""
    s = St()
    assert (s.auto, s.multi) == (False, False)
    assert s.require == () and s.add == () and s.remove == () and s.after == () and s.tags == ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.auto = True  # type: ignore[misc]
    assert St(auto=True, require=("B",)) == St(auto=True, require=("B",))


def test_schema_merge_whole_state_override() -> None:
    """Later schemas override earlier ones per whole state, no relation merging."""
    s1 = {"A": St(auto=True, add=("B",)), "B": St()}
    s2 = {"A": St(multi=True), "C": St(require=("A",))}
    merged = am.schema_merge(s1, s2)
    assert merged == {"A": St(multi=True), "B": St(), "C": St(require=("A",))}
    assert list(merged) == ["A", "B", "C"]
    assert s1 == {"A": St(auto=True, add=("B",)), "B": St()}
    assert am.schema_merge() == {}
    assert am.schema_merge(s1) == s1


def test_schema_from_dict() -> None:
    """The JSON-friendly form maps to State objects; missing fields are defaults."""
    d = {"Foo": {"auto": True, "require": ["Bar"]}, "Bar": {}}
    schema = am.schema_from_dict(d)
    assert schema == {"Foo": St(auto=True, require=("Bar",)), "Bar": St()}


def test_schema_dict_round_trip() -> None:
    """schema_to_dict is JSON-serialisable and schema_from_dict restores the same schema."""
    schema = {
        "A": St(auto=True, multi=True, require=("B",), add=("C",), remove=("D",), after=("B",)),
        "B": St(tags=("ui", "key:val")),
        "C": St(),
        "D": St(remove=("A",)),
    }
    d = am.schema_to_dict(schema)
    text = json.dumps(d)
    back = am.schema_from_dict(json.loads(text))
    assert back == schema
    foo = am.schema_to_dict({"Foo": St(auto=True, require=("Bar",))})["Foo"]
    assert foo["auto"] is True
    assert foo["require"] == ["Bar"]


def test_states_base_names() -> None:
    """the API example: Exception first, then declaration order."""

    class MyStates(am.StatesBase):
        Processing: str
        Completed: str

    ss = MyStates()
    assert ss.Processing == "Processing"
    assert ss.Completed == "Completed"
    assert ss.Exception == "Exception"
    assert ss.names() == ["Exception", "Processing", "Completed"]


def test_states_base_inheritance() -> None:
    """Inherited names first, then new ones; a re-declared name isn't duplicated."""

    class Base(am.StatesBase):
        Start: str
        Ready: str

    class Child(Base):
        Working: str
        Start: str
        Done: str

    ss = Child()
    assert ss.names() == ["Exception", "Start", "Ready", "Working", "Done"]
    assert ss.Ready == "Ready"
    assert ss.Working == "Working"
    assert Base().names() == ["Exception", "Start", "Ready"]


def test_states_base_ellipsis() -> None:
    """Attributes set to `...` are names too."""

    class Dots(am.StatesBase):
        Foo = ...
        Bar = ...

    ss = Dots()
    assert ss.Foo == "Foo"
    assert ss.names() == ["Exception", "Foo", "Bar"]


def test_states_base_with_machine() -> None:
    """The names work as a verify_states order."""

    class MyStates(am.StatesBase):
        Processing: str
        Completed: str

    ss = MyStates()
    mach = am.Machine({ss.Processing: St(), ss.Completed: St(remove=(ss.Processing,))})
    mach.verify_states(ss.names())
    mach.add1(ss.Processing)
    mach.add1(ss.Completed)
    assert mach.string_all() == "(Completed:1) [Exception:0 Processing:2]"


def test_exception_constant() -> None:
    """am.EXCEPTION is the built-in state's name."""
    assert am.EXCEPTION == "Exception"
    assert "Exception" in am.Machine({"A": St()}).state_names()
