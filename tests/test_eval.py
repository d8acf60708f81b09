"""Eval: runs at once when idle, refused inside handlers and inside another eval
(docs/semantics.md#eval)."""

from __future__ import annotations

from types import SimpleNamespace

import asyncmachine as am

St = am.State
NO_RELS = {"A": St(), "B": St(), "C": St(), "D": St()}


def mk() -> am.Machine:
    """A NoRels machine (A B C D)."""
    return am.Machine(dict(NO_RELS))


def test_eval_idle_runs_and_returns_true() -> None:
    """An idle machine runs fn before eval returns; no transition, no queue tick, no handlers."""
    mach = mk()
    mach.add1("A")
    calls: list[str] = []
    mach.bind_handlers(SimpleNamespace(AnyEnter=lambda e: calls.append("AnyEnter")))
    clock = mach.clock()
    qt = mach.queue_tick()
    ran: list[bool] = []
    assert mach.eval(lambda: ran.append(mach.is1("A"))) is True
    assert ran == [True]
    assert mach.eval(lambda: ran.append(False), "with-source") is True
    assert ran == [True, False]
    assert mach.clock() == clock
    assert mach.queue_tick() == qt
    assert calls == []
    assert not mach.is_err()


def test_eval_inside_handler_is_refused_with_nested_eval_error() -> None:
    """TestEvalNestedHandlers: eval in a handler returns False and adds NestedEvalError."""
    mach = mk()
    results: list[bool] = []
    ran: list[int] = []

    def a_state(e: am.Event) -> None:
        results.append(e.machine.eval(lambda: ran.append(1), "in-state"))

    def b_enter(e: am.Event) -> None:
        results.append(e.machine.eval(lambda: ran.append(2), "in-enter"))

    mach.bind_handlers(SimpleNamespace(AState=a_state, BEnter=b_enter))
    assert mach.add1("A") == am.Executed
    assert results == [False]
    assert ran == []
    assert mach.is_err()
    assert isinstance(mach.err(), am.NestedEvalError)
    assert isinstance(mach.err(), am.AsyncMachineError)
    assert mach.string_all() == "(A:1 Exception:1) [B:0 C:0 D:0]"

    assert mach.add1("B") == am.Executed
    assert results == [False, False]
    assert ran == []
    assert mach.string_all() == "(A:1 B:1 Exception:3) [C:0 D:0]"


def test_nested_eval_returns_false_without_exception() -> None:
    """TestEvalNested: the outer eval returns True, the nested one False, no Exception."""
    mach = mk()
    a: list[int] = []
    inner: list[bool] = []

    def outer() -> None:
        a.append(1)
        inner.append(mach.eval(lambda: a.append(2), "inner"))

    assert mach.eval(outer, "outer") is True
    assert a == [1]
    assert inner == [False]
    assert not mach.is_err()
    assert mach.err() is None


def test_eval_on_disposed_machine() -> None:
    """A disposed machine refuses evals."""
    mach = mk()
    mach.dispose()
    ran: list[int] = []
    assert mach.eval(lambda: ran.append(1)) is False
    assert ran == []


def test_eval_can_mutate_after() -> None:
    """A mutation called from an eval fn runs; the machine stays usable."""
    mach = mk()
    results: list[int] = []
    assert mach.eval(lambda: results.append(mach.add1("B"))) is True
    assert mach.is1("B")
    assert len(results) == 1
    assert mach.add1("C") == am.Executed
    assert mach.string_all() == "(B:1 C:1) [A:0 D:0 Exception:0]"
