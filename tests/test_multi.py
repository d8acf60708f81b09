"""Multi states: re-activation on call, none when implied, no de-duplication
(docs/semantics.md#multi-states)."""

from __future__ import annotations

from types import SimpleNamespace

import asyncmachine as am

St = am.State


def recorder(calls: list[str], *names: str) -> SimpleNamespace:
    """Handler object recording each call by name."""
    obj = SimpleNamespace()
    for name in names:

        def h(e: am.Event, _n: str = name) -> None:
            calls.append(_n)

        setattr(obj, name, h)
    return obj


M_HANDLERS = ("MEnter", "MExit", "MM", "MState", "MEnd", "AnyEnter", "AnyState")


def test_multi_handler_sequence() -> None:
    """Example: a called active Multi state runs Enter, self, State again; tick +2."""
    mach = am.Machine({"A": St(), "M": St(multi=True)})
    calls: list[str] = []
    mach.bind_handlers(recorder(calls, *M_HANDLERS))

    assert mach.add1("M") == am.Executed
    assert calls == ["MEnter", "AnyEnter", "MState", "AnyState"]
    assert mach.tick("M") == 1

    calls.clear()
    assert mach.add1("M") == am.Executed
    assert calls == ["MEnter", "MM", "AnyEnter", "MState", "AnyState"]
    assert mach.tick("M") == 3

    calls.clear()
    assert mach.add1("A") == am.Executed
    assert calls == ["MM", "AnyEnter", "AnyState"]
    assert mach.string_all() == "(A:1 M:3) [Exception:0]"

    calls.clear()
    assert mach.remove1("M") == am.Executed
    assert calls == ["MExit", "AnyEnter", "MEnd", "AnyState"]
    assert mach.string_all() == "(A:1) [Exception:0 M:4]"


def test_set_of_active_multi_re_activates() -> None:
    """Set counts as a call too."""
    mach = am.Machine({"A": St(), "M": St(multi=True)})
    mach.add(["A", "M"])
    assert mach.set(["M"]) == am.Executed
    assert mach.string_all() == "(M:3) [A:2 Exception:0]"


def test_implied_multi_is_not_re_ticked() -> None:
    """TestInspect: B active via Add of D is left at B:1."""
    mach = am.Machine({"B": St(multi=True), "C": St(), "D": St(add=("C", "B"))})
    mach.add1("B")
    assert mach.add1("D") == am.Executed
    assert mach.string_all() == "(B:1 C:1 D:1) [Exception:0]"


def test_active_multi_add_relations_are_re_applied() -> None:
    """TestRemoveMultiImplied, then an Add re-applies A's Add of B."""
    mach = am.Machine(
        {"A": St(multi=True, add=("B",), require=("C",)), "B": St(require=("C",)), "C": St()}
    )
    mach.add(["A", "C"])
    assert mach.string_all() == "(A:1 B:1 C:1) [Exception:0]"
    assert mach.remove1("B") == am.Executed
    assert mach.string_all() == "(A:1 C:1) [B:2 Exception:0]"
    assert mach.add1("C") == am.Executed
    assert mach.string_all() == "(A:1 B:3 C:1) [Exception:0]"


def test_multi_is_never_de_duplicated_in_queue() -> None:
    """Three Add1(M) from a handler queue three mutations; a plain state is de-duplicated."""
    mach = am.Machine({"A": St(), "B": St(), "M": St(multi=True)})
    multi: list[int] = []
    plain: list[int] = []

    def a_state(e: am.Event) -> None:
        multi.extend(int(e.machine.add1("M")) for _ in range(3))
        plain.extend(int(e.machine.add1("B")) for _ in range(3))

    mach.bind_handlers(SimpleNamespace(AState=a_state))
    assert mach.add1("A") == am.Executed
    assert multi == [3, 4, 5]
    assert plain == [6, am.Executed, am.Executed]
    assert mach.string_all() == "(A:1 B:1 M:5) [Exception:0]"


def test_multi_reactivation_cancels_state_ctx() -> None:
    """The state context of a Multi state ends on every re-activation."""
    mach = am.Machine({"M": St(multi=True)})
    mach.add1("M")
    ctx = mach.new_state_ctx("M")
    assert not ctx.done()
    mach.add1("M")
    assert ctx.done()
    fresh = mach.new_state_ctx("M")
    assert fresh is not ctx
    assert not fresh.done()


def test_when_args_matches_again_on_multi_reactivation() -> None:
    """A called active Multi state is entered again, so WhenArgs can match; a plain one is not."""
    mach = am.Machine({"A": St(), "M": St(multi=True)})
    mach.add(["A", "M"])
    w_multi = mach.when_args("M", {"k": 1})
    w_plain = mach.when_args("A", {"k": 1})
    assert not w_multi.done()
    mach.add(["A", "M"], {"k": 1})
    assert w_multi.done() and not w_multi.cancelled()
    assert not w_plain.done()
    assert mach.string_all() == "(A:1 M:3) [Exception:0]"


def test_exception_is_multi_by_default() -> None:
    """Every AddErr re-runs ExceptionState."""
    mach = am.Machine({"A": St()})
    calls: list[str] = []
    mach.bind_handlers(recorder(calls, "ExceptionState"))
    mach.add_err(ValueError("one"))
    mach.add_err(ValueError("two"))
    assert mach.tick("Exception") == 3
    assert calls == ["ExceptionState", "ExceptionState"]
    assert str(mach.err()) == "two"


def test_user_defined_exception_without_multi() -> None:
    """A user-defined Exception{} is used as given, so it is not re-ticked."""
    mach = am.Machine({"A": St(), "Exception": St()})
    mach.add_err(ValueError("one"))
    mach.add_err(ValueError("two"))
    assert mach.tick("Exception") == 1
