"""Helpers for driving machines from async code (upstream's ``pkg/helpers``).

``import asyncmachine.helpers as amhelp``. Mutations that wait for their queued turn, waits with
timeouts, retried requests and loops bound to a ``Ctx``. None of them starts a task: they run in
the caller's task and leave no callback behind on the waiters and contexts they watch.

Timeouts raise ``TimeoutError``. A ``ctx`` that ends, or a waiter cancelled by its machine's
disposal, ends a wait early with ``asyncio.CancelledError`` (as awaiting the waiter would);
``wait()`` alone answers ``False`` instead, so it can drive a loop.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, overload

from ._ctx import Ctx
from ._errors import ExceptionStateError, StateMissingError
from ._machine import Machine
from ._result import Canceled, Executed, Result
from ._schema import A
from ._waiter import Waiter

__all__ = [
    "HEALTHCHECK",
    "ReqAdd",
    "ReqAdd1",
    "activations",
    "add1_sync",
    "add_sync",
    "cant_add",
    "cant_add1",
    "cant_remove",
    "cant_remove1",
    "group_when1",
    "healthcheck",
    "interval",
    "is_multi",
    "panic_to_err",
    "remove1_sync",
    "remove_sync",
    "wait",
    "wait_for_all",
    "wait_for_any",
    "wait_for_err_all",
    "wait_for_err_any",
]

HEALTHCHECK = "Healthcheck"
"""The state ``healthcheck()`` adds; Multi in ``asyncmachine.states.BasicSchema``."""

_P = ParamSpec("_P")
_R = TypeVar("_R")

# ---------------------------------------------------------------------------- waiting


class _End(enum.Enum):
    """Why a wait ended."""

    RESOLVED = enum.auto()
    TIMED_OUT = enum.auto()
    CTX_DONE = enum.auto()
    CANCELLED = enum.auto()
    """Too many waiters were cancelled (their machine disposed) to ever resolve."""
    ERRORED = enum.auto()


async def _settle(
    waiters: Sequence[Waiter],
    need: int,
    timeout: float | None,
    ctx: Ctx | None,
    err: Waiter | None = None,
) -> _End:
    """Wait until ``need`` of ``waiters`` resolved (or ``err`` did), and say why the wait ended.

    One future and plain callbacks: no task is started, and every callback is removed on the way
    out, whichever way that is (including the caller's own cancellation).
    """
    if timeout is not None and timeout < 0:
        raise ValueError(f"timeout must be >= 0 seconds, got {timeout}")
    if ctx is not None and ctx.done():
        return _End.CTX_DONE
    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[_End] = loop.create_future()
    spare = len(waiters) - need  # how many waiters may be cancelled with `need` still in reach
    resolved = cancelled = 0

    def end(why: _End) -> None:
        if not outcome.done():
            outcome.set_result(why)

    def on_waiter(w: Waiter) -> None:
        nonlocal resolved, cancelled
        if w.cancelled():
            cancelled += 1
            if cancelled > spare:
                end(_End.CANCELLED)
        else:
            resolved += 1
            if resolved >= need:
                end(_End.RESOLVED)

    def on_err(w: Waiter) -> None:
        if not w.cancelled():
            end(_End.ERRORED)

    def on_ctx(_: Ctx) -> None:
        end(_End.CTX_DONE)

    if need <= 0:
        end(_End.RESOLVED)
    for w in waiters:
        w.add_done_callback(on_waiter)
    if err is not None:
        err.add_done_callback(on_err)
    if ctx is not None:
        ctx.add_done_callback(on_ctx)
    timer: asyncio.TimerHandle | None = None
    if timeout is not None:
        deadline = loop.time() + timeout

        def on_timer() -> None:
            # timers may fire a little early (Pyodide rounds to whole milliseconds)
            nonlocal timer
            remaining = deadline - loop.time()
            if remaining > 0:
                timer = loop.call_later(remaining, on_timer)
            else:
                end(_End.TIMED_OUT)

        timer = loop.call_later(timeout, on_timer)
    try:
        return await outcome
    finally:
        for w in waiters:
            w.remove_done_callback(on_waiter)
        if err is not None:
            err.remove_done_callback(on_err)
        if ctx is not None:
            ctx.remove_done_callback(on_ctx)
        if timer is not None:
            timer.cancel()


def _raise_unless_resolved(why: _End, name: str, timeout: float | None) -> None:
    if why is _End.TIMED_OUT:
        raise TimeoutError(f"{name}: timed out after {timeout}s")
    if why is _End.CTX_DONE:
        raise asyncio.CancelledError(f"{name}: ctx done")
    if why is _End.CANCELLED:
        raise asyncio.CancelledError(f"{name}: a waiter was cancelled (machine disposed?)")


async def wait_for_all(timeout: float | None, *waiters: Waiter, ctx: Ctx | None = None) -> None:
    """Wait until every waiter resolved, e.g. ``mach.when1("Ready")`` of several machines.

    ``timeout`` is in seconds (``None``: no limit).
    """
    why = await _settle(waiters, len(waiters), timeout, ctx)
    _raise_unless_resolved(why, "wait_for_all", timeout)


async def wait_for_any(timeout: float | None, *waiters: Waiter, ctx: Ctx | None = None) -> None:
    """Wait until one of the waiters resolved, e.g. ``when1("Done")`` or ``when1("Failed")``.

    Cancelled waiters drop out; the wait fails only once all of them are cancelled.
    """
    if not waiters:
        raise ValueError("wait_for_any needs at least one waiter")
    why = await _settle(waiters, 1, timeout, ctx)
    _raise_unless_resolved(why, "wait_for_any", timeout)


async def wait_for_err_all(
    timeout: float | None, mach: Machine, *waiters: Waiter, ctx: Ctx | None = None
) -> None:
    """``wait_for_all`` that fails fast with ``am.ExceptionStateError`` once ``mach`` is in
    ``Exception`` (already, or before the waiters resolved); its ``err`` is ``mach.err()``."""
    await _wait_or_err(timeout, mach, waiters, len(waiters), ctx, "wait_for_err_all")


async def wait_for_err_any(
    timeout: float | None, mach: Machine, *waiters: Waiter, ctx: Ctx | None = None
) -> None:
    """``wait_for_any`` that fails fast with ``am.ExceptionStateError`` like
    ``wait_for_err_all``."""
    if not waiters:
        raise ValueError("wait_for_err_any needs at least one waiter")
    await _wait_or_err(timeout, mach, waiters, 1, ctx, "wait_for_err_any")


async def _wait_or_err(
    timeout: float | None,
    mach: Machine,
    waiters: Sequence[Waiter],
    need: int,
    ctx: Ctx | None,
    name: str,
) -> None:
    # A private ctx ends the Exception subscription with the wait, so none piles up on `mach`.
    own = ctx.child() if ctx is not None else Ctx()
    try:
        why = await _settle(waiters, need, timeout, ctx, err=mach.when_err(own))
    finally:
        own.cancel()
    if why is _End.ERRORED:
        raise ExceptionStateError(mach.err())
    _raise_unless_resolved(why, name, timeout)


def group_when1(machs: Iterable[Machine], state: str, ctx: Ctx | None = None) -> list[Waiter]:
    """``when1(state)`` of every machine, for ``wait_for_all``/``wait_for_any``.

    Raises ``am.StateMissingError`` for the first machine without ``state``.
    """
    return [mach.when1(state, ctx) for mach in machs]


async def wait(ctx: Ctx, seconds: float) -> bool:
    """Sleep for ``seconds``: ``True`` when the full time passed, ``False`` once ``ctx`` ended.

    Answers instead of raising, so a loop can read ``while await amhelp.wait(ctx, 1): ...``.
    """
    if seconds < 0:
        raise ValueError(f"seconds must be >= 0, got {seconds}")
    # no waiters to resolve: only the timer or the ctx ends it
    return await _settle((), 1, seconds, ctx) is not _End.CTX_DONE


async def interval(
    ctx: Ctx, seconds: float, fn: Callable[[], bool | Awaitable[bool | None] | None]
) -> None:
    """Call ``fn`` every ``seconds`` until it returns ``False`` or ``ctx`` ends.

    Ticks keep a fixed rate; ticks missed while a slow ``fn`` ran are skipped, not bunched up.
    ``fn`` may be ``async``; what it raises propagates (``mach.fork`` turns it into ``add_err``).
    """
    if seconds <= 0:
        raise ValueError(f"seconds must be > 0, got {seconds}")
    loop = asyncio.get_running_loop()
    start = loop.time()
    ticks = 1
    while await wait(ctx, max(0.0, start + ticks * seconds - loop.time())):
        ret = fn()
        if inspect.isawaitable(ret):
            ret = await ret
        if ret is False:
            return
        ticks = max(ticks + 1, int((loop.time() - start) / seconds) + 1)


async def healthcheck(mach: Machine, ctx: Ctx | None = None, every: float = 5.0) -> None:
    """Add ``Healthcheck`` every ``every`` seconds until ``ctx`` ends or ``mach`` is disposed.

    Run it as a task: ``mach.fork(mach.ctx, amhelp.healthcheck(mach))``. Healthcheck never
    triggers auto states, so it is safe to ping often.
    """
    if not mach.has1(HEALTHCHECK):
        raise StateMissingError([HEALTHCHECK], mach.id)
    # either end stops the loop: a child of ctx, also cancelled with the machine's ctx
    own = (mach.ctx if ctx is None else ctx).child()

    def stop(_: Ctx) -> None:
        own.cancel()

    def ping() -> None:
        mach.add1(HEALTHCHECK)

    mach.ctx.add_done_callback(stop)
    try:
        await interval(own, every, ping)
    finally:
        mach.ctx.remove_done_callback(stop)
        own.cancel()


# ---------------------------------------------------------------------------- mutations


async def add_sync(
    mach: Machine, states: Sequence[str], args: A | None = None, *, ctx: Ctx | None = None
) -> Result:
    """``mach.add()`` that is never queued: when the machine is busy, wait for the mutation's turn.

    For code that needs the outcome, not a queue tick: a coroutine that may run while the machine
    is busy (an eager task started by a handler), or a remote machine's queued result.
    Returns ``Executed`` when all ``states`` are active afterwards (a Multi state activated
    anew), else ``Canceled``, also when the machine is disposed meanwhile. A done ``ctx`` stops
    the wait with ``asyncio.CancelledError`` (the mutation stays queued).
    """
    return await _mutate_sync(mach, list(states), True, lambda: mach.add(states, args), ctx)


async def add1_sync(
    mach: Machine, state: str, args: A | None = None, *, ctx: Ctx | None = None
) -> Result:
    """``add_sync`` for one state: ``Executed`` or ``Canceled``, never a queue tick."""
    return await _mutate_sync(mach, [state], True, lambda: mach.add1(state, args), ctx)


async def remove_sync(
    mach: Machine, states: Sequence[str], args: A | None = None, *, ctx: Ctx | None = None
) -> Result:
    """``mach.remove()`` that is never queued: ``Executed`` when none of ``states`` is active
    afterwards, else ``Canceled``."""
    return await _mutate_sync(mach, list(states), False, lambda: mach.remove(states, args), ctx)


async def remove1_sync(
    mach: Machine, state: str, args: A | None = None, *, ctx: Ctx | None = None
) -> Result:
    """``remove_sync`` for one state."""
    return await _mutate_sync(mach, [state], False, lambda: mach.remove1(state, args), ctx)


async def _mutate_sync(
    mach: Machine,
    states: list[str],
    adding: bool,
    mutate: Callable[[], Awaitable[Result]],
    ctx: Ctx | None,
) -> Result:
    # ticks from before the mutation tell a Multi state's re-activation from its old activation
    ticks = [mach.tick(s) for s in states]
    res = await mutate()
    if not res.is_queued:
        return res
    why = await _settle([mach.when_queue(res)], 1, None, ctx)
    if why is _End.CTX_DONE:
        raise asyncio.CancelledError(f"{'add' if adding else 'remove'}_sync: ctx done")
    if why is _End.CANCELLED:
        return Canceled
    if adding:
        schema = mach.schema
        ok = all(
            mach.is1(s) and (not schema[s].multi or mach.tick(s) > tick)
            for s, tick in zip(states, ticks, strict=True)
        )
    else:
        ok = mach.not_(states)
    return Executed if ok else Canceled


def cant_add(mach: Machine, states: Sequence[str], args: A | None = None) -> bool:
    """True if adding ``states`` would be canceled (a dry run: negotiation runs, nothing changes).

    Needs an idle machine: from inside a handler the check could only be queued, so it raises
    ``RuntimeError``.
    """
    return _refused(mach.can_add(states, args), "cant_add")


def cant_add1(mach: Machine, state: str, args: A | None = None) -> bool:
    return _refused(mach.can_add1(state, args), "cant_add1")


def cant_remove(mach: Machine, states: Sequence[str], args: A | None = None) -> bool:
    """True if removing ``states`` would be canceled (a dry run, like ``cant_add``)."""
    return _refused(mach.can_remove(states, args), "cant_remove")


def cant_remove1(mach: Machine, state: str, args: A | None = None) -> bool:
    return _refused(mach.can_remove1(state, args), "cant_remove1")


def _refused(res: Result, name: str) -> bool:
    if res.is_queued:
        raise RuntimeError(f"{name}: the machine is busy (called from a handler?); no answer yet")
    return res == Canceled


# ---------------------------------------------------------------------------- retried requests


def _check_policy(retries: int, delay: float, backoff: float, max_duration: float) -> None:
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    if delay < 0 or backoff < 0 or max_duration < 0:
        raise ValueError("delay, backoff and max_duration must be >= 0 seconds")


async def _retry(
    req: ReqAdd1 | ReqAdd, mutate: Callable[[], Awaitable[Result]], ctx: Ctx | None
) -> Result:
    """Repeat ``mutate`` while it is canceled, pausing ``req.delay`` doubled each time (at most
    ``req.backoff``); stop after ``req.retries`` retries or when the next one would start past
    ``req.max_duration``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + req.max_duration
    pause = min(req.delay, req.backoff)
    for retry in range(req.retries + 1):
        res = await mutate()
        if res != Canceled:
            return res
        if retry == req.retries or loop.time() + pause > deadline:
            break
        if not await wait(ctx if ctx is not None else Ctx.background(), pause):
            raise asyncio.CancelledError(f"{type(req).__name__}: ctx done")
        pause = min(pause * 2, req.backoff)
    return Canceled


@dataclass(frozen=True)
class ReqAdd1:
    """A failsafe ``add1``: retried while canceled, e.g. while a worker refuses new work.

    ``await ReqAdd1(mach, "WorkRequested").run(ctx)`` returns the first result that is not
    ``Canceled`` (a queue tick counts as accepted), or ``Canceled`` once the retries or
    ``max_duration`` (seconds) are used up. The pause starts at ``delay`` and doubles after each
    canceled try, up to ``backoff``. A done ``ctx`` stops it with ``asyncio.CancelledError``.
    ``dataclasses.replace(req, retries=3)`` makes a variant.
    """

    mach: Machine
    state: str
    args: A | None = None
    retries: int = 10
    delay: float = 0.1
    backoff: float = 5.0
    max_duration: float = 5.0

    def __post_init__(self) -> None:
        _check_policy(self.retries, self.delay, self.backoff, self.max_duration)
        if not self.mach.has1(self.state):
            raise StateMissingError([self.state], self.mach.id)

    async def run(self, ctx: Ctx | None = None) -> Result:
        return await _retry(self, lambda: self.mach.add1(self.state, self.args), ctx)


@dataclass(frozen=True)
class ReqAdd:
    """``ReqAdd1`` for several states, added together."""

    mach: Machine
    states: Sequence[str]
    args: A | None = None
    retries: int = 10
    delay: float = 0.1
    backoff: float = 5.0
    max_duration: float = 5.0

    def __post_init__(self) -> None:
        _check_policy(self.retries, self.delay, self.backoff, self.max_duration)
        if isinstance(self.states, str):
            raise TypeError(f"states must be a list of state names, got {self.states!r}")
        missing = [s for s in self.states if not self.mach.has1(s)]
        if missing:
            raise StateMissingError(missing, self.mach.id)

    async def run(self, ctx: Ctx | None = None) -> Result:
        return await _retry(self, lambda: self.mach.add(self.states, self.args), ctx)


# ---------------------------------------------------------------------------- state facts


def activations(mach: Machine, state: str) -> int:
    """How many times ``state`` was activated, Multi re-activations included (from its tick)."""
    if not mach.has1(state):
        raise StateMissingError([state], mach.id)
    return (mach.tick(state) + 1) // 2


def is_multi(mach: Machine, state: str) -> bool:
    """Whether ``state`` re-activates on every add (``State(multi=True)``)."""
    schema = mach.schema
    if state not in schema:
        raise StateMissingError([state], mach.id)
    return schema[state].multi


# ---------------------------------------------------------------------------- errors


class panic_to_err:
    """Turn an exception raised by user code into ``mach.add_err`` instead of letting it escape.

    For code outside handlers (loop callbacks, UI events, plain tasks), which the machine's own
    ``panic_to_exception`` does not cover. A context manager or a decorator of sync and async
    functions (a decorated function then returns ``None`` when it raised)::

        with amhelp.panic_to_err(mach):
            parse(data)

        @amhelp.panic_to_err(mach, "ErrNetwork")
        async def fetch() -> None: ...

    With ``state``, ``add_err_state(state, err)`` is used. Only ``Exception`` subclasses are
    caught; cancellation and ``KeyboardInterrupt`` pass through.
    """

    __slots__ = ("args", "mach", "state")

    def __init__(self, mach: Machine, state: str | None = None, args: A | None = None) -> None:
        if state is not None and not mach.has1(state):
            raise StateMissingError([state], mach.id)
        self.mach = mach
        self.state = state
        self.args = args

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if not isinstance(exc, Exception):
            return False
        if self.state is None:
            self.mach.add_err(exc, self.args)
        else:
            self.mach.add_err_state(self.state, exc, self.args)
        return True

    @overload
    def __call__(
        self, fn: Callable[_P, Coroutine[Any, Any, _R]]
    ) -> Callable[_P, Coroutine[Any, Any, _R | None]]: ...

    @overload
    def __call__(self, fn: Callable[_P, _R]) -> Callable[_P, _R | None]: ...

    def __call__(self, fn: Callable[_P, Any]) -> Callable[_P, Any]:
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def guarded_async(*args: _P.args, **kwargs: _P.kwargs) -> Any:
                with self:
                    return await fn(*args, **kwargs)
                return None

            return guarded_async

        @functools.wraps(fn)
        def guarded(*args: _P.args, **kwargs: _P.kwargs) -> Any:
            with self:
                return fn(*args, **kwargs)
            return None

        return guarded
