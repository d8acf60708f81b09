"""Pipes: states of one machine driving states of another (upstream's ``pkg/states/pipes``).

A pipe is a final handler bound on the *source* (``FooState``, ``FooEnd``, ``ExceptionState``)
that mutates the *target* through its public API only, so either end can be a local machine or a
remote one. The source never waits for the target, and the target still negotiates: it may
cancel. A local target mutates (or queues) at once; mutations into an async target (one whose
mutations return a coroutine, like a remote machine) are sent one at a time, in the order the
source's handlers ran.

``bind``, ``bind_ready``, ``bind_err`` and ``bind_many`` bind the handlers and return a
``Pipe``; it is closed (its handlers detached) when either machine is disposed, or by
``pipe.close()``. ``add`` and ``remove`` return bare handlers for binding by hand.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from ._errors import StateMissingError
from ._machine import Event
from ._result import Executed, Result
from ._schema import EXCEPTION
from ._transition import ERR_ARGS_KEY, ErrArgs
from ._waiter import Waiter

__all__ = [
    "Pipe",
    "Source",
    "Target",
    "add",
    "bind",
    "bind_err",
    "bind_many",
    "bind_ready",
    "remove",
]

Handler = Callable[[Event], None]
"""A final handler, as ``add()`` and ``remove()`` return."""


class _Machine(Protocol):
    """What a pipe needs of either end; ``am.Machine`` and a remote machine both have it."""

    @property
    def id(self) -> str: ...

    def state_names(self) -> list[str]: ...

    def when_disposed(self) -> Waiter: ...


class Source(_Machine, Protocol):
    """The machine whose states are piped: handlers get bound on it."""

    def bind_handlers(self, obj: object, *, id: str | None = None) -> str: ...

    def detach_handlers(self, binding_id: str) -> None: ...

    def handlers(self) -> list[str]: ...

    def add_err(
        self, err: BaseException | None, args: dict[str, Any] | None = None, /
    ) -> Awaitable[Result]: ...


class Target(_Machine, Protocol):
    """The machine being mutated. Mutations may return a ``Result`` or an awaitable of one."""

    def add(
        self, states: Sequence[str], args: dict[str, Any] | None = None, /
    ) -> Awaitable[Result]: ...

    def remove(
        self, states: Sequence[str], args: dict[str, Any] | None = None, /
    ) -> Awaitable[Result]: ...

    def add_err_state(
        self, state: str, err: BaseException | None, args: dict[str, Any] | None = None, /
    ) -> Awaitable[Result]: ...

    def is_(self, states: Sequence[str], /) -> bool: ...

    def err(self) -> BaseException | None: ...


# ---------------------------------------------------------------------------- handlers


def add(source: Source, target: Target, state: str, target_state: str | None = None) -> Handler:
    """A handler (bind it as ``<state>State``) adding ``target_state`` (default: ``state``) to
    ``target``, with a copy of the source transition's args.

    An error target state (``Exception``, or ``Err`` + a capital, like ``ErrNetwork``) comes with
    ``Exception``; when the args carry the source's error, it is added with ``add_err_state``, so
    ``target.err()`` is that error.
    """
    name = target_state or state
    _require(source, [state])
    _require(target, [name])

    def pipe_add(e: Event) -> None:
        _add(source, target, name, dict(e.args))

    return pipe_add


def remove(source: Source, target: Target, state: str, target_state: str | None = None) -> Handler:
    """A handler (bind it as ``<state>End``) removing ``target_state`` (default: ``state``) from
    ``target``, with a copy of the source transition's args."""
    name = target_state or state
    _require(source, [state])
    _require(target, [name])

    def pipe_remove(e: Event) -> None:
        args = dict(e.args)
        _send(source, target, lambda: target.remove([name], args))

    return pipe_remove


def _add(source: Source, target: Target, state: str, args: dict[str, Any]) -> None:
    if not _is_error_state(state):
        _send(source, target, lambda: target.add([state], args))
        return
    info = args.get(ERR_ARGS_KEY)
    if not isinstance(info, ErrArgs):
        _send(source, target, lambda: target.add(list(dict.fromkeys([state, EXCEPTION])), args))
        return
    # The target already holds this very error: piping it again would ping-pong forever between
    # machines that pipe errors to each other (Exception is Multi).
    if target.err() is info.err and target.is_([state, EXCEPTION]):
        return
    _send(source, target, lambda: target.add_err_state(state, info.err, args))


def _is_error_state(state: str) -> bool:
    return state == EXCEPTION or (state.startswith("Err") and state[3:4].isupper())


# ---------------------------------------------------------------------------- bound pipes

_binding_ids = itertools.count(1)


class Pipe:
    """Handlers bound on ``source`` that mutate ``target``, detached by ``close()``.

    Closed on its own when either machine is disposed, so a pipe never outlives its ends.
    """

    __slots__ = ("_closed", "binding_id", "source", "target")

    def __init__(self, source: Source, target: Target, handlers: dict[str, Handler]) -> None:
        for end, mach in (("source", source), ("target", target)):
            if mach.when_disposed().done():
                raise ValueError(f"cannot pipe: the {end} machine {mach.id} is disposed")
        self.source = source
        self.target = target
        self._closed = False
        self.binding_id = source.bind_handlers(handlers, id=f"pipe{next(_binding_ids)}-{target.id}")
        """The id of the handlers bound on ``source``."""
        source.when_disposed().add_done_callback(self._end_disposed)
        target.when_disposed().add_done_callback(self._end_disposed)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Detach the handlers; mutations already piped still reach the target. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for mach in (self.source, self.target):
            mach.when_disposed().remove_done_callback(self._end_disposed)
        # a disposed source has dropped its handlers already
        if self.binding_id in self.source.handlers():
            self.source.detach_handlers(self.binding_id)

    def _end_disposed(self, _: Waiter) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<Pipe {self.binding_id} {self.source.id} -> {self.target.id} {state}>"


def bind(
    source: Source, target: Target, state: str, target_on: str, target_off: str | None = None
) -> Pipe:
    """Pipe ``state`` of ``source`` into ``target``.

    Without ``target_off``, ``target_on`` mirrors ``state``: added when it activates, removed when
    it ends. With ``target_off``, ``state`` switches between two target states: activating adds
    ``target_on`` and removes ``target_off``, ending adds ``target_off`` and removes
    ``target_on`` (e.g. ``"Connected"`` to ``"SrcConnected"``/``"SrcDisconnected"``). Args are
    passed along.
    """
    if target_off == target_on:
        raise ValueError(f"bind: target_on and target_off are both {target_on!r}")
    if target_off is None:
        return Pipe(
            source,
            target,
            {
                state + "State": add(source, target, state, target_on),
                state + "End": remove(source, target, state, target_on),
            },
        )
    on_add = add(source, target, state, target_on)
    on_remove = remove(source, target, state, target_off)
    off_add = add(source, target, state, target_off)
    off_remove = remove(source, target, state, target_on)

    def switch_on(e: Event) -> None:
        on_add(e)
        on_remove(e)

    def switch_off(e: Event) -> None:
        off_add(e)
        off_remove(e)

    return Pipe(source, target, {state + "State": switch_on, state + "End": switch_off})


def bind_ready(
    source: Source, target: Target, state: str = "Ready", target_state: str | None = None
) -> Pipe:
    """Mirror the source's readiness (``state``, default ``Ready``) as ``target_state`` (default:
    the same name) on the target."""
    return bind(source, target, state, target_state or state)


def bind_err(source: Source, target: Target, target_state: str = EXCEPTION) -> Pipe:
    """Pipe the source's errors into the target: each ``Exception`` of the source adds
    ``target_state`` (default ``Exception``; an ``ErrFoo`` state also adds ``Exception``) with the
    same error. Errors are not removed: recovering is the target's business."""
    return Pipe(source, target, {EXCEPTION + "State": add(source, target, EXCEPTION, target_state)})


def bind_many(
    source: Source,
    target: Target,
    states: Sequence[str],
    target_states: Sequence[str] | None = None,
    *,
    prefix: str = "",
) -> Pipe:
    """Mirror several states with one binding: ``states[i]`` onto ``target_states[i]``, or onto
    ``prefix + states[i]`` (default: the same names)."""
    if isinstance(states, str):
        raise TypeError(f"states must be a list of state names, got the string {states!r}")
    if not states:
        raise ValueError("bind_many needs at least one state")
    if len(set(states)) != len(states):
        raise ValueError(f"bind_many: duplicate states in {list(states)}")
    if target_states is None:
        names = [prefix + s for s in states]
    elif prefix:
        raise ValueError("bind_many takes target_states or prefix, not both")
    elif isinstance(target_states, str) or len(target_states) != len(states):
        raise ValueError("bind_many: target_states must list one target state per state")
    else:
        names = list(target_states)
    handlers: dict[str, Handler] = {}
    for state, name in zip(states, names, strict=True):
        handlers[state + "State"] = add(source, target, state, name)
        handlers[state + "End"] = remove(source, target, state, name)
    return Pipe(source, target, handlers)


def _require(mach: _Machine, states: Sequence[str]) -> None:
    names = mach.state_names()
    missing = [s for s in states if s not in names]
    if missing:
        raise StateMissingError(missing, mach.id)


# ---------------------------------------------------------------------------- delivery


Mutate = Callable[[], Awaitable[Result]]


def _send(source: Source, target: Target, mutate: Mutate) -> None:
    """Run ``mutate`` now, unless earlier mutations into the same async target are pending."""
    outbox = _outboxes.get(id(target))
    if outbox is not None:
        outbox.pending.append((source, mutate))
        return
    sending = mutate()
    if not isinstance(sending, Result):
        _Outbox(source, target, sending)


class _Outbox:
    """Mutations piped into one async target: awaited one at a time, in order.

    Exists while some are pending (a task drains it, then it is gone); cancelled, pending
    mutations dropped, when the target is disposed. A failed mutation becomes ``add_err`` on the
    source it was piped from.
    """

    __slots__ = ("first", "pending", "target", "task")

    def __init__(self, source: Source, target: Target, first: Awaitable[Result]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            _close(first)
            raise RuntimeError(
                f"piping into {target.id} needs a running event loop: its mutations are async"
            ) from None
        self.target = target
        self.first = first
        self.pending: deque[tuple[Source, Mutate]] = deque()
        self.task = loop.create_task(self._drain(source))
        _outboxes[id(target)] = self
        target.when_disposed().add_done_callback(self._cancel)
        self.task.add_done_callback(self._finished)

    async def _drain(self, source: Source) -> None:
        sending = self.first
        try:
            while True:
                try:
                    await sending
                except Exception as err:
                    await source.add_err(err)
                if not self.pending:
                    return
                source, mutate = self.pending.popleft()
                try:
                    sending = mutate()
                except Exception as err:
                    await source.add_err(err)
                    sending = Executed
        finally:
            # at once, not in a done callback: a mutation piped in between would be lost
            self._unregister()

    def _cancel(self, _: Waiter) -> None:
        self.pending.clear()
        self.task.cancel()

    def _unregister(self) -> None:
        if _outboxes.get(id(self.target)) is self:
            del _outboxes[id(self.target)]
        self.target.when_disposed().remove_done_callback(self._cancel)

    def _finished(self, _: asyncio.Task[None]) -> None:
        # a task cancelled before its first step never ran _drain's cleanup, nor awaited `first`
        self._unregister()
        _close(self.first)


def _close(sending: Awaitable[Result]) -> None:
    """Close a coroutine that will not be awaited (no "never awaited" warning); no-op otherwise."""
    if inspect.iscoroutine(sending):
        sending.close()


_outboxes: dict[int, _Outbox] = {}
"""Pending deliveries by ``id(target)``; an entry keeps its target alive until drained."""
