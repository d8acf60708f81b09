"""Waiters: the when* family, am.Ctx, mach.fork and async final handlers
(docs/semantics.md#waiters, #contexts)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from types import SimpleNamespace

import pytest

import asyncmachine as am

St = am.State
NO_RELS = {"A": St(), "B": St(), "C": St(), "D": St()}


def mk(schema: dict[str, am.State] | None = None, **kw: object) -> am.Machine:
    """A NoRels machine (A B C D) unless a schema is given."""
    return am.Machine(dict(schema or NO_RELS), **kw)  # type: ignore[arg-type]


def resolved(w: am.Waiter) -> bool:
    """Ended through its condition."""
    return w.done() and not w.cancelled()


# --- resolution right after the mutation --------------------------------------------------------


def test_when_resolves_synchronously() -> None:
    """TestWhen: all listed states active at the end of an accepted transition."""
    mach = mk()
    w = mach.when(["A", "B"])
    w1 = mach.when1("B")
    assert not w.done() and not w1.done()
    mach.add1("A")
    assert not w.done()
    mach.add1("B")
    assert resolved(w) and resolved(w1)


def test_when_across_transitions_needs_all_active_at_once() -> None:
    """A state that was active earlier but not any more doesn't count."""
    mach = mk()
    w = mach.when(["A", "B"])
    mach.add1("A")
    mach.remove1("A")
    mach.add1("B")
    assert not w.done()
    mach.add1("A")
    assert resolved(w)


def test_when_pre_resolved() -> None:
    """Already true (or empty) at creation: returned done."""
    mach = mk()
    mach.add(["A", "B"])
    assert resolved(mach.when1("A"))
    assert resolved(mach.when(["A", "B"]))
    assert resolved(mach.when([]))
    assert resolved(mach.when_not1("C"))
    assert resolved(mach.when_not(["C", "D"]))
    assert resolved(mach.when_time(["A", "B"], [1, 1]))
    assert resolved(mach.when_time1("A", 0))


def test_when_not_resolves_synchronously() -> None:
    """TestWhenNot: all listed states inactive."""
    mach = mk()
    mach.add(["A", "B"])
    w = mach.when_not(["A", "B"])
    w1 = mach.when_not1("A")
    mach.remove1("B")
    assert not w.done() and not w1.done()
    mach.remove1("A")
    assert resolved(w) and resolved(w1)


def test_when_args() -> None:
    """A State event whose args contain every given key/value (extra keys allowed)."""
    mach = mk()
    w = mach.when_args("B", {"x": 1})
    mach.add1("B", {"x": 2})
    assert not w.done()
    mach.remove1("B")
    mach.add1("B", {"x": 1, "y": 2})
    assert resolved(w)


def test_when_args_needs_entering() -> None:
    """A repeated Add of an active non-Multi state isn't an enter, so it never fires."""
    mach = mk()
    mach.add1("B")
    w = mach.when_args("B", {"x": 1})
    mach.add1("B", {"x": 1})
    assert not w.done()
    mach.remove1("B")
    mach.add1("B", {"x": 1})
    assert resolved(w)


def test_when_time() -> None:
    """TestWhenTime: for every i, tick(states[i]) >= times[i]."""
    mach = mk()
    w = mach.when_time(["A", "B"], [3, 1])
    w1 = mach.when_time1("A", 3)
    mach.add(["A", "B"])
    assert not w.done()
    mach.remove1("A")
    assert not w.done()
    mach.add1("A")
    assert resolved(w) and resolved(w1)
    assert mach.string_all() == "(A:3 B:1) [C:0 D:0 Exception:0]"


@pytest.mark.parametrize(("states", "times"), [(["A", "B"], [1]), (["A"], [1, 2]), ([], [])])
def test_when_time_bad_lists(states: list[str], times: list[int]) -> None:
    """Different lengths or empty lists raise ValueError."""
    with pytest.raises(ValueError):
        mk().when_time(states, times)


def test_when_ticks_is_relative() -> None:
    """when_ticks(state, n) waits for tick(state) + n."""
    mach = mk()
    mach.add1("A")
    w = mach.when_ticks("A", 2)
    mach.remove1("A")
    assert not w.done()
    mach.add1("A")
    assert resolved(w)
    assert mach.tick("A") == 3


def test_when_next_active_excludes_current() -> None:
    """when_next_active waits for the next activation, not the current one."""
    mach = mk()
    mach.add1("A")
    w_active = mach.when_next_active("A")
    w_inactive = mach.when_next_active("B")
    assert not w_active.done() and not w_inactive.done()
    mach.remove1("A")
    assert not w_active.done()
    mach.add(["A", "B"])
    assert resolved(w_active) and resolved(w_inactive)


def test_when_err() -> None:
    """when_err = when([Exception])."""
    mach = mk()
    w = mach.when_err()
    mach.add1("A")
    assert not w.done()
    mach.add_err(ValueError("x"))
    assert resolved(w)
    assert resolved(mach.when_err())


def test_when_query_example() -> None:
    """TestWhenQuery: not evaluated at creation, only after accepted transitions."""
    mach = mk()
    mach.add1("A")
    q1 = mach.when_query(lambda c: c["A"] > 4 * c["B"])
    q2 = mach.when_query(lambda c: c["A"] < c["B"])
    assert not q1.done() and not q2.done()
    for step in (
        lambda: mach.add1("B"),
        lambda: mach.remove1("A"),
        lambda: mach.add1("A"),
        lambda: mach.remove1("A"),
    ):
        step()
        assert not q1.done() and not q2.done()
    mach.add1("A")
    assert (mach.tick("A"), mach.tick("B")) == (5, 1)
    assert resolved(q1)
    assert not q2.done()


def test_when_query_after_accepted_unchanged_transition() -> None:
    """docs/semantics.md#transitions/docs/semantics.md#waiters: every accepted transition evaluates
    queries, even one that changes no tick."""
    mach = mk()
    mach.add1("A")
    q = mach.when_query(lambda c: c["A"] == 1)
    assert not q.done()
    assert mach.add1("A") == am.Executed
    assert mach.tick("A") == 1
    assert resolved(q)


def test_cancelled_transition_processes_no_subscriptions() -> None:
    """A cancelled transition resolves nothing, not even a query that holds."""
    mach = mk({"A": St(), "B": St(require=("C",)), "C": St()})
    q = mach.when_query(lambda c: True)
    assert mach.add1("B") == am.Canceled
    assert not q.done()
    mach.add1("A")
    assert resolved(q)


def test_when_queue() -> None:
    """when_queue(tick) resolves once the queue tick is reached; 0 and 1 are always reached."""
    mach = mk()
    assert resolved(mach.when_queue(am.Executed))
    assert resolved(mach.when_queue(am.Canceled))
    seen: list[tuple[int, bool]] = []
    waiters: list[am.Waiter] = []

    def a_state(e: am.Event) -> None:
        tick = e.machine.add1("B")
        w = e.machine.when_queue(tick)
        waiters.append(w)
        seen.append((tick, w.done()))

    mach.bind_handlers(SimpleNamespace(AState=a_state))
    mach.add1("A")
    assert seen == [(3, False)]
    assert resolved(waiters[0])
    far = mach.when_queue(mach.queue_tick() + 5)
    mach.add1("C")
    assert not far.done()


def test_when_queue_resolved_when_its_mutation_is_cancelled() -> None:
    """The queue tick is reached even when that mutation is cancelled."""
    mach = mk({"A": St(), "B": St(require=("C",)), "C": St()})
    waiters: list[am.Waiter] = []
    ticks: list[int] = []

    def a_state(e: am.Event) -> None:
        tick = e.machine.add1("B")
        ticks.append(tick)
        waiters.append(e.machine.when_queue(tick))

    mach.bind_handlers(SimpleNamespace(AState=a_state))
    mach.add1("A")
    assert ticks == [3]
    assert not mach.is1("B")
    assert resolved(waiters[0])


def test_when_queue_ends() -> None:
    """Resolved at once when idle; inside a handler, when the queue run finishes."""
    mach = mk()
    assert resolved(mach.when_queue_ends())
    inside: list[tuple[am.Waiter, bool]] = []

    def a_state(e: am.Event) -> None:
        w = e.machine.when_queue_ends()
        inside.append((w, w.done()))

    mach.bind_handlers(SimpleNamespace(AState=a_state))
    mach.add1("A")
    ((w, was_done),) = inside
    assert was_done is False
    assert resolved(w)


def test_when_disposed() -> None:
    """Resolved (not cancelled) by disposal."""
    mach = mk()
    w = mach.when_disposed()
    mach.add1("A")
    assert not w.done()
    mach.dispose()
    assert resolved(w)


def test_processing_order() -> None:
    """WhenArgs (final handlers) -> When -> WhenTime -> WhenQueue -> WhenQuery."""
    mach = mk()
    order: list[str] = []
    mach.when_query(lambda c: c["A"] == 1).add_done_callback(lambda w: order.append("query"))
    mach.when_queue(mach.queue_tick() + 1).add_done_callback(lambda w: order.append("queue"))
    mach.when_time1("A", 1).add_done_callback(lambda w: order.append("time"))
    mach.when1("A").add_done_callback(lambda w: order.append("when"))
    mach.when_args("A", {"k": 1}).add_done_callback(lambda w: order.append("args"))
    assert order == []
    mach.add1("A", {"k": 1})
    assert order == ["args", "when", "time", "queue", "query"]


# --- reuse --------------------------------------------------------------------------------------


def test_waiter_reuse_for_identical_requests() -> None:
    """TestChanReuse: identical When/WhenNot/WhenTime/WhenArgs requests share the waiter."""
    mach = mk()
    mach.add1("C")
    ctx = am.Ctx()
    assert mach.when1("A") is mach.when1("A")
    assert mach.when(["A", "B"]) is mach.when(["A", "B"])
    assert mach.when_not1("C") is mach.when_not1("C")
    assert mach.when_not(["C"]) is mach.when_not(["C"])
    assert mach.when_time(["A", "B"], [3, 5]) is mach.when_time(["A", "B"], [3, 5])
    assert mach.when_args("B", {"x": 1}) is mach.when_args("B", {"x": 1})
    assert mach.when1("A", ctx) is mach.when1("A", ctx)
    assert mach.when1("A", ctx) is not mach.when1("A")
    assert mach.when(["A", "B"]) is not mach.when(["A", "B", "D"])
    assert mach.when_time(["A"], [3]) is not mach.when_time(["A"], [5])


def test_no_reuse_for_query_and_queue() -> None:
    """WhenQuery and WhenQueue always make new waiters."""
    mach = mk()

    def fn(c: dict[str, int]) -> bool:
        return False

    assert mach.when_query(fn) is not mach.when_query(fn)
    assert mach.when_queue(50) is not mach.when_queue(50)


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.when(["A", "Nope"]),
        lambda m: m.when1("Nope"),
        lambda m: m.when_not(["Nope"]),
        lambda m: m.when_not1("Nope"),
        lambda m: m.when_args("Nope", {"x": 1}),
        lambda m: m.when_time(["Nope"], [1]),
        lambda m: m.when_time1("Nope", 1),
        lambda m: m.when_ticks("Nope", 1),
        lambda m: m.when_next_active("Nope"),
    ],
)
def test_unknown_state_raises(call: Callable[[am.Machine], am.Waiter]) -> None:
    """the API: every when* that takes states raises StateMissingError (a KeyError)."""
    with pytest.raises(am.StateMissingError):
        call(mk())
    with pytest.raises(KeyError):
        call(mk())


# --- ctx cancellation and callbacks -------------------------------------------------------------

CTX_CALLS: list[Callable[[am.Machine, am.Ctx], am.Waiter]] = [
    lambda m, c: m.when(["A", "B"], c),
    lambda m, c: m.when1("B", c),
    lambda m, c: m.when_not(["A"], c),
    lambda m, c: m.when_not1("A", c),
    lambda m, c: m.when_args("B", {"x": 1}, c),
    lambda m, c: m.when_time(["B"], [1], c),
    lambda m, c: m.when_time1("B", 1, c),
    lambda m, c: m.when_ticks("B", 1, c),
    lambda m, c: m.when_next_active("B", c),
    lambda m, c: m.when_query(lambda clock: False, c),
    lambda m, c: m.when_err(c),
]


@pytest.mark.parametrize("call", CTX_CALLS)
def test_ctx_cancel_cancels_waiter_at_once(call: Callable[[am.Machine, am.Ctx], am.Waiter]) -> None:
    """The waiter is cancelled as soon as its ctx is, no transition needed."""
    mach = mk()
    mach.add1("A")
    ctx = am.Ctx()
    w = call(mach, ctx)
    assert not w.done()
    seen: list[am.Waiter] = []
    w.add_done_callback(seen.append)
    ctx.cancel()
    assert w.done() and w.cancelled()
    assert seen == [w]
    mach.add(["B"])
    mach.remove1("A")
    assert w.cancelled()


@pytest.mark.parametrize("call", CTX_CALLS)
def test_done_ctx_gives_cancelled_waiter(call: Callable[[am.Machine, am.Ctx], am.Waiter]) -> None:
    """A waiter asked with an already-done ctx is returned cancelled."""
    mach = mk()
    mach.add1("A")
    ctx = am.Ctx()
    ctx.cancel()
    w = call(mach, ctx)
    assert w.done() and w.cancelled()


def test_child_ctx_cancelled_through_parent() -> None:
    """Cancelling a parent ctx cancels waiters bound to its children."""
    mach = mk()
    parent = am.Ctx()
    w = mach.when1("B", parent.child())
    parent.cancel()
    assert w.cancelled()


def test_done_callbacks() -> None:
    """Callbacks run synchronously with the waiter, at once when already done."""
    mach = mk()
    w = mach.when1("A")
    seen: list[str] = []
    w.add_done_callback(lambda x: seen.append("first" if x is w else "?"))
    w.add_done_callback(lambda x: seen.append("second" if x is w else "?"))
    mach.add1("A")
    assert seen == ["first", "second"]
    w.add_done_callback(lambda x: seen.append("late" if x is w else "?"))
    assert seen == ["first", "second", "late"]
    mach.remove1("A")
    mach.add1("A")
    assert seen == ["first", "second", "late"]


# --- awaiting -----------------------------------------------------------------------------------


async def test_await_waiter() -> None:
    """A pending waiter resolves an awaiting task once the mutation runs."""
    mach = mk()
    w = mach.when(["A", "B"])
    loop = asyncio.get_running_loop()
    loop.call_soon(mach.add, ["A", "B"])
    await asyncio.wait_for(w, 1)
    assert resolved(w)
    await asyncio.wait_for(mach.when1("A"), 1)


async def test_await_many_waiters() -> None:
    """Several waiters of different kinds awaited together."""
    mach = mk()
    ws = [mach.when1("A"), mach.when_not1("A"), mach.when_time1("B", 2), mach.when_err()]
    loop = asyncio.get_running_loop()
    loop.call_soon(mach.add1, "A")
    loop.call_soon(mach.remove1, "A")
    loop.call_soon(mach.toggle1, "B")
    loop.call_soon(mach.toggle1, "B")
    loop.call_soon(mach.add_err, ValueError("x"))
    await asyncio.wait_for(asyncio.gather(*ws), 1)
    assert all(resolved(w) for w in ws)


async def test_await_cancelled_waiter_raises() -> None:
    """Awaiting a cancelled waiter raises CancelledError, both pending and already cancelled."""
    mach = mk()
    ctx = am.Ctx()
    w = mach.when1("B", ctx)
    asyncio.get_running_loop().call_soon(ctx.cancel)
    with pytest.raises(asyncio.CancelledError):
        await w
    with pytest.raises(asyncio.CancelledError):
        await w
    with pytest.raises(asyncio.CancelledError):
        await mach.when1("C", ctx)


# --- am.Ctx -------------------------------------------------------------------------------------


def test_ctx_basics() -> None:
    """cancel(), done(), callbacks (sync, once, at once if done), children."""
    ctx = am.Ctx()
    child = ctx.child()
    grandchild = child.child()
    seen: list[str] = []
    ctx.add_done_callback(lambda c: seen.append("root" if c is ctx else "?"))
    child.add_done_callback(lambda c: seen.append("child" if c is child else "?"))
    assert not ctx.done() and not child.done()
    ctx.cancel()
    assert ctx.done() and child.done() and grandchild.done()
    assert sorted(seen) == ["child", "root"]
    ctx.cancel()
    assert sorted(seen) == ["child", "root"]
    ctx.add_done_callback(lambda c: seen.append("late"))
    assert seen[-1] == "late"
    assert ctx.child().done()


def test_ctx_child_cancel_keeps_parent() -> None:
    """Cancelling a child leaves its parent and siblings alive."""
    ctx = am.Ctx()
    a = ctx.child()
    b = ctx.child()
    a.cancel()
    assert a.done()
    assert not ctx.done() and not b.done()


def test_ctx_background_never_done() -> None:
    """Ctx.background() is never cancelled; its children can be."""
    bg = am.Ctx.background()
    assert not bg.done()
    child = bg.child()
    child.cancel()
    assert child.done()
    assert not bg.done()


async def test_ctx_wait() -> None:
    """await ctx.wait() returns once the ctx is cancelled, at once when already done."""
    ctx = am.Ctx()
    asyncio.get_running_loop().call_soon(ctx.cancel)
    await asyncio.wait_for(ctx.wait(), 1)
    assert ctx.done()
    await asyncio.wait_for(ctx.wait(), 1)


def test_machine_ctx() -> None:
    """mach.ctx lives until disposal."""
    mach = mk()
    assert isinstance(mach.ctx, am.Ctx)
    assert not mach.ctx.done()
    mach.dispose()
    assert mach.ctx.done()


# --- fork -----------------------------------------------------------------------------------------


async def test_fork_runs_task() -> None:
    """fork starts the coroutine as a task on the running loop."""
    mach = mk()
    out: list[int] = []

    async def work() -> None:
        await asyncio.sleep(0)
        out.append(1)

    task = mach.fork(am.Ctx(), work())
    assert isinstance(task, asyncio.Task)
    await asyncio.wait_for(task, 1)
    assert out == [1]
    assert not mach.is_err()


async def test_fork_cancelled_when_ctx_done() -> None:
    """Cancelling the ctx cancels the task; a cancellation is not an error."""
    mach = mk()
    started = asyncio.Event()

    async def work() -> None:
        started.set()
        await asyncio.Event().wait()

    ctx = am.Ctx()
    task = mach.fork(ctx, work())
    assert task is not None
    await asyncio.wait_for(started.wait(), 1)
    ctx.cancel()
    await asyncio.wait([task], timeout=1)
    assert task.cancelled()
    assert not mach.is_err()


async def test_fork_bound_to_state_ctx() -> None:
    """A fork on a state ctx ends with that state."""
    mach = mk()
    mach.add1("A")
    started = asyncio.Event()

    async def work() -> None:
        started.set()
        await asyncio.Event().wait()

    task = mach.fork(mach.new_state_ctx("A"), work())
    assert task is not None
    await asyncio.wait_for(started.wait(), 1)
    mach.remove1("A")
    await asyncio.wait([task], timeout=1)
    assert task.cancelled()


async def test_fork_exception_becomes_add_err() -> None:
    """An exception raised by the task is turned into add_err."""
    mach = mk()
    boom = ValueError("forked boom")

    async def work() -> None:
        await asyncio.sleep(0)
        raise boom

    w = mach.when_err()
    mach.fork(am.Ctx(), work())
    await asyncio.wait_for(w, 1)
    assert mach.is_err()
    assert mach.err() is boom


def test_fork_with_done_ctx_closes_coro() -> None:
    """A done ctx: the coroutine is closed (never run) and None is returned."""
    mach = mk()
    ran: list[int] = []

    async def work() -> None:
        ran.append(1)

    ctx = am.Ctx()
    ctx.cancel()
    coro = work()
    assert mach.fork(ctx, coro) is None
    assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED
    assert ran == []


async def test_eval_from_forked_task() -> None:
    """TestEvalNestedHandlers: an eval from a task forked in a handler runs after the transition."""
    mach = mk()
    results: list[bool] = []
    tasks: list[asyncio.Task[None]] = []

    def read() -> None:
        results.append(mach.is1("A"))

    async def work() -> None:
        results.append(mach.eval(read, "forked"))

    def a_state(e: am.Event) -> None:
        t = e.machine.fork(e.machine.new_state_ctx("A"), work())
        assert t is not None
        tasks.append(t)

    mach.bind_handlers(SimpleNamespace(AState=a_state))
    mach.add1("A")
    await asyncio.wait_for(tasks[0], 1)
    assert results == [True, True]
    assert not mach.is_err()


# --- async final handlers -------------------------------------------------------------------------


async def test_async_state_handler_bound_to_state_ctx() -> None:
    """An `async def AState` runs as a task, cancelled when A's instance ends."""
    mach = mk()
    started = asyncio.Event()
    tasks: list[asyncio.Task[object]] = []
    cancelled: list[bool] = []

    class H:
        async def AState(self, e: am.Event) -> None:
            task = asyncio.current_task()
            assert task is not None
            tasks.append(task)
            started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.append(True)
                raise

    mach.bind_handlers(H())
    assert mach.add1("A") == am.Executed
    await asyncio.wait_for(started.wait(), 1)
    assert not tasks[0].done()
    mach.add1("B")
    assert not tasks[0].done()
    mach.remove1("A")
    await asyncio.wait([tasks[0]], timeout=1)
    assert tasks[0].cancelled()
    assert cancelled == [True]
    assert not mach.is_err()


async def test_async_end_handler_runs() -> None:
    """An `async def AEnd` runs as a task after the transition."""
    mach = mk()
    ended = asyncio.Event()

    class H:
        async def AEnd(self, e: am.Event) -> None:
            await asyncio.sleep(0)
            ended.set()

    mach.bind_handlers(H())
    mach.add1("A")
    mach.remove1("A")
    await asyncio.wait_for(ended.wait(), 1)


async def test_async_state_handler_exception_becomes_add_err() -> None:
    """An exception in an async final handler ends up in add_err (it runs via fork)."""
    mach = mk()
    boom = RuntimeError("async boom")

    class H:
        async def AState(self, e: am.Event) -> None:
            await asyncio.sleep(0)
            raise boom

    mach.bind_handlers(H())
    w = mach.when_err()
    mach.add1("A")
    await asyncio.wait_for(w, 1)
    assert mach.err() is boom


@pytest.mark.parametrize("name", ["AEnter", "AExit", "AA", "AB", "AnyEnter"])
def test_async_negotiation_handler_rejected(name: str) -> None:
    """Negotiation handlers must be synchronous: HandlerError at bind time."""
    mach = mk()

    async def handler(e: am.Event) -> None:
        return None

    obj = SimpleNamespace(**{name: handler})
    with pytest.raises(am.HandlerError):
        mach.bind_handlers(obj)
    assert mach.handlers() == []
