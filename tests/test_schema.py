"""Schemas: parsing, the built-in Exception, state-name order, construction
(docs/semantics.md#schema).

Decided against upstream (docs/decisions.md): `Exception` exists before parsing, so relations to
it always work; `verify_states` rejects duplicates; a relation to an unknown state is an error.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest
from support import NO_RELS, Rec, logged

import asyncmachine as am


class RecTracer(am.Tracer):
    """Records the tracer hooks the schema rules talk about."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def machine_init(self, mach: Any) -> Any:
        self.calls.append(("machine_init", mach))
        return None

    def verify_states(self, mach: Any) -> None:
        self.calls.append(("verify_states", mach))

    def new_submachine(self, parent: Any, child: Any) -> None:
        self.calls.append(("new_submachine", (parent, child)))


# --- State definition -----------------------------------------------------------------------------


def test_state_defaults_are_empty() -> None:
    """A State has exactly the documented fields, all off / empty by default."""
    s = am.State()
    assert (s.auto, s.multi) == (False, False)
    assert (s.require, s.add, s.remove, s.after, s.tags) == ((), (), (), (), ())
    names = {f.name for f in dataclasses.fields(s)}
    assert names == {"auto", "multi", "require", "add", "remove", "after", "tags"}


def test_state_is_frozen() -> None:
    """State is a frozen dataclass, so a schema cannot be changed behind the machine's back."""
    s = am.State(auto=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.auto = False  # type: ignore[misc]


def test_tags_have_no_engine_semantics() -> None:
    """Tags are kept on the parsed schema and change nothing about transitions."""
    mach = am.Machine({"A": am.State(tags=("key", "k:v")), "B": am.State()})
    assert mach.schema["A"].tags == ("key", "k:v")
    assert mach.add1("A") == am.Executed
    assert mach.string_all() == "(A:1) [B:0 Exception:0]"


# --- Sanitising -----------------------------------------------------------------------------------


def test_parse_struct() -> None:
    """upstream TestParseStruct: A{Remove:[A,B,C],Add:,After:[A]} parses to A{Remove:[B],Add:}."""
    schema = {
        "A": am.State(remove=("A", "B", "C"), add=("C",), after=("A",)),
        "B": am.State(),
        "C": am.State(),
    }
    mach = am.Machine(schema)
    assert mach.schema["A"] == am.State(remove=("B",), add=("C",), after=())
    # the user's schema is not touched (parsing works on a copy)
    assert schema["A"].remove == ("A", "B", "C")


def test_schema_property_is_a_copy() -> None:
    """`mach.schema` is a copy: changing it does not change the machine."""
    mach = am.Machine({"A": am.State()})
    copy = mach.schema
    copy["B"] = am.State()
    assert "B" not in mach.schema
    assert mach.state_names() == ["A", "Exception"]


def test_self_remove_dropped() -> None:
    """Rule 1: a state does not remove itself, so it can be activated."""
    mach = am.Machine({"A": am.State(remove=("A",))})
    assert mach.schema["A"].remove == ()
    assert mach.add1("A") == am.Executed
    assert mach.string_all() == "(A:1) [Exception:0]"


def test_add_wins_over_remove() -> None:
    """Rule 2: a state listed in both Add and Remove stays only in Add."""
    mach = am.Machine({"A": am.State(add=("B",), remove=("B",)), "B": am.State()})
    assert mach.schema["A"] == am.State(add=("B",))
    assert mach.add1("A") == am.Executed
    assert mach.string_all() == "(A:1 B:1) [Exception:0]"


@pytest.mark.parametrize("rel", ["require", "add", "remove", "after"])
def test_unknown_relation_target_is_a_schema_error(rel: str) -> None:
    """A relation to a state not in the schema raises SchemaError naming the state and relation."""
    with pytest.raises(am.SchemaError, match=f"A: {rel} target Nope is not a state"):
        am.Machine({"A": am.State(**{rel: ("B", "Nope")}), "B": am.State()})


def test_every_unknown_relation_target_is_named() -> None:
    """All unknown targets are listed in one error, so one fix-up round is enough."""
    with pytest.raises(am.SchemaError) as info:
        am.Machine({"A": am.State(require=("X",)), "B": am.State(add=("Y",), after=("A",))})
    assert "A: require target X is not a state" in str(info.value)
    assert "B: add target Y is not a state" in str(info.value)


def test_relations_to_exception_always_allowed() -> None:
    """Exception is part of every schema, so relations to it are never unknown."""
    e = am.State(require=("Exception",), add=("Exception",), after=("Exception",))
    mach = am.Machine({"E": e, "F": am.State(remove=("Exception",))})
    assert mach.schema["E"] == e
    assert mach.schema["F"].remove == ("Exception",)


def test_schema_error_leaves_nothing_behind() -> None:
    """set_schema with an unknown relation target raises and keeps the old schema."""
    mach = am.Machine({"A": am.State()})
    mach.add1("A")
    with pytest.raises(am.SchemaError):
        mach.set_schema({"A": am.State(), "B": am.State(add=("C",))}, ["A", "B", "Exception"])
    assert mach.state_names() == ["A", "Exception"]
    assert mach.string_all() == "(A:1) [Exception:0]"


def test_self_after_dropped() -> None:
    """Rule 3: a state is dropped from its own After."""
    mach = am.Machine({"A": am.State(after=("A", "B")), "B": am.State()})
    assert mach.schema["A"].after == ("B",)


def test_require_remove_conflict_adds_exception() -> None:
    """Rule 4 : the constructor does not fail; it adds the schema error, Exception:1."""
    mach = am.Machine({"A": am.State(require=("B",), remove=("B",)), "B": am.State()})
    assert mach.is_err()
    assert mach.tick("Exception") == 1
    assert mach.string_all() == "(Exception:1) [A:0 B:0]"
    err = mach.err()
    assert isinstance(err, am.SchemaError)
    assert "require-remove conflict for A to B" in str(err)


def test_exception_relations_work_without_explicit_exception() -> None:
    """Decided: ErrX{Multi,Add:[Exception],Require:[Exception]}, no Exception key."""
    mach = am.Machine({"ErrX": am.State(multi=True, add=("Exception",), require=("Exception",))})
    assert mach.schema["ErrX"].add == ("Exception",)
    assert mach.schema["ErrX"].require == ("Exception",)
    assert mach.add1("ErrX") == am.Executed
    assert mach.string_all() == "(ErrX:1 Exception:1) []"


def test_exception_relations_with_explicit_exception() -> None:
    """: with an explicit Exception{Multi}: Add1(ErrX) -> Executed, (ErrX:1 Exception:1)."""
    mach = am.Machine(
        {
            "ErrX": am.State(multi=True, add=("Exception",), require=("Exception",)),
            "Exception": am.State(multi=True),
        }
    )
    assert mach.add1("ErrX") == am.Executed
    assert mach.string_all() == "(ErrX:1 Exception:1) []"


def test_remove_relation_to_exception_kept() -> None:
    """Decided: Remove:[Exception] is kept without an Exception key, and deactivates it."""
    mach = am.Machine({"Recover": am.State(remove=("Exception",))})
    assert mach.schema["Recover"].remove == ("Exception",)
    assert mach.add_err(ValueError("x")) == am.Executed
    assert mach.add1("Recover") == am.Executed
    assert mach.string_all() == "(Recover:1) [Exception:2]"


def test_after_relation_to_exception_kept() -> None:
    """Decided: After:[Exception] is kept without an Exception key and orders handlers."""
    mach = am.Machine({"B": am.State(after=("Exception",))})
    assert mach.schema["B"].after == ("Exception",)
    rec = Rec("BEnter", "ExceptionEnter")
    mach.bind_handlers(rec)
    assert mach.set(["B", "Exception"]) == am.Executed
    assert rec.calls == ["ExceptionEnter", "BEnter"]


# --- The built-in Exception -----------------------------------------------------------------------


def test_exception_added_as_multi() -> None:
    """No Exception key: the constructor adds Exception{Multi}, so every AddErr re-ticks it."""
    mach = am.Machine({"A": am.State()})
    assert mach.schema["Exception"] == am.State(multi=True)
    assert am.EXCEPTION == "Exception"
    mach.add_err(ValueError("1"))
    mach.add_err(ValueError("2"))
    assert mach.tick("Exception") == 3


def test_user_exception_used_as_given() -> None:
    """A user-defined Exception{} is not Multi: a second AddErr does not re-tick it."""
    mach = am.Machine({"A": am.State(), "Exception": am.State()})
    assert mach.schema["Exception"].multi is False
    assert mach.add_err(ValueError("1")) == am.Executed
    assert mach.add_err(ValueError("2")) == am.Executed
    assert mach.tick("Exception") == 1


def test_expose_all_state_names() -> None:
    """upstream TestExposeAllStateNames: schema A,B,C,D has names A,B,C,D,Exception everywhere."""
    mach = am.Machine(NO_RELS)
    assert mach.state_names() == ["A", "B", "C", "D", "Exception"]
    assert mach.string_all() == "() [A:0 B:0 C:0 D:0 Exception:0]"
    assert list(mach.time()) == [0, 0, 0, 0, 0]
    assert mach.clock() == {"A": 0, "B": 0, "C": 0, "D": 0, "Exception": 0}


# --- Reserved names -------------------------------------------------------------------------------


def test_healthcheck_and_heartbeat_do_not_trigger_auto() -> None:
    """Add of exactly Healthcheck or Heartbeat does not trigger auto states; Remove1 does."""
    mach = am.Machine(
        {"X": am.State(auto=True), "Healthcheck": am.State(), "Heartbeat": am.State()}
    )
    assert mach.add1("Healthcheck") == am.Executed
    assert mach.add1("Heartbeat") == am.Executed
    assert mach.tick("X") == 0
    assert mach.remove1("Heartbeat") == am.Executed
    assert mach.string_all() == "(Healthcheck:1 X:1) [Exception:0 Heartbeat:2]"


# --- State-name order -----------------------------------------------------------------------------


def test_default_order_is_sorted() -> None:
    """Foo,Bar,Baz -> [Bar, Baz, Exception, Foo] (byte order, Exception included)."""
    mach = am.Machine({"Foo": am.State(), "Bar": am.State(), "Baz": am.State()})
    assert mach.state_names() == ["Bar", "Baz", "Exception", "Foo"]
    assert mach.string_all() == "() [Bar:0 Baz:0 Exception:0 Foo:0]"
    assert mach.states_verified is False


def test_default_order_is_byte_order() -> None:
    """Byte order puts upper case before lower case (Python sorted())."""
    mach = am.Machine({"b": am.State(), "B": am.State(), "a": am.State(), "Zed": am.State()})
    assert mach.state_names() == ["B", "Exception", "Zed", "a", "b"]


def test_verify_states_sets_order() -> None:
    """A successful verify_states makes the given order the machine's order."""
    tracer = RecTracer()
    mach = am.Machine({"Foo": am.State(), "Bar": am.State(), "Baz": am.State()}, tracers=(tracer,))
    tracer.calls.clear()
    mach.verify_states(["Foo", "Bar", "Baz", "Exception"])
    assert mach.states_verified is True
    assert mach.state_names() == ["Foo", "Bar", "Baz", "Exception"]
    assert mach.string_all() == "() [Foo:0 Bar:0 Baz:0 Exception:0]"
    assert tracer.calls == [("verify_states", mach)]


def test_verify_states_unknown_name() -> None:
    """An unknown name is a SchemaError naming it; the order stays as it was."""
    mach = am.Machine(NO_RELS)
    with pytest.raises(am.SchemaError, match="Nope not defined in schema"):
        mach.verify_states(["A", "B", "C", "D", "Exception", "Nope"])
    assert mach.state_names() == ["A", "B", "C", "D", "Exception"]
    assert mach.states_verified is False


def test_verify_states_fewer_names() -> None:
    """Fewer names than registered is an error listing the missing ones."""
    mach = am.Machine(NO_RELS)
    with pytest.raises(am.SchemaError, match="trying to verify less states than registered"):
        mach.verify_states(["A", "B", "C", "D"])
    assert mach.states_verified is False


def test_verify_states_rejects_duplicates() -> None:
    """Decided: duplicates are a SchemaError, even when they make up the length."""
    mach = am.Machine(NO_RELS)
    with pytest.raises(am.SchemaError):
        mach.verify_states(["A", "A", "B", "C", "D"])
    with pytest.raises(am.SchemaError):
        mach.verify_states(["A", "A", "B", "C", "D", "Exception"])
    assert mach.state_names() == ["A", "B", "C", "D", "Exception"]
    assert mach.states_verified is False


@pytest.mark.parametrize("names", [["A", "A", "B", "Err"], ["A", "A"], ["A", "B"]])
def test_verify_states_errors(names: list[str]) -> None:
    """upstream TestVerifyStates: on A,B,C,D these are all errors."""
    mach = am.Machine(NO_RELS)
    with pytest.raises(am.SchemaError):
        mach.verify_states(names)
    assert mach.state_names() == ["A", "B", "C", "D", "Exception"]


def test_verify_states_must_include_exception() -> None:
    """Exception is a schema state, so a list without it is too short."""
    mach = am.Machine(NO_RELS)
    with pytest.raises(am.SchemaError):
        mach.verify_states(["D", "C", "B", "A"])


def test_order_used_by_readers() -> None:
    """string, string_all, inspect, time, clock and index follow the verified order."""
    mach = am.Machine(NO_RELS)
    mach.verify_states(["D", "C", "Exception", "B", "A"])
    mach.add(["A", "B"])
    assert mach.string() == "(B:1 A:1)"
    assert mach.string_all() == "(B:1 A:1) [D:0 C:0 Exception:0]"
    assert list(mach.time()) == [0, 0, 0, 1, 1]
    assert list(mach.clock()) == ["D", "C", "Exception", "B", "A"]
    assert mach.index1("D") == 0
    assert mach.index1("A") == 4
    assert mach.index(["A", "D"]) == [4, 0]
    first_lines = [ln for ln in mach.inspect().splitlines() if not ln.startswith(" ")]
    assert first_lines == ["0 D", "0 C", "0 Exception", "1 B", "1 A"]


def test_order_does_not_change_resolver_order() -> None:
    """The names order does not reorder transitions: called states still first, in call order."""
    mach = am.Machine(NO_RELS)
    mach.verify_states(["D", "C", "Exception", "B", "A"])
    rec = Rec("AEnter", "BEnter")
    mach.bind_handlers(rec)
    mach.add(["A", "B"])
    assert rec.calls == ["AEnter", "BEnter"]
    assert mach.active_states() == ["A", "B"]


# --- Construction and defaults --------------------------------------------------------------------


def test_id_random_16_hex() -> None:
    """The id defaults to 16 random hex characters."""
    m1 = am.Machine(NO_RELS)
    m2 = am.Machine(NO_RELS)
    assert re.fullmatch(r"[0-9a-f]{16}", m1.id)
    assert re.fullmatch(r"[0-9a-f]{16}", m2.id)
    assert m1.id != m2.id
    assert am.Machine(NO_RELS, id="custom").id == "custom"


def test_no_mutation_at_construction() -> None:
    """New runs no mutation: every tick 0, nothing active, no transition."""
    mach = am.Machine(NO_RELS)
    assert mach.active_states() == []
    assert mach.time().sum() == 0
    assert mach.machine_tick() == 0
    assert mach.queue_tick() == 1
    assert mach.queue_len() == 0
    assert mach.transition is None
    assert mach.is_err() is False
    assert mach.err() is None


def test_auto_states_wait_for_first_transition() -> None:
    """A{}, X{Auto}: after New X:0; Add1(A) -> (A:1 X:1)."""
    mach = am.Machine({"A": am.State(), "X": am.State(auto=True)})
    assert mach.tick("X") == 0
    assert mach.add1("A") == am.Executed
    assert mach.string_all() == "(A:1 X:1) [Exception:0]"


def test_default_log_level_nothing() -> None:
    """The default log level is NOTHING: a custom logger gets no lines."""
    lines: list[str] = []
    mach = am.Machine(NO_RELS, logger=lambda _lvl, msg: lines.append(msg))
    mach.add1("A")
    mach.add1("B")
    assert lines == []


def test_log_id_prefix_default_on() -> None:
    """Log lines are prefixed with the first 5 chars of the id unless log_id=False."""
    lines: list[str] = []
    mach = am.Machine(
        NO_RELS, id="abcdefgh", log_level=am.LogLevel.CHANGES, logger=lambda _l, m: lines.append(m)
    )
    mach.add1("A")
    assert lines == ["[abcde] [state] +A"]
    quiet, qlines = logged(NO_RELS, am.LogLevel.CHANGES)
    quiet.add1("A")
    assert qlines == ["[state] +A"]


def test_tags_deduplicated_copy() -> None:
    """Tags are a de-duplicated copy of what was given."""
    tags = ["a", "b", "a"]
    mach = am.Machine(NO_RELS, tags=tags)
    tags.append("c")
    assert list(mach.tags) == ["a", "b"]


def test_parent_sets_parent_id_and_notifies_tracers() -> None:
    """A parent sets parent_id and calls each of the parent's tracers with new_submachine."""
    tracer = RecTracer()
    parent = am.Machine(NO_RELS, tracers=(tracer,))
    assert parent.parent_id in (None, "")
    child = am.Machine(NO_RELS, parent=parent)
    assert child.parent_id == parent.id
    assert ("new_submachine", (parent, child)) in tracer.calls


def test_tracers_get_machine_init() -> None:
    """Each tracer gets machine_init(mach) at construction."""
    tracer = RecTracer()
    mach = am.Machine(NO_RELS, tracers=(tracer,))
    assert tracer.calls == [("machine_init", mach)]


def test_queue_limit_default_1000() -> None:
    """QueueLimit defaults to 1000: the 1001st mutation queued from a handler is Canceled."""
    mach = am.Machine(NO_RELS)
    results: list[am.Result] = []

    def a_state(_e: am.Event) -> None:
        for i in range(1000):
            results.append(mach.add1("B", {"i": i}))
        results.append(mach.add1("C"))

    mach.bind_handlers(Rec(do={"AState": a_state}))
    assert mach.add1("A") == am.Executed
    assert results[0] == 3
    assert results[999] == 1002
    assert results[1000] == am.Canceled
    assert mach.string_all() == "(A:1 B:1) [C:0 D:0 Exception:0]"


def test_panic_to_exception_default_on() -> None:
    """PanicToException defaults to on: a raising handler becomes Exception, the call returns."""
    mach = am.Machine(NO_RELS)

    def boom(_e: am.Event) -> None:
        raise ValueError("boom")

    mach.bind_handlers(Rec(do={"AEnter": boom}))
    assert mach.add1("A") == am.Canceled
    assert mach.string_all() == "(Exception:1) [A:0 B:0 C:0 D:0]"
