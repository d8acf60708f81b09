"""Transitions: negotiation, the final phase, auto scheduling and the transition object
(docs/semantics.md#transitions, #negotiation, #final-handlers).

Decided against upstream: an `XExit` returning False for an auto state inside an auto transition
cancels the whole auto transition.
"""

from __future__ import annotations

import re
from typing import Any

from support import NO_RELS, Rec, all_handlers, logged

import asyncmachine as am

# --- Negotiation phase ----------------------------------------------------------------------------


def test_negotiation_order_add() -> None:
    """active {A,B}, Add(C): CEnter, self AA BB, then AC, AB, BC, BA, AnyEnter."""
    mach = am.Machine(NO_RELS)
    mach.set(["A", "B"])
    rec = Rec(*all_handlers("ABC"))
    mach.bind_handlers(rec)
    assert mach.add1("C") == am.Executed
    assert rec.calls == [
        "CEnter",
        "AA",
        "BB",
        "AC",
        "AB",
        "BC",
        "BA",
        "AnyEnter",
        "CState",
        "AnyState",
    ]


def test_negotiation_order_remove() -> None:
    """active {A,B}, Remove1(B) calls BA; no self handlers for Remove."""
    mach = am.Machine(NO_RELS)
    mach.set(["A", "B"])
    rec = Rec(*all_handlers("AB"))
    mach.bind_handlers(rec)
    assert mach.remove1("B") == am.Executed
    assert rec.calls == ["BExit", "BA", "AnyEnter", "BEnd", "AnyState"]


def test_negotiation_cancel() -> None:
    """upstream TestNegotiationCancel: {A}, DEnter false: Add(D) [cancel] (D A); Set(D) [cancel]
    (D)."""
    mach, lines = logged(NO_RELS)
    mach.add1("A")
    rec = Rec("AnyEnter", "DState", "AnyState", do={"DEnter": lambda _e: False})
    mach.bind_handlers(rec)
    assert mach.add1("D") == am.Canceled
    assert "[cancel] (D A) by DEnter" in lines
    assert mach.set(["D"]) == am.Canceled
    assert "[cancel] (D) by DEnter" in lines
    assert rec.calls == ["DEnter", "DEnter"]
    assert mach.string_all() == "(A:1) [B:0 C:0 D:0 Exception:0]"


def test_self_handler_cancel_log() -> None:
    """A self handler cancelling is logged as [cancel:self]."""
    mach, lines = logged(NO_RELS)
    mach.add1("A")
    mach.bind_handlers(Rec(do={"AA": lambda _e: False}))
    assert mach.add1("B") == am.Canceled
    assert "[cancel:self] (B A) by AA" in lines
    assert mach.string() == "(A:1)"


def test_first_cancel_ends_phase() -> None:
    """The first cancellation ends negotiation: later handlers are not called."""
    mach = am.Machine(NO_RELS)
    mach.add1("A")
    rec = Rec(*all_handlers("AB"), do={"AExit": lambda _e: False})
    mach.bind_handlers(rec)
    assert mach.set(["B"]) == am.Canceled
    assert rec.calls == ["AExit"]
    assert mach.string() == "(A:1)"


def test_any_enter_cancels() -> None:
    """AnyEnter is last and can cancel."""
    mach = am.Machine(NO_RELS)
    rec = Rec("AEnter", "AState", "AnyState", do={"AnyEnter": lambda _e: False})
    mach.bind_handlers(rec)
    assert mach.add1("A") == am.Canceled
    assert rec.calls == ["AEnter", "AnyEnter"]
    assert mach.tick("A") == 0


def test_every_binding_in_bind_order() -> None:
    """Every handler name is dispatched to every binding, in bind order."""
    mach = am.Machine(NO_RELS)
    calls: list[str] = []
    for tag in ("1", "2"):
        obj = Rec(*all_handlers("A"))
        obj.calls = calls
        mach.bind_handlers(obj, id=f"b{tag}")
        calls.append(f"bound{tag}")
    calls.clear()
    mach.add1("A")
    assert calls == [
        "AEnter",
        "AEnter",
        "AnyEnter",
        "AnyEnter",
        "AState",
        "AState",
        "AnyState",
        "AnyState",
    ]


def test_partial_auto_by_enter() -> None:
    """An auto state's XEnter returning False drops only X; the other candidates go ahead."""
    mach = am.Machine({"S": am.State(), "X": am.State(auto=True), "Y": am.State(auto=True)})
    rec = Rec("YEnter", "YState", do={"XEnter": lambda _e: False})
    mach.bind_handlers(rec)
    assert mach.add1("S") == am.Executed
    assert rec.calls == ["XEnter", "YEnter", "YState"]
    assert mach.string_all() == "(S:1 Y:1) [Exception:0 X:0]"


def test_partial_auto_by_state_to_state() -> None:
    """A state-to-state handler whose second state is auto X drops only X."""
    mach = am.Machine({"S": am.State(), "X": am.State(auto=True), "Y": am.State(auto=True)})
    mach.bind_handlers(Rec(do={"SX": lambda _e: False}))
    assert mach.add1("S") == am.Executed
    assert mach.string_all() == "(S:1 Y:1) [Exception:0 X:0]"


def test_partial_auto_by_self_of_active_auto() -> None:
    """A cancelling self handler of an active auto state has no lasting effect."""
    mach = am.Machine(
        {"S": am.State(), "X": am.State(auto=True), "Y": am.State(auto=True, require=("S",))}
    )
    mach.add1("X")
    assert mach.string_all() == "(X:1) [Exception:0 S:0 Y:0]"
    rec = Rec("YEnter", do={"XX": lambda e: False if e.transition.is_auto else None})
    mach.bind_handlers(rec)
    assert mach.add1("S") == am.Executed
    assert "YEnter" in rec.calls
    assert mach.string_all() == "(S:1 X:1 Y:1) [Exception:0]"


def test_partial_auto_by_self_handler_of_non_auto() -> None:
    """upstream TestPartialAutoStatesBySelfHandler: a non-auto CC cancelling cancels the whole auto
    tx."""
    mach = am.Machine({"C": am.State(), "X": am.State(auto=True), "Y": am.State(auto=True)})
    rec = Rec("XEnter", "YEnter", do={"CC": lambda _e: False})
    mach.bind_handlers(rec)
    assert mach.add1("C") == am.Executed
    assert rec.calls == ["XEnter", "YEnter", "CC"]
    assert mach.string_all() == "(C:1) [Exception:0 X:0 Y:0]"


def test_partial_auto_by_any_enter() -> None:
    """AnyEnter cancelling an auto transition cancels all of it."""
    mach = am.Machine({"C": am.State(), "X": am.State(auto=True)})
    mach.bind_handlers(Rec(do={"AnyEnter": lambda e: False if e.mutation.is_auto else None}))
    assert mach.add1("C") == am.Executed
    assert mach.string_all() == "(C:1) [Exception:0 X:0]"


def test_auto_exit_false_cancels_whole_auto() -> None:
    """Decided: XExit false for auto X inside an auto transition cancels the whole of it."""
    mach = am.Machine(
        {
            "A": am.State(),
            "P": am.State(auto=True, remove=("X",), require=("Q",)),
            "Q": am.State(),
            "X": am.State(auto=True),
        }
    )
    rec = Rec("PEnter", do={"XExit": lambda _e: False})
    mach.bind_handlers(rec)
    assert mach.add1("A") == am.Executed
    assert mach.string_all() == "(A:1 X:1) [Exception:0 P:0 Q:0]"
    assert mach.add1("Q") == am.Executed
    assert rec.calls == ["XExit"]
    assert mach.string_all() == "(A:1 Q:1 X:1) [Exception:0 P:0]"


def test_auto_exit_of_non_auto_state_cancels_whole_auto() -> None:
    """A non-auto Y's YExit cancelling an auto transition cancels all of it."""
    mach = am.Machine(
        {
            "A": am.State(),
            "P": am.State(auto=True, remove=("Y",)),
            "Y": am.State(),
            "Z": am.State(auto=True),
        }
    )
    mach.bind_handlers(Rec(do={"YExit": lambda _e: False}))
    assert mach.add1("Y") == am.Executed
    assert mach.string_all() == "(Y:1) [A:0 Exception:0 P:0 Z:0]"


def test_no_handlers_nothing_observable() -> None:
    """With no handlers bound nothing is negotiated: the transition just applies."""
    mach = am.Machine(NO_RELS)
    assert mach.add1("A") == am.Executed
    assert mach.handlers() == []


# --- Auto re-resolution ---------------------------------------------------------------------------


def test_partial_auto_states_by_enter() -> None:
    """upstream TestPartialAutoStatesByEnter: states implied only by a rejected auto state
    disappear."""
    mach = am.Machine(
        {
            "A": am.State(auto=True, add=("Z",)),
            "B": am.State(auto=True),
            "S": am.State(),
            "Z": am.State(),
        }
    )
    rec = Rec("BEnter", "ZEnter", "BState", "ZState", do={"AEnter": lambda _e: False})
    mach.bind_handlers(rec)
    assert mach.add1("S") == am.Executed
    assert "BState" in rec.calls
    assert "ZState" not in rec.calls
    assert mach.string_all() == "(B:1 S:1) [A:0 Exception:0 Z:0]"


# --- Apply ----------------------------------------------------------------------------------------


def test_state_log_lines() -> None:
    """[state] +New -Gone at Changes level; [auto_] for auto; a Multi re-activation shows as +M."""
    mach, lines = logged(
        {
            "A": am.State(),
            "B": am.State(),
            "M": am.State(multi=True),
            "X": am.State(auto=True, require=("B",)),
        },
        am.LogLevel.CHANGES,
    )
    mach.add1("A")
    mach.set(["B"])
    mach.add1("M")
    mach.add1("M")
    assert lines == ["[state] +A", "[state] +B -A", "[auto_] +X", "[state] +M", "[state] +M"]


def test_state_ctx_cancelled_before_finals() -> None:
    """State contexts of (de)activated states are cancelled before the final handlers run."""
    mach = am.Machine(NO_RELS)
    mach.add1("A")
    ctx_a = mach.new_state_ctx("A")
    seen: dict[str, bool] = {}

    def b_state(_e: am.Event) -> None:
        seen["a_done"] = ctx_a.done()
        fresh = mach.new_state_ctx("B")
        seen["b_fresh_alive"] = not fresh.done()

    def a_exit(_e: am.Event) -> None:
        seen["a_done_in_exit"] = ctx_a.done()

    mach.bind_handlers(Rec(do={"BState": b_state, "AExit": a_exit}))
    mach.set(["B"])
    assert seen == {"a_done_in_exit": False, "a_done": True, "b_fresh_alive": True}


# --- Final phase ----------------------------------------------------------------------------------


def test_multi_to_single_state_transition() -> None:
    """upstream TestMultiToSingleStateTransition: {A,B}, Set(C): exact full order."""
    mach = am.Machine(NO_RELS)
    mach.set(["A", "B"])
    rec = Rec(*all_handlers("ABC"))
    mach.bind_handlers(rec)
    assert mach.set(["C"]) == am.Executed
    assert rec.calls == [
        "AExit",
        "BExit",
        "CEnter",
        "AC",
        "BC",
        "AnyEnter",
        "AEnd",
        "BEnd",
        "CState",
        "AnyState",
    ]


def test_self_handlers_order() -> None:
    """upstream TestSelfHandlersOrder: {A}, Set(A,B): BEnter, AA, AB, AnyEnter, BState, AnyState."""
    mach = am.Machine(NO_RELS)
    mach.add1("A")
    rec = Rec(*all_handlers("AB"))
    mach.bind_handlers(rec)
    assert mach.set(["A", "B"]) == am.Executed
    assert rec.calls == ["BEnter", "AA", "AB", "AnyEnter", "BState", "AnyState"]


def test_final_return_values_ignored() -> None:
    """Final handlers returning False change nothing."""
    mach = am.Machine(NO_RELS)
    mach.bind_handlers(Rec(do={"AState": lambda _e: False, "AnyState": lambda _e: False}))
    assert mach.add1("A") == am.Executed
    assert mach.string() == "(A:1)"


def test_any_state_skipped_when_cancelled() -> None:
    """AnyState runs only for accepted transitions."""
    mach = am.Machine(NO_RELS)
    rec = Rec("AnyState", do={"AEnter": lambda _e: False})
    mach.bind_handlers(rec)
    assert mach.add1("A") == am.Canceled
    assert rec.calls == ["AEnter"]


def test_on_change_runs_for_cancelled_too() -> None:
    """OnChange(mach, before, after) runs after every non-check transition, cancelled ones too."""
    mach = am.Machine({"A": am.State(), "F": am.State(require=("G",)), "G": am.State()})
    seen: list[tuple[list[int], list[int]]] = []
    mach.on_change(lambda _m, before, after: seen.append((list(before), list(after))))
    mach.add1("A")
    mach.add1("F")
    mach.can_add1("G")
    assert seen == [([0, 0, 0, 0], [1, 0, 0, 0]), ([1, 0, 0, 0], [1, 0, 0, 0])]


# --- Scheduling auto states -----------------------------------------------------------------------


def test_auto_only_when_clock_changed() -> None:
    """No auto mutation after a transition that changed no tick."""
    mach, lines = logged(
        {"A": am.State(), "R": am.State(), "X": am.State(auto=True, require=("R",))}
    )
    mach.add1("A")
    assert lines.count("[auto] X") == 1
    mach.add1("A")
    assert lines.count("[auto] X") == 1
    mach.remove1("A")
    assert lines.count("[auto] X") == 2


def test_auto_prepended_before_queued() -> None:
    """The auto mutation runs before anything already queued."""
    mach = am.Machine({"A": am.State(), "B": am.State(), "X": am.State(auto=True)})
    rec = Rec("BState", "XState", do={"AEnter": lambda _e: mach.add1("B")})
    mach.bind_handlers(rec)
    mach.add1("A")
    assert rec.calls == ["AEnter", "XState", "BState"]


# --- End ------------------------------------------------------------------------------------------


def test_subscriptions_after_accepted_only() -> None:
    """Accepted transitions resolve subscriptions synchronously; cancelled ones process none."""
    mach = am.Machine({"A": am.State(), "F": am.State(require=("G",)), "G": am.State()})
    w_a = mach.when1("A")
    w_q = mach.when_query(lambda _clock: True)
    assert mach.add1("F") == am.Canceled
    assert not w_q.done()
    assert not w_a.done()
    assert mach.add1("A") == am.Executed
    assert w_a.done() and not w_a.cancelled()
    assert w_q.done()


def test_transition_none_when_idle() -> None:
    """transition is set while a transition runs and None once the queue is empty."""
    mach = am.Machine(NO_RELS)
    seen: list[Any] = []
    mach.bind_handlers(Rec(do={"AState": lambda e: seen.append(mach.transition is e.transition)}))
    assert mach.transition is None
    mach.add1("A")
    assert seen == [True]
    assert mach.transition is None


# --- The transition object ------------------------------------------------------------------------


def test_handler_state_info() -> None:
    """upstream TestHandlerStateInfo: {A}, Set(D), inside DEnter: the transition object."""
    mach = am.Machine(NO_RELS)
    mach.add1("A")
    seen: dict[str, Any] = {}

    def d_enter(e: am.Event) -> None:
        tx = e.transition
        seen["tx"] = tx
        seen["active"] = mach.active_states()
        seen["target"] = list(tx.target_states)
        seen["called"] = list(tx.called_states)
        seen["before"] = list(tx.states_before)
        seen["enters"] = list(tx.enters)
        seen["exits"] = list(tx.exits)
        seen["accepted"] = tx.is_accepted
        seen["completed"] = tx.is_completed
        seen["time_before"] = list(tx.time_before)
        seen["time_after"] = list(tx.time_after)
        seen["str"] = str(tx)

    def d_state(e: am.Event) -> None:
        seen["time_after_final"] = list(e.transition.time_after)

    mach.bind_handlers(Rec(do={"DEnter": d_enter, "DState": d_state}))
    assert mach.set(["D"]) == am.Executed
    tx = seen["tx"]
    assert re.fullmatch(r"[0-9a-f]{16}", tx.id)
    assert seen["active"] == ["A"]
    assert seen["target"] == ["D"]
    assert seen["called"] == ["D"]
    assert seen["before"] == ["A"]
    assert (seen["enters"], seen["exits"]) == (["D"], ["A"])
    assert (seen["accepted"], seen["completed"]) == (True, False)
    assert seen["time_before"] == [1, 0, 0, 0, 0]
    assert seen["time_after"] == [2, 0, 0, 1, 0]
    assert seen["time_after_final"] == [2, 0, 0, 1, 0]
    assert seen["str"].startswith(f"tx#{tx.id}\n[set] D")
    assert tx.is_completed is True
    assert tx.is_auto is False
    mut = tx.mutation
    assert mut.type == am.MutationType.SET
    assert list(mut.called) == ["D"]
    assert (mut.is_auto, mut.is_check, mut.queue_tick) == (False, False, 3)


def test_cancelled_time_after_equals_before() -> None:
    """A cancelled transition is not accepted and its TimeAfter equals TimeBefore."""
    mach = am.Machine(NO_RELS)
    mach.add1("A")
    txs: list[Any] = []

    def b_enter(e: am.Event) -> bool:
        txs.append(e.transition)
        return False

    mach.bind_handlers(Rec(do={"BEnter": b_enter}))
    assert mach.add1("B") == am.Canceled
    (tx,) = txs
    assert tx.is_accepted is False
    assert tx.is_completed is True
    assert list(tx.time_after) == list(tx.time_before) == [1, 0, 0, 0, 0]
    assert tx.mutation.type == am.MutationType.ADD


def test_mutation_types_and_auto() -> None:
    """Mutation types for add, remove and auto transitions."""
    mach = am.Machine({"A": am.State(), "X": am.State(auto=True)})
    seen: list[tuple[Any, bool, bool, list[str]]] = []

    def any_enter(e: am.Event) -> None:
        seen.append(
            (e.mutation.type, e.mutation.is_auto, e.transition.is_auto, list(e.mutation.called))
        )

    mach.bind_handlers(Rec(do={"AnyEnter": any_enter}))
    mach.add1("A")
    mach.remove1("A")
    assert seen == [
        (am.MutationType.ADD, False, False, ["A"]),
        (am.MutationType.ADD, True, True, ["X"]),
        (am.MutationType.REMOVE, False, False, ["A"]),
    ]


def test_final_handler_sees_new_state() -> None:
    """Inside FooState with Foo{Add:[Bar]}, Is([Foo, Bar]) is already true."""
    mach = am.Machine({"Foo": am.State(add=("Bar",)), "Bar": am.State()})
    seen: list[bool] = []
    mach.bind_handlers(Rec(do={"FooState": lambda _e: seen.append(mach.is_(["Foo", "Bar"]))}))
    mach.add1("Foo")
    assert seen == [True]
