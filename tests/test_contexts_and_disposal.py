"""State contexts, the machine context and disposal
(docs/semantics.md#contexts, #disposal)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

import asyncmachine as am

St = am.State
NO_RELS = {"A": St(), "B": St(), "C": St(), "D": St()}


def mk(schema: dict[str, am.State] | None = None, **kw: object) -> am.Machine:
    """A NoRels machine (A B C D) unless a schema is given."""
    return am.Machine(dict(schema or NO_RELS), **kw)  # type: ignore[arg-type]


# --- state contexts -------------------------------------------------------------------------------


def test_state_ctx_basic() -> None:
    """TestStateCtxBasic: one ctx per state, cancelled on the next activation or deactivation."""
    mach = mk()
    mach.add1("A")
    ctx1 = mach.new_state_ctx("A")
    assert isinstance(ctx1, am.Ctx)
    assert not ctx1.done()
    assert mach.new_state_ctx("A") is ctx1
    mach.remove1("A")
    assert ctx1.done()

    ctx2 = mach.new_state_ctx("B")
    assert not ctx2.done()
    mach.add1("C")
    assert not ctx2.done()
    mach.add1("B")
    assert ctx2.done()


def test_state_ctx_untouched_by_unchanged_transitions() -> None:
    """Adding an already active non-Multi state keeps its context."""
    mach = mk()
    mach.add1("A")
    ctx = mach.new_state_ctx("A")
    mach.add1("A")
    mach.add1("B")
    assert not ctx.done()


def test_state_ctx_in_state_handler_is_fresh() -> None:
    """TestStateCtx: contexts are cancelled before final handlers, so AState gets a live one."""
    mach = mk()
    old = mach.new_state_ctx("A")
    got: list[tuple[am.Ctx, bool, bool]] = []

    def a_state(e: am.Event) -> None:
        ctx = e.machine.new_state_ctx("A")
        got.append((ctx, ctx.done(), old.done()))

    mach.bind_handlers(SimpleNamespace(AState=a_state))
    mach.add1("A")
    ((ctx, ctx_done, old_done),) = got
    assert ctx is not old
    assert not ctx_done
    assert old_done
    mach.remove1("A")
    assert ctx.done()


def test_state_ctx_unknown_state_raises() -> None:
    """new_state_ctx of an unknown state raises StateMissingError."""
    with pytest.raises(am.StateMissingError):
        mk().new_state_ctx("Nope")


def test_state_ctx_is_child_of_machine_ctx() -> None:
    """Disposal cancels every state context."""
    mach = mk()
    mach.add1("A")
    ca = mach.new_state_ctx("A")
    cb = mach.new_state_ctx("B")
    assert not mach.ctx.done()
    mach.dispose()
    assert ca.done() and cb.done()
    assert mach.ctx.done()


# --- dispose --------------------------------------------------------------------------------------


def test_dispose_mutations_are_canceled() -> None:
    """TestDisposedNoOp: every mutation returns Canceled after dispose()."""
    mach = mk()
    mach.add1("A")
    mach.dispose()
    assert mach.is_disposed
    results = [
        mach.add(["B"]),
        mach.add1("B"),
        mach.remove(["A"]),
        mach.remove1("A"),
        mach.set(["C"]),
        mach.toggle(["A"]),
        mach.toggle1("B"),
        mach.add_err(ValueError("x")),
        mach.add_err_state("B", ValueError("x")),
        mach.can_add(["B"]),
        mach.can_add1("B"),
        mach.can_remove(["A"]),
        mach.can_remove1("A"),
    ]
    assert results == [am.Canceled] * len(results)
    assert all(isinstance(r, am.Result) for r in results)


def test_dispose_reads_are_empty() -> None:
    """the API and docs/semantics.md#disposal: reads after disposal answer empty, false, -1 or 0."""
    mach = mk()
    mach.add(["A", "B"])
    clock = mach.clock()
    time = mach.time()
    mach.dispose()
    assert mach.active_states() == []
    assert mach.clock() == {}
    t = mach.time()
    assert isinstance(t, am.Time)
    assert list(t) == []
    assert mach.string() == ""
    assert mach.string_all() == ""
    assert mach.inspect() == ""
    assert str(mach) == ""
    assert mach.is1("A") is False
    assert mach.is_(["A", "B"]) is False
    assert mach.index1("A") == -1
    assert mach.has1("A") is False
    assert mach.is_clock(clock) is False
    assert mach.is_time(time) is False
    assert mach.tick("A") == 0
    assert mach.queue_len() == 0
    assert mach.verify_states(["A", "B", "C", "D", "Exception"]) is None
    ran: list[int] = []
    assert mach.eval(lambda: ran.append(1)) is False
    assert ran == []


def test_dispose_returns_cancelled_waiters() -> None:
    """Waiters asked of a disposed machine are returned already cancelled."""
    mach = mk()
    mach.add1("A")
    mach.dispose()
    waiters = [
        mach.when1("B"),
        mach.when(["B", "C"]),
        mach.when_not1("A"),
        mach.when_not(["A"]),
        mach.when_args("B", {"x": 1}),
        mach.when_time(["B"], [5]),
        mach.when_time1("B", 5),
        mach.when_ticks("B", 2),
        mach.when_next_active("B"),
        mach.when_err(),
        mach.when_queue(100),
        mach.when_queue_ends(),
        mach.when_query(lambda c: True),
    ]
    for w in waiters:
        assert w.done() and w.cancelled()
    assert mach.when_disposed().done()


def test_dispose_cancels_pending_waiters_and_state_ctxs() -> None:
    """Every pending waiter (incl. when_query, decisions.md) is cancelled by disposal."""
    mach = mk()
    mach.add1("A")
    pending = [
        mach.when1("B"),
        mach.when_not1("A"),
        mach.when_args("B", {"x": 1}),
        mach.when_time1("B", 3),
        mach.when_err(),
        mach.when_queue(100),
        mach.when_query(lambda c: False),
    ]
    assert not any(w.done() for w in pending)
    disposed = mach.when_disposed()
    assert not disposed.done()
    mach.dispose()
    for w in pending:
        assert w.done() and w.cancelled()
    assert disposed.done() and not disposed.cancelled()


def test_on_dispose_callbacks_in_order_and_handlers_dropped() -> None:
    """on_dispose(fn(mach_id)) callbacks run in order; bindings are dropped."""
    mach = mk(id="disposeme")
    mach.bind_handlers(SimpleNamespace(AState=lambda e: None))
    assert len(mach.handlers()) == 1
    calls: list[tuple[str, str]] = []
    mach.on_dispose(lambda mid: calls.append(("first", mid)))
    mach.on_dispose(lambda mid: calls.append(("second", mid)))
    mach.dispose()
    assert calls == [("first", "disposeme"), ("second", "disposeme")]
    assert mach.handlers() == []


def test_dispose_removes_start_first() -> None:
    """Step 1: Start is removed (StartEnd runs) before the machine is disposed."""
    mach = mk({"Start": St(), "A": St()})
    mach.add(["Start", "A"])
    order: list[str] = []
    start_ctx = mach.new_state_ctx("Start")

    def start_end(e: am.Event) -> None:
        order.append(f"StartEnd disposed={e.machine.is_disposed} ctx={start_ctx.done()}")

    mach.bind_handlers(SimpleNamespace(StartEnd=start_end))
    mach.on_dispose(lambda mid: order.append("on_dispose"))
    mach.dispose()
    assert order == ["StartEnd disposed=False ctx=True", "on_dispose"]
    assert mach.is_disposed


def test_dispose_from_handler_drops_queued_mutations() -> None:
    """Disposing inside a handler finishes the transition, drops the queue, then finalises."""
    mach = mk()
    calls: list[str] = []
    done: list[str] = []

    def a_state(e: am.Event) -> None:
        calls.append("AState")
        e.machine.add1("B")
        e.machine.dispose()

    mach.bind_handlers(SimpleNamespace(AState=a_state, BState=lambda e: calls.append("BState")))
    mach.on_dispose(done.append)
    mach.add1("A")
    assert calls == ["AState"]
    assert mach.is_disposed
    assert done == [mach.id]


async def test_await_when_disposed() -> None:
    """when_disposed() is awaitable and resolves once disposal completes."""
    mach = mk()
    w = mach.when_disposed()
    asyncio.get_running_loop().call_soon(mach.dispose)
    await asyncio.wait_for(w, 1)
    assert mach.is_disposed


async def test_await_waiter_cancelled_by_dispose_raises() -> None:
    """A pending waiter cancelled by disposal raises CancelledError when awaited."""
    mach = mk()
    w = mach.when1("B")
    asyncio.get_running_loop().call_soon(mach.dispose)
    with pytest.raises(asyncio.CancelledError):
        await w
