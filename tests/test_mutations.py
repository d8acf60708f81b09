"""Mutations and the queue: results, queue checks, queue ticks, inspection, dry runs
(docs/semantics.md#mutations, #queue, #dry-runs).

Decided against upstream: a mutation is de-duplicated only against the LAST queued mutation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from support import NO_RELS, Rec

import asyncmachine as am

# the upstream test schema "Rels" (see the docs/semantics.md#reading Inspect example)
RELS: dict[str, am.State] = {
    "A": am.State(auto=True, require=("C",)),
    "B": am.State(multi=True, add=("C",)),
    "C": am.State(after=("D",)),
    "D": am.State(add=("C", "B")),
}


def in_a_state(mach: am.Machine, fn: Callable[[am.Event], object], *names: str) -> Rec:
    """Bind `fn` as AState (plus recorders for `names`), so it runs inside a transition."""
    rec = Rec(*names, do={"AState": fn})
    mach.bind_handlers(rec)
    return rec


# --- Mutation API and result values ---------------------------------------------------------------


def test_result_values() -> None:
    """Executed 0, Canceled 1, Queued 2+; str() and is_queued."""
    assert am.Executed == 0 and am.Canceled == 1 and am.Queued == 2
    assert isinstance(am.Executed, int) and isinstance(am.Executed, am.Result)
    assert str(am.Executed) == "executed"
    assert str(am.Canceled) == "canceled"
    assert str(am.Queued) == "queued"
    assert str(am.Result(7)) == "queued"
    assert am.Result(7) == 7
    assert am.Result(7).is_queued and am.Queued.is_queued
    assert not am.Executed.is_queued and not am.Canceled.is_queued


def test_mutations_return_result() -> None:
    """Every mutation returns an am.Result."""
    mach = am.Machine(NO_RELS)
    res = mach.add1("A")
    assert isinstance(res, am.Result) and res == am.Executed
    assert isinstance(mach.remove1("A"), am.Result)


async def test_result_awaitable() -> None:
    """A Result resolves to itself when awaited."""
    mach = am.Machine(NO_RELS)
    assert await mach.add1("A") == am.Executed
    assert await mach.remove1("A") == am.Executed


def test_add_remove_set() -> None:
    """add keeps active states, remove deactivates only the listed, set replaces the active set."""
    mach = am.Machine(NO_RELS)
    assert mach.add1("A") == am.Executed
    assert mach.add(["B"]) == am.Executed
    assert mach.string() == "(A:1 B:1)"
    assert mach.remove(["A"]) == am.Executed
    assert mach.string() == "(B:1)"
    assert mach.set(["C", "D"]) == am.Executed
    assert mach.string_all() == "(C:1 D:1) [A:2 B:2 Exception:0]"
    assert mach.remove1("C") == am.Executed
    assert mach.set([]) == am.Executed
    assert mach.string_all() == "() [A:2 B:2 C:2 D:2 Exception:0]"


def test_toggle() -> None:
    """upstream TestToggle: all listed active -> Remove, else Add."""
    mach = am.Machine(NO_RELS)
    assert mach.toggle(["A", "B"]) == am.Executed
    assert mach.string() == "(A:1 B:1)"
    assert mach.toggle(["A", "B"]) == am.Executed
    assert mach.string() == "()"
    mach.add1("A")
    assert mach.toggle(["A", "B"]) == am.Executed  # not all active -> add
    assert mach.string() == "(A:3 B:3)"
    assert mach.toggle1("A") == am.Executed
    assert mach.string() == "(B:3)"
    assert mach.toggle1("A") == am.Executed
    assert mach.string() == "(A:5 B:3)"


def test_add_err() -> None:
    """add_err adds Exception and stores the error."""
    mach = am.Machine(NO_RELS)
    err = ValueError("x")
    assert mach.add_err(err) == am.Executed
    assert mach.err() is err
    assert mach.is_err()
    assert mach.string_all() == "(Exception:1) [A:0 B:0 C:0 D:0]"


def test_add_err_state() -> None:
    """upstream TestAddErr: add_err_state("B", err) on NoRels: B and Exception active."""
    mach = am.Machine(NO_RELS)
    err = ValueError("x")
    assert mach.add_err_state("B", err) == am.Executed
    assert mach.err() is err
    assert mach.string_all() == "(B:1 Exception:1) [A:0 C:0 D:0]"


def test_args_shared_between_handlers() -> None:
    """The same args object reaches every handler: Enter writes, State reads."""
    mach = am.Machine(NO_RELS)
    seen: list[Any] = []

    def a_enter(e: am.Event) -> None:
        e.args["from_enter"] = 1
        seen.append(e.args)

    def a_state(e: am.Event) -> None:
        seen.append(e.args)

    mach.bind_handlers(Rec(do={"AEnter": a_enter, "AState": a_state}))
    assert mach.add1("A", {"k": "v"}) == am.Executed
    assert seen[0] is seen[1]
    assert seen[1] == {"k": "v", "from_enter": 1}


def test_none_args_normalised() -> None:
    """No args: handlers get an empty dict, never None."""
    mach = am.Machine(NO_RELS)
    seen: list[Any] = []
    mach.bind_handlers(Rec(do={"AEnter": lambda e: seen.append(e.args)}))
    mach.add1("A")
    assert seen == [{}]
    assert isinstance(seen[0], dict)


def test_unknown_state_raises() -> None:
    """upstream TestPanicWhenStateIsUnknown: every mutation raises StateMissingError; nothing
    changes."""
    assert issubclass(am.StateMissingError, KeyError)
    assert issubclass(am.StateMissingError, am.AsyncMachineError)
    mach = am.Machine(NO_RELS)
    mach.add1("A")
    calls: list[Callable[[], object]] = [
        lambda: mach.add1("E"),
        lambda: mach.add(["A", "E"]),
        lambda: mach.remove1("E"),
        lambda: mach.remove(["E"]),
        lambda: mach.set(["E"]),
        lambda: mach.toggle(["E"]),
        lambda: mach.toggle1("E"),
        lambda: mach.can_add1("E"),
        lambda: mach.can_remove1("E"),
    ]
    for call in calls:
        with pytest.raises(am.StateMissingError, match="E"):
            call()
    assert mach.string_all() == "(A:1) [B:0 C:0 D:0 Exception:0]"
    assert mach.queue_tick() == 2


def test_unknown_remove_in_handler_raises() -> None:
    """the API: unknown names raise from every mutation, also on Remove's early-exit path."""
    mach = am.Machine(NO_RELS)
    caught: list[BaseException] = []

    def a_state(_e: am.Event) -> None:
        try:
            mach.remove1("Nope")
        except am.StateMissingError as err:
            caught.append(err)

    in_a_state(mach, a_state)
    assert mach.add1("A") == am.Executed
    assert len(caught) == 1
    assert not mach.is_err()


def test_ev_mutation_records_source() -> None:
    """upstream TestEvMutations: ev_add1 records the source machine, transition and machine time."""
    mach = am.Machine(NO_RELS)
    mach.add1("C")
    src: list[Any] = []
    tx_a: list[am.Transition] = []

    def a_state(e: am.Event) -> None:
        tx_a.append(e.transition)
        mach.ev_add1(e, "B")

    def b_enter(e: am.Event) -> None:
        src.append(e.mutation.source)

    mach.bind_handlers(Rec(do={"AState": a_state, "BEnter": b_enter}))
    assert mach.add1("A") == am.Executed
    assert mach.is1("B")
    (source,) = src
    assert source.mach_id == mach.id
    assert source.tx_id == tx_a[0].id
    assert source.mach_time == 1  # sum of A's TimeBefore: C:1


# --- Checks before queueing -----------------------------------------------------------------------


def test_disposed_every_mutation_canceled() -> None:
    """upstream TestDisposedNoOp: after dispose every mutation returns Canceled."""
    mach = am.Machine(NO_RELS)
    mach.add1("A")
    mach.dispose()
    assert mach.add1("B") == am.Canceled
    assert mach.add(["B"]) == am.Canceled
    assert mach.remove1("A") == am.Canceled
    assert mach.remove(["A"]) == am.Canceled
    assert mach.set(["B"]) == am.Canceled
    assert mach.toggle(["A"]) == am.Canceled
    assert mach.toggle1("B") == am.Canceled
    assert mach.add_err(ValueError("x")) == am.Canceled
    assert mach.add_err_state("B", ValueError("x")) == am.Canceled
    assert mach.can_add1("B") == am.Canceled
    assert mach.can_remove1("A") == am.Canceled


def test_queue_limit_add() -> None:
    """Queue limit: Add Canceled unless it has Exception (not active); Set, AddErr* never."""
    mach = am.Machine(NO_RELS, queue_limit=2)
    res: dict[str, am.Result] = {}

    def a_state(_e: am.Event) -> None:
        res["B"] = mach.add1("B")
        res["C"] = mach.add1("C")
        res["D"] = mach.add1("D")
        res["Exception"] = mach.add1("Exception")
        res["set"] = mach.set(["D"])
        res["remove"] = mach.remove1("B")
        res["err_state"] = mach.add_err_state("D", ValueError("x"))
        res["err"] = mach.add_err(ValueError("y"))

    in_a_state(mach, a_state)
    assert mach.add1("A") == am.Executed
    assert res == {
        "B": 3,
        "C": 4,
        "D": am.Canceled,
        "Exception": 5,
        "set": am.Canceled,
        "remove": am.Canceled,
        "err_state": am.Canceled,
        "err": am.Canceled,
    }
    assert mach.string_all() == "(A:1 B:1 C:1 Exception:1) [D:0]"
    assert mach.queue_tick() == 5
    assert mach.err() is None


def test_queue_limit_remove_exception() -> None:
    """Queue limit: Remove is let through only for Exception while the machine is in Exception."""
    mach = am.Machine(NO_RELS, queue_limit=1)
    res: dict[str, am.Result] = {}

    def a_state(_e: am.Event) -> None:
        res["B"] = mach.add1("B")
        res["rm_C"] = mach.remove1("C")
        res["rm_Exception"] = mach.remove1("Exception")
        res["add_Exception"] = mach.add1("Exception")

    in_a_state(mach, a_state)
    mach.add1("C")
    mach.add1("Exception")
    assert mach.add1("A") == am.Executed
    assert res == {"B": 5, "rm_C": am.Canceled, "rm_Exception": 6, "add_Exception": am.Canceled}
    assert mach.string_all() == "(A:1 B:1 C:1) [D:0 Exception:2]"


def test_queue_limit_counts_prepended() -> None:
    """The queue length includes prepended items such as checks."""
    mach = am.Machine(NO_RELS, queue_limit=1)
    res: list[am.Result] = []

    def a_state(_e: am.Event) -> None:
        res.append(mach.can_add1("B"))
        res.append(mach.add1("C"))

    in_a_state(mach, a_state)
    assert mach.add1("A") == am.Executed
    assert res == [am.Queued, am.Canceled]
    assert mach.string() == "(A:1)"


def test_add_err_none_or_cancelled_error() -> None:
    """add_err(None) and add_err(CancelledError()) are Canceled; nothing is stored."""
    mach = am.Machine(NO_RELS)
    assert mach.add_err(None) == am.Canceled
    assert mach.add_err(asyncio.CancelledError()) == am.Canceled
    assert mach.add_err_state("B", None) == am.Canceled
    assert mach.err() is None
    assert mach.string_all() == "() [A:0 B:0 C:0 D:0 Exception:0]"


def test_remove_early_exit_in_handler() -> None:
    """In a handler, empty queue, nothing listed active: Remove is Executed, queues nothing."""
    mach = am.Machine(NO_RELS)
    seen: list[tuple[am.Result, int, int]] = []

    def a_state(_e: am.Event) -> None:
        res = mach.remove(["B", "C"])
        seen.append((res, mach.queue_len(), mach.queue_tick()))

    in_a_state(mach, a_state)
    assert mach.add1("A") == am.Executed
    assert seen == [(am.Executed, 0, 2)]
    assert mach.queue_tick() == 2


def test_remove_no_early_exit_when_queue_busy() -> None:
    """The early exit needs an empty queue: with something queued, Remove queues too."""
    mach = am.Machine(NO_RELS)
    res: list[am.Result] = []

    def a_state(_e: am.Event) -> None:
        res.append(mach.add1("C"))
        res.append(mach.remove1("B"))

    in_a_state(mach, a_state)
    mach.add1("A")
    assert res == [3, 4]
    assert mach.queue_tick() == 4


def test_remove_inactive_outside_transition_runs() -> None:
    """Outside a transition, removing an inactive state runs a no-op transition."""
    mach = am.Machine(NO_RELS)
    rec = Rec("AnyEnter", "AnyState", "BExit", "BEnd")
    mach.bind_handlers(rec)
    assert mach.remove1("B") == am.Executed
    assert mach.queue_tick() == 2
    assert rec.calls == ["AnyEnter", "AnyState"]
    assert mach.tick("B") == 0


def test_nested_mutation_dedup() -> None:
    """upstream TestNestedMutation: a repeated plain Add is dropped, Executed, and uses no queue
    tick."""
    mach = am.Machine(NO_RELS)
    res: list[am.Result] = []

    def a_state(_e: am.Event) -> None:
        res.append(mach.add1("B"))
        res.append(mach.add1("B"))
        res.append(mach.queue_len())  # type: ignore[arg-type]
        res.append(mach.add1("C"))

    in_a_state(mach, a_state)
    assert mach.add1("A") == am.Executed
    assert res == [3, am.Executed, 1, 4]
    assert mach.queue_tick() == 4
    assert mach.string() == "(A:1 B:1 C:1)"


def test_dedup_ignores_order() -> None:
    """The called set is compared as a set."""
    mach = am.Machine(NO_RELS)
    res: list[am.Result] = []

    def a_state(_e: am.Event) -> None:
        res.append(mach.add(["B", "C"]))
        res.append(mach.add(["C", "B"]))

    in_a_state(mach, a_state)
    mach.add1("A")
    assert res == [3, am.Executed]
    assert mach.queue_tick() == 3


def test_dedup_only_against_last_queued() -> None:
    """Decided: [Add B, Remove B] + Add B is queued (not dropped), so B ends active."""
    mach = am.Machine(NO_RELS)
    res: list[am.Result] = []

    def a_state(_e: am.Event) -> None:
        res.append(mach.add1("B"))
        res.append(mach.remove1("B"))
        res.append(mach.add1("B"))

    in_a_state(mach, a_state)
    assert mach.add1("A") == am.Executed
    assert res == [3, 4, 5]
    assert mach.string_all() == "(A:1 B:3) [C:0 D:0 Exception:0]"


def test_dedup_not_against_earlier_twin() -> None:
    """Decided: a twin that is not the last queued mutation does not de-duplicate."""
    mach = am.Machine(NO_RELS)
    res: list[am.Result] = []

    def a_state(_e: am.Event) -> None:
        res.append(mach.add1("B"))
        res.append(mach.add1("C"))
        res.append(mach.add1("B"))
        res.append(mach.queue_len())  # type: ignore[arg-type]

    in_a_state(mach, a_state)
    mach.add1("A")
    assert res == [3, 4, 5, 3]
    assert mach.string() == "(A:1 B:1 C:1)"


def test_dedup_disabled_by_args() -> None:
    """Any args disable de-duplication."""
    mach = am.Machine(NO_RELS)
    res: list[am.Result] = []

    def a_state(_e: am.Event) -> None:
        res.append(mach.add1("B", {"x": 1}))
        res.append(mach.add1("B", {"x": 1}))
        res.append(mach.add1("B"))
        res.append(mach.add1("B", {"y": 1}))

    in_a_state(mach, a_state)
    mach.add1("A")
    assert res == [3, 4, 5, 6]


def test_dedup_disabled_by_multi() -> None:
    """Multi states are never de-duplicated: Add1(M) x3 -> ticks t, t+1, t+2, M:5."""
    mach = am.Machine({"A": am.State(), "M": am.State(multi=True)})
    res: list[am.Result] = []

    def a_state(_e: am.Event) -> None:
        res.extend(mach.add1("M") for _ in range(3))

    in_a_state(mach, a_state)
    mach.add1("A")
    assert res == [3, 4, 5]
    assert mach.tick("M") == 5


def test_dedup_same_type_only() -> None:
    """A different mutation type is not a twin."""
    mach = am.Machine(NO_RELS)
    res: list[am.Result] = []

    def a_state(_e: am.Event) -> None:
        res.append(mach.add1("B"))
        res.append(mach.set(["B"]))

    in_a_state(mach, a_state)
    mach.add1("A")
    assert res == [3, 4]
    assert mach.string_all() == "(B:1) [A:2 C:0 D:0 Exception:0]"


def test_dedup_ignores_checks() -> None:
    """A queued check is not a twin of a real mutation."""
    mach = am.Machine(NO_RELS)
    res: list[am.Result] = []

    def a_state(_e: am.Event) -> None:
        res.append(mach.can_add1("B"))
        res.append(mach.add1("B"))

    in_a_state(mach, a_state)
    mach.add1("A")
    assert res == [am.Queued, 3]
    assert mach.string() == "(A:1 B:1)"


# --- Queueing and processing ----------------------------------------------------------------------


def test_queue_tick_advances() -> None:
    """queueTick starts at 1; after an idle mutation it equals that mutation's tick."""
    mach = am.Machine({"A": am.State(), "F": am.State(require=("G",)), "G": am.State()})
    assert mach.queue_tick() == 1
    mach.add1("A")
    assert mach.queue_tick() == 2
    assert mach.add1("F") == am.Canceled
    assert mach.queue_tick() == 3


def test_queue_example() -> None:
    """upstream TestQueue: init Set(A); Set(B, args) runs at tick 3; Add(C) in BEnter returns 4."""
    mach = am.Machine(NO_RELS)
    mach.set(["A"])
    assert mach.queue_tick() == 2
    seen: dict[str, Any] = {}

    def b_enter(e: am.Event) -> None:
        seen["qt"] = mach.queue_tick()
        seen["mut_qt"] = e.mutation.queue_tick
        seen["add_c"] = mach.add1("C")

    rec = Rec("AnyEnter", "AnyState", do={"BEnter": b_enter})
    mach.bind_handlers(rec)
    assert mach.set(["B"], {"k": 1}) == am.Executed
    assert seen == {"qt": 3, "mut_qt": 3, "add_c": 4}
    assert mach.string_all() == "(B:1 C:1) [A:2 D:0 Exception:0]"
    assert rec.calls.count("AnyEnter") == 2
    assert rec.calls.count("AnyState") == 2
    assert mach.queue_tick() == 4


def test_nested_add_runs_after_auto() -> None:
    """A{}, B{}, X{Auto, Require:[A]}; AState adds B (3): order AState, XState, BState."""
    mach = am.Machine({"A": am.State(), "B": am.State(), "X": am.State(auto=True, require=("A",))})
    res: list[am.Result] = []
    rec = in_a_state(mach, lambda _e: res.append(mach.add1("B")), "XState", "BState")
    assert mach.add1("A") == am.Executed
    assert res == [3]
    assert rec.calls == ["AState", "XState", "BState"]
    assert mach.string_all() == "(A:1 B:1 X:1) [Exception:0]"
    assert mach.queue_tick() == 3


def test_idle_call_returns_own_result() -> None:
    """The first processed mutation's result is returned, not a later queued one's."""
    mach = am.Machine({"A": am.State(), "F": am.State(require=("G",)), "G": am.State()})
    res: list[am.Result] = []
    in_a_state(mach, lambda _e: res.append(mach.add1("F")))
    assert mach.add1("A") == am.Executed
    assert res == [3]
    assert mach.string() == "(A:1)"


def test_transitions_never_nest() -> None:
    """A mutation from a handler runs after the current transition finished."""
    mach = am.Machine(NO_RELS)

    def a_enter(_e: am.Event) -> None:
        mach.add1("B")

    rec = Rec("AState", "AnyState", "BEnter", "BState", do={"AEnter": a_enter})
    mach.bind_handlers(rec)
    mach.add1("A")
    assert rec.calls == ["AEnter", "AState", "AnyState", "BEnter", "BState", "AnyState"]


# --- Queue inspection -----------------------------------------------------------------------------


def test_queue_checkable() -> None:
    """upstream TestQueueCheckable: inside AState, Add B, C, D: length 3, C at index 1,
    WillBe1(C)."""
    mach = am.Machine(NO_RELS)
    seen: dict[str, Any] = {}

    def a_state(_e: am.Event) -> None:
        mach.add1("B")
        mach.add1("C")
        mach.add1("D")
        seen["len"] = mach.queue_len()
        seen["will_be_c"] = mach.will_be1("C")
        seen["will_be_a"] = mach.will_be1("A")
        seen["will_be_removed_a"] = mach.will_be_removed1("A")
        seen["queue"] = mach.queue()

    in_a_state(mach, a_state)
    mach.add1("A")
    assert seen["len"] == 3
    assert seen["will_be_c"] is True
    assert seen["will_be_a"] is False
    assert seen["will_be_removed_a"] is False
    assert [list(m.called) for m in seen["queue"]] == [["B"], ["C"], ["D"]]
    assert [m.queue_tick for m in seen["queue"]] == [3, 4, 5]


def test_is_queued() -> None:
    """upstream TestQueueCheckable: IsQueued(add, ) -> found at index 1 (Go name, snake_cased)."""
    mach = am.Machine(NO_RELS)
    seen: list[Any] = []

    def a_state(_e: am.Event) -> None:
        mach.add1("B")
        mach.add1("C")
        mach.add1("D")
        seen.append(mach.is_queued(am.MutationType.ADD, ["C"]))
        seen.append(mach.is_queued(am.MutationType.REMOVE, ["C"]))

    in_a_state(mach, a_state)
    assert mach.add1("A") == am.Executed
    assert len(seen) == 2
    found, idx, qtick = seen[0]
    assert (found, idx, qtick) == (True, 1, 4)
    assert seen[1][0] is False


def test_queue_is_a_copy() -> None:
    """queue() returns a copy: changing it changes nothing."""
    mach = am.Machine(NO_RELS)
    seen: list[int] = []

    def a_state(_e: am.Event) -> None:
        mach.add1("B")
        q = mach.queue()
        q.clear()
        seen.append(mach.queue_len())

    in_a_state(mach, a_state)
    mach.add1("A")
    assert seen == [1]
    assert mach.is1("B")


def test_will_be_removed_and_implied() -> None:
    """will_be_removed sees queued Removes; implied (Add relation) states do not count."""
    mach = am.Machine({"A": am.State(), "X": am.State(add=("Y",)), "Y": am.State()})
    seen: dict[str, bool] = {}

    def a_state(_e: am.Event) -> None:
        mach.add1("X")
        mach.remove1("A")
        seen["x"] = mach.will_be1("X")
        seen["y"] = mach.will_be1("Y")
        seen["xy"] = mach.will_be(["X", "Y"])
        seen["rm_a"] = mach.will_be_removed1("A")
        seen["rm_list"] = mach.will_be_removed(["A"])
        seen["rm_x"] = mach.will_be_removed1("X")

    in_a_state(mach, a_state)
    mach.add1("A")
    assert seen == {
        "x": True,
        "y": False,
        "xy": False,
        "rm_a": True,
        "rm_list": True,
        "rm_x": False,
    }
    assert mach.string() == "(X:1 Y:1)"


def test_queue_empty_when_idle() -> None:
    """An idle machine has an empty queue."""
    mach = am.Machine(NO_RELS)
    mach.add1("A")
    assert mach.queue_len() == 0
    assert list(mach.queue()) == []
    assert mach.will_be1("A") is False


# --- Result of a processed mutation ---------------------------------------------------------------


def test_accepted_without_change_is_executed() -> None:
    """An accepted Add or Set gives Executed even if nothing changed."""
    mach = am.Machine(NO_RELS)
    mach.add1("A")
    assert mach.add1("A") == am.Executed
    assert mach.set(["A"]) == am.Executed
    assert mach.tick("A") == 1


def test_remove_result_from_handler_cancel() -> None:
    """A Remove cancelled by a handler is Canceled; the state stays active."""
    mach = am.Machine(NO_RELS)
    mach.add1("A")
    mach.bind_handlers(Rec(do={"AExit": lambda _e: False}))
    assert mach.remove1("A") == am.Canceled
    assert mach.string() == "(A:1)"


def test_result_before_auto() -> None:
    """X{Auto} active: Remove1(X) -> Executed, yet X is active again (X:3)."""
    mach = am.Machine({"A": am.State(), "X": am.State(auto=True)})
    mach.add1("A")
    assert mach.tick("X") == 1
    assert mach.remove1("X") == am.Executed
    assert mach.string_all() == "(A:1 X:3) [Exception:0]"


# --- can_add / can_remove -------------------------------------------------------------------------


def test_can_add_rels() -> None:
    """upstream TestCanAdd: Rels: CanAdd([A]) Canceled (A requires C), CanAdd() Executed; no
    change."""
    mach = am.Machine(RELS)
    assert mach.can_add(["A"]) == am.Canceled
    assert mach.can_add(["C"]) == am.Executed
    assert mach.string_all() == "() [A:0 B:0 C:0 D:0 Exception:0]"
    assert mach.queue_tick() == 1


def test_can_add_runs_negotiation_only() -> None:
    """A dry run calls negotiation handlers, no final ones, and changes nothing."""
    mach = am.Machine(NO_RELS)
    mach.add1("A")
    rec = Rec("AExit", "BEnter", "AB", "AA", "AnyEnter", "BState", "AEnd", "AnyState")
    mach.bind_handlers(rec)
    assert mach.can_add1("B") == am.Executed
    assert rec.calls == ["BEnter", "AA", "AB", "AnyEnter"]
    rec.calls.clear()
    assert mach.can_remove1("A") == am.Executed
    assert rec.calls == ["AExit", "AnyEnter"]
    assert mach.string_all() == "(A:1) [B:0 C:0 D:0 Exception:0]"
    assert mach.queue_tick() == 2


def test_can_add_cancelled_by_handler() -> None:
    """A negotiation handler returning False makes the dry run Canceled."""
    mach = am.Machine(NO_RELS)
    mach.add1("A")
    mach.bind_handlers(Rec(do={"BEnter": lambda _e: False, "AExit": lambda _e: False}))
    assert mach.can_add1("B") == am.Canceled
    assert mach.can_add(["C"]) == am.Executed
    assert mach.can_remove1("A") == am.Canceled
    assert mach.can_remove(["A"]) == am.Canceled
    assert mach.string() == "(A:1)"


def test_can_add_no_auto_no_subscriptions() -> None:
    """No auto mutation follows a check and no subscription is processed."""
    mach = am.Machine({"A": am.State(), "X": am.State(auto=True)})
    w = mach.when1("A")
    assert mach.can_add1("A") == am.Executed
    assert not w.done()
    assert mach.string_all() == "() [A:0 Exception:0 X:0]"


def test_can_add_in_handler_is_queued() -> None:
    """Called from a handler a check returns Queued (2) and runs next, before queued mutations."""
    mach = am.Machine(NO_RELS)
    res: list[am.Result] = []

    def a_state(_e: am.Event) -> None:
        res.append(mach.add1("C"))
        res.append(mach.can_add1("B"))

    rec = in_a_state(mach, a_state, "BEnter", "BState", "CEnter")
    assert mach.add1("A") == am.Executed
    assert res == [3, am.Queued]
    assert rec.calls == ["AState", "BEnter", "CEnter"]
    assert mach.string() == "(A:1 C:1)"
    assert mach.queue_tick() == 3


def test_can_remove_relations() -> None:
    """can_remove resolves relations like remove: a Remove is accepted at the relations stage."""
    mach = am.Machine({"A": am.State(require=("B",)), "B": am.State()})
    mach.add(["A", "B"])
    assert mach.can_remove1("B") == am.Executed
    assert mach.string() == "(A:1 B:1)"
