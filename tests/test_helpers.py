"""asyncmachine.helpers: sync-style mutations, waits, retried requests, loops, error capture."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Coroutine
from types import SimpleNamespace
from typing import Any

import pytest
from support import no_leaked_tasks  # noqa: F401 (the fixture every test here uses)

import asyncmachine as am
import asyncmachine.helpers as amhelp

St = am.State


def mk(**schema: am.State) -> am.Machine:
    return am.Machine(schema or {"A": St(), "B": St(), "C": St()})


pytestmark = pytest.mark.usefixtures("no_leaked_tasks")


class Spy(am.Waiter):
    """A waiter that never ends and shows which callbacks are registered on it."""

    def __init__(self) -> None:
        super().__init__()
        self.callbacks: list[Callable[[am.Waiter], None]] = []

    def add_done_callback(self, fn: Callable[[am.Waiter], None]) -> None:
        self.callbacks.append(fn)
        super().add_done_callback(fn)

    def remove_done_callback(self, fn: Callable[[am.Waiter], None]) -> None:
        self.callbacks.remove(fn)
        super().remove_done_callback(fn)


def step(coro: Coroutine[Any, Any, Any]) -> None:
    """Run ``coro`` to its first suspension right now, as an eager task would.

    A local machine is only busy inside a handler, which is synchronous: this is how a helper
    called from there meets a queued mutation.
    """
    coro.send(None)


def finish(coro: Coroutine[Any, Any, Any]) -> Any:
    """Resume a coroutine suspended by ``step`` and return its result."""
    with pytest.raises(StopIteration) as stop:
        coro.send(None)
    return stop.value.value


# --- add_sync / remove_sync -----------------------------------------------------------------------


async def test_add1_sync_executed_at_once() -> None:
    mach = mk()
    assert await amhelp.add1_sync(mach, "A") == am.Executed
    assert mach.is1("A")


async def test_add1_sync_canceled_at_once() -> None:
    mach = mk()
    mach.bind_handlers({"AEnter": lambda e: False})
    assert await amhelp.add1_sync(mach, "A") == am.Canceled


async def test_add1_sync_waits_for_the_queued_mutation() -> None:
    """From a handler the add is queued; the helper answers once it ran, never a queue tick."""
    mach = mk()
    coro = amhelp.add1_sync(mach, "B", {"id": 1})
    seen: list[int] = []

    def a_state(e: am.Event) -> None:
        step(coro)
        seen.append(mach.queue_len())

    mach.bind_handlers({"AState": a_state, "BState": lambda e: seen.append(e.args["id"])})
    mach.add1("A")
    assert seen == [1, 1]  # queued from the handler, then run with its args
    assert finish(coro) == am.Executed


async def test_add1_sync_queued_then_canceled() -> None:
    mach = mk()
    coro = amhelp.add1_sync(mach, "B")
    mach.bind_handlers({"AState": lambda e: step(coro), "BEnter": lambda e: False})
    mach.add1("A")
    assert finish(coro) == am.Canceled


async def test_add1_sync_multi_state_needs_a_new_activation() -> None:
    """An active Multi state that refuses re-activation is still active, but it was Canceled."""
    mach = mk(A=St(), M=St(multi=True))
    mach.add1("M")
    coro = amhelp.add1_sync(mach, "M")
    mach.bind_handlers({"AState": lambda e: step(coro), "MEnter": lambda e: False})
    mach.add1("A")
    assert mach.is1("M")
    assert finish(coro) == am.Canceled


async def test_add1_sync_machine_disposed_while_queued() -> None:
    mach = mk()
    coro = amhelp.add1_sync(mach, "B")

    def a_state(e: am.Event) -> None:
        step(coro)
        e.machine.dispose()

    mach.bind_handlers({"AState": a_state})
    mach.add1("A")
    assert mach.is_disposed
    assert finish(coro) == am.Canceled


async def test_add1_sync_ctx_done_while_queued() -> None:
    mach = mk()
    ctx = am.Ctx()
    coro = amhelp.add1_sync(mach, "B", ctx=ctx)

    def a_state(e: am.Event) -> None:
        step(coro)
        ctx.cancel()

    mach.bind_handlers({"AState": a_state})
    mach.add1("A")
    with pytest.raises(asyncio.CancelledError):
        coro.send(None)
    assert mach.is1("B")  # the mutation itself stayed queued and ran


async def test_add_sync_many_states() -> None:
    mach = mk()
    coro = amhelp.add_sync(mach, ["B", "C"])
    mach.bind_handlers({"AState": lambda e: step(coro)})
    mach.add1("A")
    assert finish(coro) == am.Executed
    assert mach.is_(["A", "B", "C"])


async def test_remove1_sync_queued_then_canceled() -> None:
    mach = mk()
    mach.add1("B")
    coro = amhelp.remove1_sync(mach, "B")
    mach.bind_handlers({"AState": lambda e: step(coro), "BExit": lambda e: False})
    mach.add1("A")
    assert mach.is1("B")
    assert finish(coro) == am.Canceled


async def test_remove_sync() -> None:
    mach = mk()
    mach.add(["A", "B"])
    assert await amhelp.remove_sync(mach, ["A", "B"]) == am.Executed
    assert mach.not_(["A", "B"])
    coro = amhelp.remove1_sync(mach, "C")
    mach.bind_handlers({"AState": lambda e: step(coro)})
    mach.add(["A", "C"])
    assert finish(coro) == am.Executed
    assert mach.not1("C")


async def test_add1_sync_unknown_state() -> None:
    with pytest.raises(am.StateMissingError):
        await amhelp.add1_sync(mk(), "Nope")


# --- wait_for_all / wait_for_any ------------------------------------------------------------------


async def test_wait_for_all_already_done() -> None:
    mach = mk()
    mach.add(["A", "B"])
    await amhelp.wait_for_all(0, mach.when1("A"), mach.when1("B"))
    await amhelp.wait_for_all(0)


async def test_wait_for_all_resolves_later() -> None:
    mach = mk()
    loop = asyncio.get_running_loop()
    loop.call_soon(mach.add1, "A")
    loop.call_soon(mach.add1, "B")
    await amhelp.wait_for_all(1, mach.when1("A"), mach.when1("B"))
    assert mach.is_(["A", "B"])


async def test_wait_for_all_times_out() -> None:
    mach = mk()
    mach.add1("A")
    with pytest.raises(TimeoutError, match="wait_for_all"):
        await amhelp.wait_for_all(0.001, mach.when1("A"), mach.when1("B"))


async def test_wait_for_all_ctx_done() -> None:
    mach = mk()
    ctx = am.Ctx()
    asyncio.get_running_loop().call_soon(ctx.cancel)
    with pytest.raises(asyncio.CancelledError, match="ctx done"):
        await amhelp.wait_for_all(1, mach.when1("A"), ctx=ctx)
    with pytest.raises(asyncio.CancelledError):
        await amhelp.wait_for_all(None, ctx=ctx)  # already done


async def test_wait_for_all_waiter_cancelled_by_disposal() -> None:
    one, two = mk(), mk()
    asyncio.get_running_loop().call_soon(two.dispose)
    with pytest.raises(asyncio.CancelledError, match="waiter was cancelled"):
        await amhelp.wait_for_all(1, one.when1("A"), two.when1("A"))


async def test_wait_for_any() -> None:
    mach = mk()
    asyncio.get_running_loop().call_soon(mach.add1, "B")
    await amhelp.wait_for_any(1, mach.when1("A"), mach.when1("B"))
    assert mach.not1("A")
    with pytest.raises(TimeoutError, match="wait_for_any"):
        await amhelp.wait_for_any(0.001, mach.when1("A"), mach.when1("C"))
    with pytest.raises(ValueError, match="at least one"):
        await amhelp.wait_for_any(1)


async def test_wait_for_any_outlives_a_cancelled_waiter() -> None:
    """One disposed machine does not end the wait while another can still answer."""
    gone, alive = mk(), mk()
    loop = asyncio.get_running_loop()
    loop.call_soon(gone.dispose)  # first, then
    loop.call_soon(alive.add1, "A")
    await amhelp.wait_for_any(1, gone.when1("A"), alive.when1("A"))
    gone2 = mk()
    loop.call_soon(gone2.dispose)
    with pytest.raises(asyncio.CancelledError):
        await amhelp.wait_for_any(1, gone2.when1("A"), gone2.when1("B"))


async def test_group_when1() -> None:
    machs = [mk(), mk(), mk()]
    loop = asyncio.get_running_loop()
    for mach in machs:
        loop.call_soon(mach.add1, "A")
    await amhelp.wait_for_all(1, *amhelp.group_when1(machs, "A"))
    assert all(m.is1("A") for m in machs)
    with pytest.raises(am.StateMissingError):
        amhelp.group_when1(machs, "Nope")


async def test_wait_rejects_negative_timeout() -> None:
    with pytest.raises(ValueError, match="timeout"):
        await amhelp.wait_for_all(-1, mk().when1("A"))


class SpyCtx(am.Ctx):
    """A context that shows which callbacks are registered on it."""

    def __init__(self) -> None:
        super().__init__()
        self.callbacks: list[Callable[[am.Ctx], None]] = []

    def add_done_callback(self, fn: Callable[[am.Ctx], None]) -> None:
        if not self.done():
            self.callbacks.append(fn)
        super().add_done_callback(fn)

    def remove_done_callback(self, fn: Callable[[am.Ctx], None]) -> None:
        if fn in self.callbacks:
            self.callbacks.remove(fn)
        super().remove_done_callback(fn)


@pytest.mark.parametrize("how", ["timeout", "ctx", "caller cancelled"])
async def test_waits_leave_no_callbacks_behind(how: str) -> None:
    spy, ctx = Spy(), SpyCtx()
    if how == "timeout":
        with pytest.raises(TimeoutError):
            await amhelp.wait_for_all(0.001, spy, ctx=ctx)
    elif how == "ctx":
        asyncio.get_running_loop().call_soon(ctx.cancel)
        with pytest.raises(asyncio.CancelledError):
            await amhelp.wait_for_any(None, spy, ctx=ctx)
    else:
        task = asyncio.ensure_future(amhelp.wait_for_all(None, spy, ctx=ctx))
        await asyncio.sleep(0)
        assert spy.callbacks and ctx.callbacks
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert spy.callbacks == []
    assert ctx.callbacks == []


# --- wait_for_err_all / wait_for_err_any ----------------------------------------------------------


async def test_wait_for_err_all_resolves() -> None:
    mach = mk()
    asyncio.get_running_loop().call_soon(mach.add, ["A", "B"])
    await amhelp.wait_for_err_all(1, mach, mach.when1("A"), mach.when1("B"))


async def test_wait_for_err_all_raises_on_exception() -> None:
    mach = mk()
    boom = ValueError("boom")
    asyncio.get_running_loop().call_soon(mach.add_err, boom)
    with pytest.raises(am.ExceptionStateError) as raised:
        await amhelp.wait_for_err_all(1, mach, mach.when1("A"))
    assert raised.value.err is boom


async def test_wait_for_err_all_exception_already_active() -> None:
    mach = mk()
    boom = ValueError("old")
    mach.add_err(boom)
    with pytest.raises(am.ExceptionStateError) as raised:
        await amhelp.wait_for_err_all(1, mach, mach.when1("A"))
    assert raised.value.err is boom
    mach.add1("A")
    await amhelp.wait_for_err_all(1, mach, mach.when1("A"))  # done beats the error


async def test_wait_for_err_all_timeout_and_ctx() -> None:
    mach = mk()
    with pytest.raises(TimeoutError, match="wait_for_err_all"):
        await amhelp.wait_for_err_all(0.001, mach, mach.when1("A"))
    ctx = am.Ctx()
    asyncio.get_running_loop().call_soon(ctx.cancel)
    with pytest.raises(asyncio.CancelledError):
        await amhelp.wait_for_err_all(None, mach, mach.when1("A"), ctx=ctx)
    # the Exception subscriptions ended with the waits: adding an error later is harmless
    mach.add_err(ValueError("later"))


async def test_wait_for_err_any() -> None:
    mach = mk()
    asyncio.get_running_loop().call_soon(mach.add1, "B")
    await amhelp.wait_for_err_any(1, mach, mach.when1("A"), mach.when1("B"))
    asyncio.get_running_loop().call_soon(mach.add_err, KeyError("k"))
    with pytest.raises(am.ExceptionStateError):
        await amhelp.wait_for_err_any(1, mach, mach.when1("A"), mach.when1("C"))
    with pytest.raises(ValueError, match="at least one"):
        await amhelp.wait_for_err_any(1, mach)


# --- wait / interval / healthcheck ----------------------------------------------------------------


async def test_wait_full_time() -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await amhelp.wait(am.Ctx(), 0.002) is True
    assert loop.time() - start >= 0.0015


async def test_wait_ctx_ends_early() -> None:
    ctx = am.Ctx()
    asyncio.get_running_loop().call_soon(ctx.cancel)
    assert await amhelp.wait(ctx, 10) is False
    assert await amhelp.wait(ctx, 10) is False  # already done
    with pytest.raises(ValueError, match="seconds"):
        await amhelp.wait(ctx, -1)


async def test_interval_until_fn_returns_false() -> None:
    calls: list[int] = []

    def tick() -> bool:
        calls.append(1)
        return len(calls) < 3

    await amhelp.interval(am.Ctx(), 0.001, tick)
    assert len(calls) == 3


async def test_interval_until_ctx_done_async_fn() -> None:
    ctx = am.Ctx()
    calls: list[int] = []

    async def tick() -> None:
        calls.append(1)
        await asyncio.sleep(0)
        if len(calls) == 2:
            ctx.cancel()

    await amhelp.interval(ctx, 0.001, tick)
    assert len(calls) == 2
    with pytest.raises(ValueError, match="seconds"):
        await amhelp.interval(ctx, 0, tick)


async def test_interval_fn_error_propagates() -> None:
    def tick() -> None:
        raise KeyError("tick")

    with pytest.raises(KeyError):
        await amhelp.interval(am.Ctx(), 0.001, tick)


HEALTHY = {"A": St(), amhelp.HEALTHCHECK: St(multi=True)}


async def test_healthcheck_pings_until_ctx_done() -> None:
    mach = am.Machine(HEALTHY)
    ctx = am.Ctx()
    task = mach.fork(ctx, amhelp.healthcheck(mach, ctx, every=0.001))
    assert task is not None
    await amhelp.wait_for_all(1, mach.when_time1(amhelp.HEALTHCHECK, 5))  # three pings
    assert amhelp.activations(mach, amhelp.HEALTHCHECK) >= 3
    ctx.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_healthcheck_stops_on_dispose() -> None:
    mach = am.Machine(HEALTHY)
    task = asyncio.ensure_future(amhelp.healthcheck(mach, am.Ctx(), every=10))
    await asyncio.sleep(0)
    mach.dispose()
    await asyncio.wait_for(task, 1)  # ends quietly, long before the next ping


async def test_healthcheck_needs_the_state() -> None:
    with pytest.raises(am.StateMissingError, match="Healthcheck"):
        await amhelp.healthcheck(mk())


# --- ReqAdd1 / ReqAdd -----------------------------------------------------------------------------


def refusing(times: int) -> tuple[am.Machine, list[float]]:
    """A machine whose A refuses the first ``times`` adds; returns the loop time of every try."""
    mach = mk()
    tries: list[float] = []
    loop = asyncio.get_running_loop()

    def a_enter(e: am.Event) -> bool:
        tries.append(loop.time())
        return len(tries) > times

    mach.bind_handlers({"AEnter": a_enter})
    return mach, tries


def gaps(stamps: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(stamps)]


async def test_req_add1_executed_first_try() -> None:
    mach, tries = refusing(0)
    assert await amhelp.ReqAdd1(mach, "A").run() == am.Executed
    assert len(tries) == 1


async def test_req_add1_retries_canceled_adds() -> None:
    mach, tries = refusing(3)
    req = amhelp.ReqAdd1(mach, "A", {"x": 1}, retries=5, delay=0.001)
    assert await req.run(am.Ctx()) == am.Executed
    assert len(tries) == 4
    assert mach.is1("A")


async def test_req_add1_gives_up_after_retries() -> None:
    mach, tries = refusing(100)
    assert await amhelp.ReqAdd1(mach, "A", retries=3, delay=0.001).run() == am.Canceled
    assert len(tries) == 4  # the first try and 3 retries


async def test_req_add1_delay_doubles() -> None:
    mach, tries = refusing(100)
    await amhelp.ReqAdd1(mach, "A", retries=4, delay=0.001, backoff=1.0).run()
    for gap, pause in zip(gaps(tries), [0.001, 0.002, 0.004, 0.008], strict=True):
        assert gap >= pause * 0.9


async def test_req_add1_delay_capped_at_backoff() -> None:
    """Doubling from 1 ms, the 10th pause would be 512 ms; capped, every pause is about 1 ms."""
    mach, tries = refusing(100)
    await amhelp.ReqAdd1(mach, "A", retries=10, delay=0.001, backoff=0.001).run()
    assert len(tries) == 11
    assert all(0.0009 <= gap < 0.25 for gap in gaps(tries))


async def test_req_add1_bounded_by_max_duration() -> None:
    """After the second try (at 50 ms) the next pause (100 ms) would end past 125 ms: give up.
    (Wide margins: a busy machine, or Pyodide, may be late by tens of milliseconds.)"""
    mach, tries = refusing(100)
    req = amhelp.ReqAdd1(mach, "A", delay=0.05, max_duration=0.125)
    assert await req.run() == am.Canceled
    assert len(tries) == 2


async def test_req_add1_ctx_done_during_pause() -> None:
    mach = mk()
    ctx = am.Ctx()
    tries: list[int] = []

    def a_enter(e: am.Event) -> bool:
        tries.append(1)
        if len(tries) == 2:
            ctx.cancel()
        return False

    mach.bind_handlers({"AEnter": a_enter})
    with pytest.raises(asyncio.CancelledError, match="ReqAdd1"):
        await amhelp.ReqAdd1(mach, "A", delay=0.001).run(ctx)
    assert len(tries) == 2


async def test_req_add_many_states() -> None:
    mach, tries = refusing(1)
    assert await amhelp.ReqAdd(mach, ["A", "B"], delay=0.001).run() == am.Executed
    assert mach.is_(["A", "B"])
    assert len(tries) == 2


def test_req_bad_input() -> None:
    mach = mk()
    with pytest.raises(am.StateMissingError):
        amhelp.ReqAdd1(mach, "Nope")
    with pytest.raises(am.StateMissingError):
        amhelp.ReqAdd(mach, ["A", "Nope"])
    with pytest.raises(TypeError):
        amhelp.ReqAdd(mach, "A")
    with pytest.raises(ValueError, match="retries"):
        amhelp.ReqAdd1(mach, "A", retries=-1)
    with pytest.raises(ValueError, match="delay"):
        amhelp.ReqAdd1(mach, "A", delay=-0.1)


# --- cant_* / state facts -------------------------------------------------------------------------


def test_cant_add_and_remove() -> None:
    mach = mk()
    mach.bind_handlers({"AEnter": lambda e: False, "BExit": lambda e: False})
    assert amhelp.cant_add1(mach, "A")
    assert amhelp.cant_add(mach, ["A", "B"])
    assert not amhelp.cant_add1(mach, "B")
    mach.add(["B", "C"])
    assert amhelp.cant_remove1(mach, "B")
    assert amhelp.cant_remove(mach, ["B", "C"])
    assert not amhelp.cant_remove1(mach, "C")
    assert mach.active_states() == ["B", "C"]  # dry runs changed nothing


def test_cant_add_from_a_handler_raises() -> None:
    mach = mk()
    errors: list[BaseException] = []

    def a_state(e: am.Event) -> None:
        try:
            amhelp.cant_add1(e.machine, "B")
        except RuntimeError as err:
            errors.append(err)

    mach.bind_handlers({"AState": a_state})
    mach.add1("A")
    assert len(errors) == 1
    assert "busy" in str(errors[0])


def test_activations_and_is_multi() -> None:
    mach = mk(A=St(), M=St(multi=True))
    assert amhelp.activations(mach, "M") == 0
    mach.add1("M")
    mach.add1("M")  # re-activation
    mach.add1("A")
    mach.remove1("A")
    mach.add1("A")
    assert amhelp.activations(mach, "M") == 2
    assert amhelp.activations(mach, "A") == 2
    assert amhelp.is_multi(mach, "M")
    assert not amhelp.is_multi(mach, "A")
    assert amhelp.is_multi(mach, am.EXCEPTION)
    with pytest.raises(am.StateMissingError):
        amhelp.activations(mach, "Nope")
    with pytest.raises(am.StateMissingError):
        amhelp.is_multi(mach, "Nope")


# --- panic_to_err ---------------------------------------------------------------------------------

ERRS = {"A": St(), "ErrNetwork": St(require=[am.EXCEPTION])}


def test_panic_to_err_context_manager() -> None:
    mach = am.Machine(ERRS)
    boom = ValueError("boom")
    with amhelp.panic_to_err(mach):
        raise boom
    assert mach.err() is boom
    assert mach.is1(am.EXCEPTION)
    with amhelp.panic_to_err(mach):
        pass
    assert amhelp.activations(mach, am.EXCEPTION) == 1


def test_panic_to_err_state_and_args() -> None:
    mach = am.Machine(ERRS)
    seen: list[Any] = []
    mach.bind_handlers({"ErrNetworkState": lambda e: seen.append(e.args["url"])})
    with amhelp.panic_to_err(mach, "ErrNetwork", {"url": "ws://x"}):
        raise ConnectionError("down")
    assert mach.is_(["ErrNetwork", am.EXCEPTION])
    assert seen == ["ws://x"]
    with pytest.raises(am.StateMissingError):
        amhelp.panic_to_err(mach, "ErrNope")


def test_panic_to_err_decorator() -> None:
    mach = am.Machine(ERRS)

    @amhelp.panic_to_err(mach)
    def parse(text: str) -> int:
        return int(text)

    assert parse("3") == 3
    assert parse.__name__ == "parse"
    assert parse("x") is None
    assert isinstance(mach.err(), ValueError)


async def test_panic_to_err_async_decorator() -> None:
    mach = am.Machine(ERRS)

    @amhelp.panic_to_err(mach, "ErrNetwork")
    async def fetch(fail: bool) -> str:
        await asyncio.sleep(0)
        if fail:
            raise ConnectionError("down")
        return "data"

    assert await fetch(False) == "data"
    assert not mach.is_err()
    assert await fetch(True) is None
    assert mach.is_(["ErrNetwork", am.EXCEPTION])


def test_panic_to_err_lets_base_exceptions_through() -> None:
    mach = am.Machine(ERRS)
    with pytest.raises(asyncio.CancelledError), amhelp.panic_to_err(mach):
        raise asyncio.CancelledError
    assert not mach.is_err()


# --- together ------------------------------------------------------------------------------------


async def test_worker_flow() -> None:
    """A worker that refuses work until it is ready, driven with the helpers."""
    worker = am.Machine({"Ready": St(), "Working": St(require=["Ready"])})
    ns = SimpleNamespace(done=0)

    def working_state(e: am.Event) -> None:
        ns.done += 1

    worker.bind_handlers({"WorkingState": working_state})
    asyncio.get_running_loop().call_later(0.003, worker.add1, "Ready")
    res = await amhelp.ReqAdd1(worker, "Working", delay=0.001).run()
    assert res == am.Executed
    assert ns.done == 1
    await amhelp.wait_for_all(1, worker.when(["Ready", "Working"]))
