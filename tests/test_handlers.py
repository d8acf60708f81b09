"""Handlers: binding, naming, events, re-entrancy, errors and timeouts
(docs/semantics.md#handlers, #errors).

Handlers run synchronously; an `async def` negotiation handler is refused at bind time; only
`is False` cancels; `handler_timeout` (seconds, default None) is measured after the fact, cancels
or rolls back and adds Exception with HandlerTimeoutError, with no backoff.
"""

from __future__ import annotations

import asyncio
import re
import time
import warnings
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from support import NO_RELS, Rec, logged

import asyncmachine as am


def raiser(msg: str) -> Callable[[am.Event], object]:
    """A handler body that raises ValueError(msg)."""

    def fn(_e: am.Event) -> object:
        raise ValueError(msg)

    return fn


def spin(seconds: float) -> None:
    """Run (no sleep) until both clocks moved by `seconds`: a handler that ran too long."""
    t0, p0 = time.monotonic(), time.perf_counter()
    while time.monotonic() - t0 < seconds or time.perf_counter() - p0 < seconds:
        pass


# --- Naming and binding ---------------------------------------------------------------------------


def test_binding_ids() -> None:
    """A binding id is the given id without chars outside [a-zA-Z0-9-_.], or anon-XXXX."""
    mach = am.Machine(NO_RELS)
    assert mach.bind_handlers(Rec("AState"), id="my id!/x-1_2.3") == "myidx-1_2.3"
    anon = mach.bind_handlers(Rec("BState"))
    assert re.fullmatch(r"anon-[0-9a-f]{4}", anon)
    assert mach.handlers() == ["myidx-1_2.3", anon]


def test_unbind_handlers() -> None:
    """upstream TestUnbindHandlers: a detached binding is no longer called; unknown id: KeyError."""
    mach = am.Machine(NO_RELS)
    r1, r2 = Rec("AState"), Rec("AState")
    id1 = mach.bind_handlers(r1, id="one")
    mach.bind_handlers(r2, id="two")
    mach.add1("A")
    assert (r1.calls, r2.calls) == (["AState"], ["AState"])
    mach.detach_handlers(id1)
    assert mach.handlers() == ["two"]
    mach.remove1("A")
    mach.add1("A")
    assert (r1.calls, r2.calls) == (["AState"], ["AState", "AState"])
    with pytest.raises(KeyError):
        mach.detach_handlers("one")
    with pytest.raises(KeyError):
        mach.detach_handlers("nope")


def test_methods_and_callable_attributes() -> None:
    """Both methods and callable attributes are bound."""
    calls: list[str] = []

    class Handlers:
        def AState(self, _e: am.Event) -> None:
            calls.append("method")

        def __init__(self) -> None:
            self.BState = lambda _e: calls.append("attr")

    mach = am.Machine(NO_RELS)
    mach.bind_handlers(Handlers())
    mach.add(["A", "B"])
    assert calls == ["method", "attr"]


def test_self_handlers_cancellable() -> None:
    """upstream TestSelfHandlersCancellable: both bindings' AA are called; the second returns
    False."""
    mach = am.Machine(NO_RELS)
    mach.add1("A")
    r1 = Rec("AA")
    r2 = Rec(do={"AA": lambda _e: False})
    mach.bind_handlers(r1)
    mach.bind_handlers(r2)
    assert mach.add1("B") == am.Canceled
    assert (r1.calls, r2.calls) == (["AA"], ["AA"])
    assert mach.string() == "(A:1)"


def test_first_false_stops_later_bindings() -> None:
    """For negotiation, the first False stops the chain: later bindings are not called."""
    mach = am.Machine(NO_RELS)
    r1, r2, r3 = Rec("AEnter"), Rec(do={"AEnter": lambda _e: False}), Rec("AEnter")
    for r in (r1, r2, r3):
        mach.bind_handlers(r)
    assert mach.add1("A") == am.Canceled
    assert (r1.calls, r2.calls, r3.calls) == (["AEnter"], ["AEnter"], [])


@pytest.mark.parametrize("ret", [None, True, 0, "", [], 1])
def test_only_false_cancels(ret: object) -> None:
    """Only a return value `is False` cancels; None, True, 0, "" and others accept."""
    mach = am.Machine(NO_RELS)
    mach.bind_handlers(Rec(do={"AEnter": lambda _e: ret}))
    assert mach.add1("A") == am.Executed
    assert mach.string() == "(A:1)"


def test_state_prefix() -> None:
    """state_prefix: only events starting with the prefix, stripped before the method lookup."""
    mach = am.Machine({"FooReady": am.State(), "Other": am.State()})
    rec = Rec("ReadyEnter", "ReadyState", "ReadyEnd")
    mach.bind_handlers(rec, state_prefix="Foo")
    mach.add1("Other")
    assert rec.calls == []
    mach.add1("FooReady")
    mach.remove1("FooReady")
    assert rec.calls == ["ReadyEnter", "ReadyState", "ReadyEnd"]


def test_first_bind_in_exception_re_adds_err() -> None:
    """First bind while in Exception: AddErr(Err()) runs ExceptionState, tick 1 -> 3."""
    mach = am.Machine({"A": am.State(require=("B",), remove=("B",)), "B": am.State()})
    assert mach.tick("Exception") == 1
    err = mach.err()
    seen: list[Any] = []
    mach.bind_handlers(
        Rec(do={"ExceptionState": lambda e: seen.append(e.args[am.ERR_ARGS_KEY].err)})
    )
    assert seen == [err]
    assert mach.tick("Exception") == 3
    # only the first ever binding does this
    mach.bind_handlers(Rec("AState"))
    assert mach.tick("Exception") == 3


def test_first_bind_in_exception_without_err_is_noop() -> None:
    """Exception added by a plain add1: Err() is None, so AddErr(None) is a no-op."""
    mach = am.Machine(NO_RELS)
    mach.add1("Exception")
    rec = Rec("ExceptionState")
    mach.bind_handlers(rec)
    assert rec.calls == []
    assert mach.tick("Exception") == 1


@pytest.mark.parametrize("name", ["FooState", "FooEnter", "FooExit", "FooEnd", "AnyFoo", "FooBar"])
def test_name_validation_unknown_state(name: str) -> None:
    """A handler name referring to a state not in the schema is a HandlerError; nothing is bound."""
    mach = am.Machine({"Bar": am.State(), "A": am.State()})
    if name == "FooBar":
        # a concatenation of two known names is valid; with Foo unknown it matches no rule
        mach.bind_handlers(Rec(name))
        return
    with pytest.raises(am.HandlerError, match="Foo"):
        mach.bind_handlers(Rec(name))
    assert mach.handlers() == []
    assert issubclass(am.HandlerError, am.AsyncMachineError)


def test_name_validation_valid_and_ignored() -> None:
    """AnyEnter/AnyState, known-state names and pair names are valid; others ignored."""
    mach = am.Machine({"A": am.State(), "Bar": am.State()})
    names = [
        "AnyEnter",
        "AnyState",
        "AEnter",
        "AExit",
        "AState",
        "AEnd",
        "AA",
        "ABar",
        "BarA",
        "Unrelated",
        "Enter",
        "helper",
    ]
    bid = mach.bind_handlers(Rec(*names))
    assert mach.handlers() == [bid]


def test_private_and_non_callable_ignored() -> None:
    """Non-callable attributes and private helpers are not handlers."""

    class Handlers:
        FooState = "not callable"

        def _private(self) -> None:
            pass

        def AState(self, _e: am.Event) -> None:
            pass

    mach = am.Machine(NO_RELS)
    mach.bind_handlers(Handlers())
    assert mach.add1("A") == am.Executed


@pytest.mark.parametrize("name", ["AEnter", "AExit", "AA", "AB", "AnyEnter"])
def test_async_negotiation_handler_rejected(name: str) -> None:
    """An async def negotiation handler is refused at bind time with HandlerError."""

    async def handler(_e: am.Event) -> None:
        return None

    obj = type("H", (), {})()
    setattr(obj, name, handler)
    mach = am.Machine(NO_RELS)
    with pytest.raises(am.HandlerError):
        mach.bind_handlers(obj)
    assert mach.handlers() == []


async def test_async_final_handler_runs_as_task() -> None:
    """An async def final handler is accepted and started as a task on the running loop."""
    mach = am.Machine(NO_RELS)
    done = asyncio.Event()
    seen: list[bool] = []

    class Handlers:
        async def AState(self, _e: am.Event) -> None:
            seen.append(mach.is1("A"))
            done.set()

    mach.bind_handlers(Handlers())
    assert mach.add1("A") == am.Executed
    await asyncio.wait_for(done.wait(), 5)
    assert seen == [True]


async def test_async_final_handler_cancelled_with_state() -> None:
    """The task of an async AState is bound to A's state context: removing A cancels it."""
    mach = am.Machine(NO_RELS)
    started = asyncio.Event()
    ended = asyncio.Event()
    outcome: list[str] = []

    class Handlers:
        async def AState(self, _e: am.Event) -> None:
            started.set()
            try:
                await asyncio.get_running_loop().create_future()
            except asyncio.CancelledError:
                outcome.append("cancelled")
                raise
            finally:
                ended.set()

    mach.bind_handlers(Handlers())
    mach.add1("A")
    await asyncio.wait_for(started.wait(), 5)
    mach.remove1("A")
    await asyncio.wait_for(ended.wait(), 5)
    assert outcome == ["cancelled"]
    assert not mach.is_err()


# --- The Event object -----------------------------------------------------------------------------


def test_event_fields() -> None:
    """Event: name, machine, args (shared, never None), transition, mutation."""
    mach = am.Machine(NO_RELS)
    seen: list[am.Event] = []
    txs: list[Any] = []

    def grab(e: am.Event) -> None:
        seen.append(e)
        txs.append(mach.transition)

    mach.bind_handlers(Rec(do={"AEnter": grab, "AState": grab}))
    mach.add1("A", {"x": 1})
    enter, state = seen
    assert (enter.name, state.name) == ("AEnter", "AState")
    assert enter.machine is mach
    assert enter.args == {"x": 1} and enter.args is state.args
    assert enter.transition is txs[0] and state.transition is txs[1]
    assert enter.mutation is enter.transition.mutation
    assert list(enter.mutation.called) == ["A"]


def test_event_is_valid() -> None:
    """is_valid: true during the transition, false once it completed or was cancelled."""
    mach = am.Machine(NO_RELS)
    events: list[am.Event] = []
    valid: list[bool] = []

    def a_enter(e: am.Event) -> None:
        events.append(e)
        valid.append(e.is_valid())

    mach.bind_handlers(Rec(do={"AEnter": a_enter, "BEnter": lambda _e: False, "CEnter": a_enter}))
    mach.add1("A")
    assert valid == [True]
    assert events[0].is_valid() is False
    # a cancelled transition's events are not valid either
    assert mach.add(["C", "B"]) == am.Canceled
    assert valid == [True, True]
    assert events[1].is_valid() is False


# --- Re-entrancy ----------------------------------------------------------------------------------


def test_reads_old_state_in_negotiation_new_in_final() -> None:
    """Reads in negotiation show the old state; in the final phase the new one."""
    mach = am.Machine(NO_RELS)
    seen: dict[str, bool] = {}

    def rd(key: str, state: str) -> Callable[[am.Event], None]:
        return lambda _e: seen.__setitem__(key, mach.is1(state))

    mach.bind_handlers(
        Rec(
            do={
                "AEnter": rd("AEnter", "A"),
                "AState": rd("AState", "A"),
                "AExit": rd("AExit", "A"),
                "AEnd": rd("AEnd", "A"),
            }
        )
    )
    mach.add1("A")
    mach.remove1("A")
    assert seen == {"AEnter": False, "AState": True, "AExit": True, "AEnd": False}


def test_mutations_in_handlers_are_queued() -> None:
    """Mutations in handlers return their queue tick (or Executed when de-duplicated)."""
    mach = am.Machine(NO_RELS)
    res: list[am.Result] = []

    def a_enter(_e: am.Event) -> None:
        res.append(mach.add1("B"))
        res.append(mach.add1("B"))
        res.append(am.Result(int(mach.is1("B"))))

    mach.bind_handlers(Rec(do={"AEnter": a_enter}))
    assert mach.add1("A") == am.Executed
    assert res == [3, am.Executed, 0]
    assert mach.string() == "(A:1 B:1)"


# --- Exceptions in handlers -----------------------------------------------------------------------


def test_partial_negotiation_panic() -> None:
    """upstream TestPartialNegotiationPanic: {A}, BEnter raises: Canceled, (A:1 Exception:1) [B:0
    ...]."""
    mach, lines = logged(NO_RELS)
    mach.add1("A")
    err_args: list[Any] = []
    boom = ValueError("boom")

    def b_enter(_e: am.Event) -> None:
        raise boom

    mach.bind_handlers(
        Rec(do={"BEnter": b_enter, "ExceptionState": lambda e: err_args.append(e.args)})
    )
    assert mach.add1("B") == am.Canceled
    assert "[cancel] (B A) by recover" in lines
    assert mach.err() is boom
    assert mach.string_all() == "(A:1 Exception:1) [B:0 C:0 D:0]"
    (args,) = err_args
    ea = args[am.ERR_ARGS_KEY]
    assert isinstance(ea, am.ErrArgs)
    assert ea.err is boom
    assert isinstance(ea.trace, str) and "boom" in ea.trace
    assert ea.panic is not None


def test_partial_final_panic() -> None:
    """upstream TestPartialFinalPanic: Add(A,B,C), BState raises: A:1, B:2, C:2, Exception:1,
    Canceled."""
    mach, lines = logged(NO_RELS, am.LogLevel.CHANGES)
    calls: list[str] = []

    class Handlers(am.ExceptionHandler):
        def AState(self, _e: am.Event) -> None:
            calls.append("AState")

        def BState(self, _e: am.Event) -> None:
            calls.append("BState")
            raise ValueError("BState panic")

        def CState(self, _e: am.Event) -> None:
            calls.append("CState")

        def AnyState(self, e: am.Event) -> None:
            calls.append("AnyState:" + ",".join(e.transition.called_states))

    mach.bind_handlers(Handlers())
    assert mach.add(["A", "B", "C"]) == am.Canceled
    assert calls == ["AState", "BState", "AnyState:Exception"]
    assert mach.string_all() == "(A:1 Exception:1) [B:2 C:2 D:0]"
    assert isinstance(mach.err(), ValueError)
    assert any(ln.startswith("[error:add] A B C (BState panic)") for ln in lines)


def test_final_panic_subscriptions_follow_kept_states() -> None:
    """Upstream skips subscriptions here; the port resolves them for the states kept (A)."""
    mach = am.Machine(NO_RELS)
    w_a = mach.when1("A")
    w_b = mach.when1("B")
    mach.bind_handlers(Rec(do={"BState": raiser("x")}))
    assert mach.add(["A", "B", "C"]) == am.Canceled
    assert mach.is1("A")
    assert w_a.done() and not w_a.cancelled()
    assert not w_b.done()


def test_end_handler_panic_reverts_nothing() -> None:
    """upstream quirk: {A}, Set(B), AEnd raises: BState skipped, {B, Exception}, A:2, B:1,
    Canceled."""
    mach = am.Machine(NO_RELS)
    mach.add1("A")
    rec = Rec("BState", do={"AEnd": raiser("end")})
    mach.bind_handlers(rec)
    assert mach.set(["B"]) == am.Canceled
    assert rec.calls == ["AEnd"]
    assert mach.string_all() == "(B:1 Exception:1) [A:2 C:0 D:0]"


def test_no_nesting_of_exception() -> None:
    """upstream quirk: ExceptionState raising after AddErr: no new Exception, Err() kept,
    Exception:2."""
    mach = am.Machine(NO_RELS)
    first = ValueError("first")
    mach.bind_handlers(Rec(do={"ExceptionState": raiser("second")}))
    assert mach.add_err(first) == am.Canceled
    assert mach.err() is first
    assert mach.string_all() == "() [A:0 B:0 C:0 D:0 Exception:2]"


def test_panic_to_exception_off_reraises_negotiation() -> None:
    """panic_to_exception=False: the error propagates to the mutation's caller."""
    mach = am.Machine(NO_RELS, panic_to_exception=False)
    mach.bind_handlers(Rec(do={"AEnter": raiser("neg")}))
    with pytest.raises(ValueError, match="neg"):
        mach.add1("A")
    assert mach.tick("A") == 0
    assert not mach.is_err()
    assert mach.transition is None
    assert mach.add1("B") == am.Executed


def test_panic_to_exception_off_reraises_final() -> None:
    """panic_to_exception=False: a final handler's error propagates too; machine stays usable."""
    mach = am.Machine(NO_RELS, panic_to_exception=False)
    mach.bind_handlers(Rec(do={"AState": raiser("fin")}))
    with pytest.raises(ValueError, match="fin"):
        mach.add1("A")
    assert mach.tick("Exception") == 0
    assert mach.transition is None
    assert mach.add1("B") == am.Executed
    assert mach.is1("B")


def test_base_exception_propagates() -> None:
    """A BaseException (not Exception) is not turned into the Exception state."""

    class Stop(BaseException):
        pass

    def stop(_e: am.Event) -> None:
        raise Stop

    mach = am.Machine(NO_RELS)
    mach.bind_handlers(Rec(do={"AEnter": stop}))
    with pytest.raises(Stop):
        mach.add1("A")
    assert not mach.is_err()


def test_final_panic_other_bindings_still_called() -> None:
    """After a final-handler panic, the remaining bindings for the same event are still called."""
    mach = am.Machine(NO_RELS)
    r1 = Rec(do={"AState": raiser("x")})
    r2 = Rec("AState")
    mach.bind_handlers(r1)
    mach.bind_handlers(r2)
    assert mach.add1("A") == am.Canceled
    assert (r1.calls, r2.calls) == (["AState"], ["AState"])
    assert mach.string_all() == "(Exception:1) [A:2 B:0 C:0 D:0]"


def test_negotiation_panic_stops_chain() -> None:
    """A negotiation panic counts as False: later bindings are not called."""
    mach = am.Machine(NO_RELS)
    r1 = Rec(do={"AEnter": raiser("x")})
    r2 = Rec("AEnter")
    mach.bind_handlers(r1)
    mach.bind_handlers(r2)
    assert mach.add1("A") == am.Canceled
    assert (r1.calls, r2.calls) == (["AEnter"], [])
    assert mach.string_all() == "(Exception:1) [A:0 B:0 C:0 D:0]"


def test_exception_prepended_before_queued() -> None:
    """The Exception mutation is prepended: it runs before already queued mutations."""
    mach = am.Machine(NO_RELS)
    calls: list[str] = []

    def a_state(_e: am.Event) -> None:
        mach.add1("C")
        raise ValueError("x")

    rec = Rec("ExceptionState", "CState", do={"AState": a_state})
    rec.calls = calls
    mach.bind_handlers(rec)
    assert mach.add1("A") == am.Canceled
    assert calls == ["AState", "ExceptionState", "CState"]


# --- Handler timeouts (decided) -------------------------------------------------------------------


def test_negotiation_timeout_cancels() -> None:
    """A negotiation handler that ran too long cancels and adds Exception (HandlerTimeoutError)."""
    mach, lines = logged(NO_RELS, handler_timeout=0.02)
    mach.bind_handlers(Rec(do={"AEnter": lambda _e: spin(0.05)}))
    assert mach.add1("A") == am.Canceled
    assert mach.string_all() == "(Exception:1) [A:0 B:0 C:0 D:0]"
    err = mach.err()
    assert isinstance(err, am.HandlerTimeoutError)
    assert issubclass(am.HandlerTimeoutError, am.AsyncMachineError)
    assert "AEnter" in str(err)
    assert "[cancel] (A) by timeout" in lines


def test_final_timeout_rolls_back() -> None:
    """A final handler that ran too long rolls back like a panic: A:2, Exception:1, Canceled."""
    mach = am.Machine(NO_RELS, handler_timeout=0.02)
    seen: list[Any] = []
    mach.bind_handlers(
        Rec(
            do={
                "AState": lambda _e: spin(0.05),
                "ExceptionState": lambda e: seen.append(e.args[am.ERR_ARGS_KEY].err),
            }
        )
    )
    assert mach.add1("A") == am.Canceled
    assert mach.string_all() == "(Exception:1) [A:2 B:0 C:0 D:0]"
    assert len(seen) == 1 and isinstance(seen[0], am.HandlerTimeoutError)


def test_no_backoff_after_timeout() -> None:
    """Decision: no deadline, no backoff; the next mutations run normally."""
    mach = am.Machine(NO_RELS, handler_timeout=0.02)
    mach.bind_handlers(Rec(do={"AEnter": lambda _e: spin(0.05)}))
    assert mach.add1("A") == am.Canceled
    assert mach.add1("B") == am.Executed
    assert mach.remove1("Exception") == am.Executed
    assert mach.can_add1("C") == am.Executed
    assert mach.string_all() == "(B:1) [A:0 C:0 D:0 Exception:2]"


def test_fast_handler_within_timeout() -> None:
    """A handler within the timeout does nothing special."""
    mach = am.Machine(NO_RELS, handler_timeout=5.0)
    mach.bind_handlers(Rec("AEnter", "AState"))
    assert mach.add1("A") == am.Executed
    assert not mach.is_err()


def test_no_timeout_by_default() -> None:
    """handler_timeout defaults to None: no checks at all."""
    mach = am.Machine(NO_RELS)
    mach.bind_handlers(Rec(do={"AState": lambda _e: spin(0.12)}))
    assert mach.add1("A") == am.Executed
    assert not mach.is_err()


# --- Other hooks ----------------------------------------------------------------------------------


def test_on_error_called_before_add() -> None:
    """on_error(mach, err) runs inside add_err before the Exception is added."""
    mach = am.Machine(NO_RELS)
    seen: list[tuple[Any, Any, bool]] = []
    mach.on_error(lambda m, err: seen.append((m, err, m.is_err())))
    err = ValueError("x")
    mach.add_err(err)
    assert seen == [(mach, err, False)]
    assert mach.is_err()


def test_on_error_for_handler_panic() -> None:
    """A handler panic goes through add_err, so on_error sees it."""
    mach = am.Machine(NO_RELS)
    seen: list[Any] = []
    mach.on_error(lambda _m, err: seen.append(err))
    mach.bind_handlers(Rec(do={"AEnter": raiser("boom")}))
    mach.add1("A")
    assert len(seen) == 1 and str(seen[0]) == "boom"


def test_misspelt_handler_warns() -> None:
    """`FooEnterr`: starts with a state, but the rest is no suffix and no state: HandlerWarning."""
    mach = am.Machine({"Foo": am.State(), "Bar": am.State()})
    calls: list[str] = []

    class Handlers:
        def FooEnterr(self, e: am.Event) -> None:
            calls.append("FooEnterr")

        def FooState(self, e: am.Event) -> None:
            calls.append("FooState")

    with pytest.warns(am.HandlerWarning, match="FooEnterr") as record:
        mach.bind_handlers(Handlers())
    assert len(record) == 1
    assert record[0].filename == __file__  # points at the bind_handlers call
    assert issubclass(am.HandlerWarning, UserWarning)
    mach.add1("Foo")
    assert calls == ["FooState"]


@pytest.mark.parametrize(
    "name",
    ["FooBar", "FooBarState", "Foobar", "Foo", "helper", "AnyEnter", "FooFoo"],
)
def test_handler_like_names_that_do_not_warn(name: str) -> None:
    """Pairs of states, real handlers, a state name alone and other words are left alone."""
    mach = am.Machine({"Foo": am.State(), "Bar": am.State(), "FooBar": am.State()})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mach.bind_handlers({name: lambda e: None})


def test_misspelt_handler_in_a_dict_warns() -> None:
    mach = am.Machine({"Foo": am.State()})
    with pytest.warns(am.HandlerWarning, match="FooExt"):
        mach.bind_handlers({"FooExt": lambda e: None})


def test_current_transition_follows_the_handlers() -> None:
    """am.current_transition() is the transition whose handlers run, None elsewhere."""
    mach = am.Machine(dict(NO_RELS))
    seen: list[tuple[str, am.Transition | None, am.Transition | None]] = []

    def record(e: am.Event) -> None:
        seen.append((e.name, am.current_transition(), e.transition))

    mach.bind_handlers(SimpleNamespace(AEnter=record, AState=record, AnyState=record))
    assert am.current_transition() is None
    mach.add1("A")
    assert am.current_transition() is None
    assert [name for name, _, _ in seen] == ["AEnter", "AState", "AnyState"]
    assert all(current is tx for _, current, tx in seen)


def test_current_transition_across_machines() -> None:
    """A handler of one machine mutating another: each machine's handlers see their own
    transition, and the outer one is back once the inner call returns."""
    outer = am.Machine(dict(NO_RELS), id="outer")
    inner = am.Machine(dict(NO_RELS), id="inner")
    seen: list[tuple[str, str]] = []

    def b_state(e: am.Event) -> None:
        tx = am.current_transition()
        assert tx is not None
        seen.append(("inner", tx.machine_id))

    def a_state(e: am.Event) -> None:
        inner.add1("B")
        tx = am.current_transition()
        assert tx is e.transition
        seen.append(("outer", tx.machine_id))

    outer.bind_handlers(SimpleNamespace(AState=a_state))
    inner.bind_handlers(SimpleNamespace(BState=b_state))
    outer.add1("A")
    assert seen == [("inner", "inner"), ("outer", "outer")]


async def test_current_transition_is_inherited_by_tasks() -> None:
    """An async final handler, and a task forked from a handler, keep the transition that
    started them, even after later transitions."""
    mach = am.Machine(dict(NO_RELS))
    seen: dict[str, am.Transition | None] = {}
    started: dict[str, am.Transition] = {}
    release = asyncio.Event()

    async def forked() -> None:
        await release.wait()
        seen["forked"] = am.current_transition()

    class Handlers:
        async def AState(self, e: am.Event) -> None:
            started["async"] = e.transition
            await release.wait()
            seen["async"] = am.current_transition()

        def BState(self, e: am.Event) -> None:
            started["forked"] = e.transition
            e.machine.fork(e.machine.ctx, forked())

    mach.bind_handlers(Handlers())
    mach.add1("A")
    mach.add1("B")
    mach.add1("C")
    assert am.current_transition() is None
    release.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert seen == started
    assert started["async"] is not started["forked"]
