"""Reusable state sets (upstream's ``pkg/states``): Basic, Connected and Disposed.

Each mixin is a typed state set (an ``am.StatesBase`` subclass) plus its schema. Combine them with
class inheritance and ``am.schema_merge``::

    class MyStates(BasicStates, ConnectedStates):
        Foo: str

    schema = am.schema_merge(BasicSchema, ConnectedSchema, {MyStates.Foo: am.State()})

Connected and Disposed relate to ``Start``: merge them with ``BasicSchema`` (or define ``Start``).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

from ._ctx import Ctx
from ._machine import Event
from ._schema import EXCEPTION, Schema, State
from ._states_base import StatesBase

__all__ = [
    "DISPOSED_ARG_HANDLER",
    "BasicSchema",
    "BasicStates",
    "ConnectedSchema",
    "ConnectedStates",
    "DisposedHandlers",
    "DisposedSchema",
    "DisposedStates",
    "Disposer",
]


class BasicStates(StatesBase):
    """Errors, and the lifecycle every long-running machine shares."""

    ErrNetwork: str
    """A network error (adds ``Exception``)."""
    ErrHandlerTimeout: str
    """A handler ran longer than ``handler_timeout`` (adds ``Exception``)."""
    Start: str
    """The machine should be working; removing it stops the machine (``dispose()`` does)."""
    Ready: str
    """The machine is able to work; needs ``Start``."""
    Healthcheck: str
    """A periodic "still alive" ping."""
    Heartbeat: str
    """A periodic integrity check."""


BasicSchema: Schema = {
    # declared so relations to it survive upstream's parsing; Multi like the built-in one
    BasicStates.Exception: State(multi=True),
    BasicStates.ErrNetwork: State(multi=True, add=(EXCEPTION,), require=(EXCEPTION,)),
    BasicStates.ErrHandlerTimeout: State(multi=True, add=(EXCEPTION,), require=(EXCEPTION,)),
    BasicStates.Start: State(),
    BasicStates.Ready: State(require=(BasicStates.Start,)),
    BasicStates.Healthcheck: State(multi=True),
    BasicStates.Heartbeat: State(),
}


class ConnectedStates(StatesBase):
    """A connection's status: exactly one of the four phases at a time, ``Disconnected`` by default.

    Needs ``Start`` (from ``BasicStates``): removing ``Start`` drops the connection.
    """

    Connecting: str
    Connected: str
    Disconnecting: str
    Disconnected: str
    """Auto: comes back whenever no other phase is active."""
    ErrConnecting: str
    """A detailed connection error; needs ``Exception``."""


_PHASES = (
    ConnectedStates.Connecting,
    ConnectedStates.Connected,
    ConnectedStates.Disconnecting,
    ConnectedStates.Disconnected,
)

ConnectedSchema: Schema = {
    ConnectedStates.Connecting: State(require=(BasicStates.Start,), remove=_PHASES),
    ConnectedStates.Connected: State(require=(BasicStates.Start,), remove=_PHASES),
    ConnectedStates.Disconnecting: State(remove=_PHASES),
    ConnectedStates.Disconnected: State(auto=True, remove=_PHASES),
    ConnectedStates.ErrConnecting: State(require=(EXCEPTION,)),
}


class DisposedStates(StatesBase):
    """State-based disposal: registered disposers run before the machine is disposed.

    A machine with this mixin should be stopped with ``add1(Disposing)`` rather than
    ``dispose()``, so the disposers run. Bind ``DisposedHandlers`` (or a subclass).
    """

    RegisterDisposal: str
    """Registers the disposer passed in the args under ``DISPOSED_ARG_HANDLER``."""
    Disposing: str
    """Runs the disposers, then adds ``Disposed``."""
    Disposed: str
    """The disposers ran; its handler calls ``mach.dispose()``."""


DisposedSchema: Schema = {
    DisposedStates.RegisterDisposal: State(multi=True),
    DisposedStates.Disposing: State(remove=(BasicStates.Start, EXCEPTION)),
    DisposedStates.Disposed: State(
        remove=(BasicStates.Start, EXCEPTION, DisposedStates.Disposing),
    ),
}

DISPOSED_ARG_HANDLER = "DisposedArgHandler"
"""The args key of the disposer passed to ``RegisterDisposal``."""

Disposer = Callable[[str, Ctx], Awaitable[None] | None]
"""``fn(machine_id, ctx)`` releases a resource, maybe ``async``; ``ctx`` ends with ``Disposing``."""


class DisposedHandlers:
    """Handlers of ``DisposedStates``; bind them, or inherit them in your handler class.

    Disposers run in registration order, each after the previous one finished. When any of them
    is ``async def``, they all run in one task (``mach.fork``, cancelled when ``Disposing`` ends);
    otherwise they run inside ``DisposingState``, so sync-only disposal needs no event loop. A
    disposer that raises is reported with ``add_err`` and does not stop the others: disposal
    always completes unless ``Disposing`` is removed meanwhile.
    """

    def __init__(self) -> None:
        self.disposers: list[Disposer] = []

    def RegisterDisposalEnter(self, e: Event) -> bool:
        if callable(e.args.get(DISPOSED_ARG_HANDLER)):
            return True
        if not e.mutation.is_check:
            e.machine.add_err(
                TypeError(f"RegisterDisposal: args[{DISPOSED_ARG_HANDLER!r}] must be a callable")
            )
        return False

    def RegisterDisposalState(self, e: Event) -> None:
        self.disposers.append(e.args[DISPOSED_ARG_HANDLER])

    def DisposingState(self, e: Event) -> None:
        mach = e.machine
        ctx = mach.new_state_ctx(DisposedStates.Disposing)
        disposers = list(self.disposers)
        if any(inspect.iscoroutinefunction(fn) for fn in disposers):
            mach.fork(ctx, _dispose_async(e, ctx, disposers))
            return
        for fn in disposers:
            result = _call_disposer(e, fn, ctx)
            if inspect.isawaitable(result):
                _close(result)
                mach.add_err(TypeError(f"disposer {fn!r} returned an awaitable: make it async def"))
        mach.ev_add1(e, DisposedStates.Disposed)

    def DisposedState(self, e: Event) -> None:
        e.machine.dispose()


def _call_disposer(e: Event, fn: Disposer, ctx: Ctx) -> Awaitable[None] | None:
    """Call ``fn``; an exception it raises goes to ``add_err``."""
    try:
        return fn(e.machine.id, ctx)
    except Exception as err:
        e.machine.add_err(err)
        return None


def _close(awaitable: Awaitable[None]) -> None:
    """Close a coroutine that will never be awaited (no "never awaited" warning)."""
    if inspect.iscoroutine(awaitable):
        awaitable.close()


async def _dispose_async(e: Event, ctx: Ctx, disposers: list[Disposer]) -> None:
    """Run ``disposers`` in order, awaiting the async ones, then add ``Disposed``."""
    mach = e.machine
    for fn in disposers:
        if ctx.done():
            return
        result = _call_disposer(e, fn, ctx)
        if inspect.isawaitable(result):
            try:
                await result
            except Exception as err:
                mach.add_err(err)
    if not ctx.done():
        mach.ev_add1(e, DisposedStates.Disposed)
