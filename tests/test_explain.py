"""explain_add / explain_remove: a dry run that says why (docs/semantics.md#explanations)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from support import NO_RELS, Rec

import asyncmachine as am

St = am.State


def snapshot(mach: am.Machine) -> tuple[str, int, int, int]:
    """Everything an explanation must leave as it was."""
    return mach.string_all(), mach.queue_tick(), mach.machine_tick(), mach.queue_len()


def test_executed_lists_what_enters_and_exits() -> None:
    """A remove relation deactivates D: it is in `removed`, C in `added`; nothing changes."""
    mach = am.Machine({"C": St(remove=("D",)), "D": St(), "E": St()})
    mach.add(["D", "E"])
    before = snapshot(mach)
    ex = mach.explain_add1("C")
    assert ex == am.Explanation(am.Executed, ["C", "E"], ["C"], ["D"], None, [])
    assert snapshot(mach) == before


def test_missing_requirement_is_named() -> None:
    """A called state whose requirement is missing: `requires Bar`, and the mutation cancels."""
    mach = am.Machine({"Foo": St(require=("Bar",)), "Bar": St(), "X": St()})
    mach.add1("X")
    before = snapshot(mach)
    ex = mach.explain_add(["Foo", "X"])
    assert ex.result == am.Canceled
    assert ex.rejected == [("Foo", "requires Bar")]
    assert ex.target == ["X"]
    assert ex.added == [] and ex.removed == [] and ex.canceled_by is None
    assert snapshot(mach) == before
    assert mach.add(["Foo", "X"]) == am.Canceled


def test_a_cascade_names_the_first_missing_state() -> None:
    """C requires B requires A: explaining C (without A) blames B for C and A for B."""
    mach = am.Machine({"A": St(), "B": St(require=("A",)), "C": St(require=("B",))})
    ex = mach.explain_add(["B", "C"])
    assert ex.result == am.Canceled
    assert ex.rejected == [("B", "requires A"), ("C", "requires B")]


def test_removed_by_an_active_state() -> None:
    """An active Bar removes Foo (one way): Foo is rejected `removed by Bar`."""
    mach = am.Machine({"Foo": St(), "Bar": St(remove=("Foo",))})
    mach.add1("Bar")
    ex = mach.explain_add1("Foo")
    assert ex.result == am.Canceled
    assert ex.rejected == [("Foo", "removed by Bar")]
    assert ex.target == ["Bar"]
    assert mach.add1("Foo") == am.Canceled


def test_removed_by_another_called_state() -> None:
    """Both called, C removes D: D is rejected, C would have stayed."""
    mach = am.Machine({"C": St(remove=("D",)), "D": St()})
    ex = mach.explain_add(["C", "D"])
    assert ex.result == am.Canceled
    assert ex.rejected == [("D", "removed by C")]
    assert ex.target == ["C"]


def test_canceled_by_a_handler_runs_no_final_handler() -> None:
    """A negotiation handler refusing: `canceled_by` names it; no final handler runs."""
    mach = am.Machine(dict(NO_RELS))
    rec = Rec("AExit", "BEnter", "BState", "AEnd", do={"BEnter": lambda e: False})
    mach.bind_handlers(rec)
    mach.add1("A")
    rec.calls.clear()
    before = snapshot(mach)
    ex = mach.explain_add1("B")
    assert ex.result == am.Canceled
    assert ex.canceled_by == "BEnter"
    assert ex.target == ["B", "A"]
    assert ex.added == ["B"] and ex.removed == [] and ex.rejected == []
    assert rec.calls == ["BEnter"]
    assert snapshot(mach) == before


def test_handlers_see_a_copy_of_the_args() -> None:
    """Negotiation handlers run with the args, but the caller's dict stays as it was."""
    mach = am.Machine(dict(NO_RELS))
    seen: list[dict[str, object]] = []

    def a_enter(e: am.Event) -> None:
        seen.append(dict(e.args))
        e.args["written"] = True

    mach.bind_handlers(SimpleNamespace(AEnter=a_enter))
    args = {"k": 1}
    assert mach.explain_add1("A", args).result == am.Executed
    assert seen == [{"k": 1}]
    assert args == {"k": 1}
    assert mach.not1("A")


def test_remove_lists_the_cascade() -> None:
    """Removing A deactivates B, which requires it: both in `removed`, in exit order."""
    mach = am.Machine({"A": St(), "B": St(require=("A",)), "C": St()})
    mach.add(["A", "B", "C"])
    ex = mach.explain_remove1("A")
    assert ex == am.Explanation(am.Executed, ["C"], [], ["A", "B"], None, [])
    assert mach.is_(["A", "B", "C"])


def test_remove_canceled_by_an_exit_handler() -> None:
    mach = am.Machine(dict(NO_RELS))
    mach.add1("A")
    mach.bind_handlers(SimpleNamespace(AExit=lambda e: False))
    ex = mach.explain_remove(["A"])
    assert (ex.result, ex.canceled_by, ex.removed) == (am.Canceled, "AExit", ["A"])
    assert mach.is1("A")


def test_a_raising_handler_is_reported_like_in_can_add() -> None:
    """A negotiation handler that raises cancels (canceled_by names it) and adds Exception,
    exactly as can_add does: a broken handler is never hidden."""
    mach = am.Machine(dict(NO_RELS))

    def boom(e: am.Event) -> None:
        raise ValueError("boom")

    mach.bind_handlers(SimpleNamespace(AEnter=boom))
    ex = mach.explain_add1("A")
    assert (ex.result, ex.canceled_by) == (am.Canceled, "AEnter")
    assert mach.is_err() and isinstance(mach.err(), ValueError)
    assert mach.not1("A")


def test_unknown_state_raises() -> None:
    mach = am.Machine(dict(NO_RELS))
    with pytest.raises(am.StateMissingError):
        mach.explain_add1("Nope")
    with pytest.raises(am.StateMissingError):
        mach.explain_remove(["A", "Nope"])


def test_inside_a_transition_raises() -> None:
    """From a handler an explanation would nest a transition: a clear error instead."""
    mach = am.Machine(dict(NO_RELS))
    errors: list[BaseException] = []

    def a_state(e: am.Event) -> None:
        try:
            e.machine.explain_add1("B")
        except RuntimeError as err:
            errors.append(err)

    mach.bind_handlers(SimpleNamespace(AState=a_state))
    assert mach.add1("A") == am.Executed
    assert len(errors) == 1 and "during a transition" in str(errors[0])


def test_disposed_machine_explains_a_cancel() -> None:
    mach = am.Machine(dict(NO_RELS))
    mach.dispose()
    assert mach.explain_add1("A") == am.Explanation(am.Canceled, [], [], [], None, [])


def test_explanation_is_a_frozen_record() -> None:
    ex = am.Machine(dict(NO_RELS)).explain_add1("A")
    with pytest.raises(AttributeError):
        ex.result = am.Canceled  # type: ignore[misc]
    assert ex.result == am.Executed and ex.target == ["A"] and ex.added == ["A"]
