"""Handler dispatch: who is called for a transition, in which order, and what they answered.

Handlers are found once per binding (``_handlers.Binding``) and indexed per state here, so a
transition looks up only the states it changes. The dispatcher never calls back into the machine:
a handler that raises is recorded in ``errors`` for the engine to deal with, and an ``async def``
final handler is handed to the injected ``spawn`` function (docs/semantics.md#handlers).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from ._clock import StateSet
from ._errors import HandlerError, HandlerTimeoutError
from ._handlers import Binding
from ._log import EVERYTHING, OPS
from ._observer import Observer
from ._schema import State
from ._transition import Transition

EventFactory = Callable[[Any, str, Transition], Any]
"""``event(machine, name, tx)``: builds what a handler receives (``am.Event``)."""
Spawn = Callable[[str, Coroutine[Any, Any, Any]], None]
"""``spawn(handler_name, coro)``: starts an ``async def`` final handler as a task."""
Handlers = tuple[str, tuple["Entry", ...]]
"""A handler name and its entries, in bind order."""


class Entry:
    """One handler of one binding."""

    __slots__ = ("binding_id", "call", "fn", "is_async", "num")

    def __init__(self, num: int, binding_id: str, fn: Callable[..., Any], is_async: bool) -> None:
        self.num = num
        self.binding_id = binding_id
        self.fn = fn
        """The handler."""
        self.call = fn
        """What the fast path calls: the handler, or the handler between tracer hooks."""
        self.is_async = is_async


class Dispatcher:
    """Calls the negotiation and final handlers of a transition, in the documented order.

    ``negotiate()`` answers ``None`` (go ahead), the name of the handler that refused, or (auto
    transitions) the set of auto states whose own handlers refused. ``finals()`` answers ``None``
    or where a handler raised. Errors go to ``errors`` as ``(handler name, exception)``.
    """

    __slots__ = (
        "any_enter",
        "any_state",
        "bindings",
        "by_name",
        "end",
        "enter",
        "errors",
        "event",
        "exit",
        "has_pairs",
        "observer",
        "owner",
        "plain",
        "spawn",
        "state",
        "timeout",
    )

    def __init__(
        self,
        owner: object,
        event: EventFactory,
        spawn: Spawn,
        observer: Observer,
        timeout: float | None,
    ) -> None:
        self.owner = owner
        self.event = event
        self.spawn = spawn
        self.observer = observer
        self.timeout = timeout
        self.bindings: list[Binding] = []
        self.errors: list[tuple[str, Exception]] = []
        self.by_name: dict[str, tuple[Entry, ...]] = {}
        """Event name -> handlers in bind order."""
        self.enter: dict[str, Handlers] = {}
        self.exit: dict[str, Handlers] = {}
        self.state: dict[str, Handlers] = {}
        self.end: dict[str, Handlers] = {}
        self.any_enter: Handlers | None = None
        self.any_state: Handlers | None = None
        self.has_pairs = False
        self.plain = True
        """Handlers can be called without tracing, logging, timing or pair handlers."""

    def refresh(self) -> None:
        """Recompute ``plain`` and what the fast path calls (after binding, or a change of
        tracers or log level)."""
        obs = self.observer
        self.plain = not (self.has_pairs or obs.level >= OPS or self.timeout is not None)
        traced = "handler_start" in obs.hooks or "handler_end" in obs.hooks
        for name, entries in self.by_name.items():
            for entry in entries:
                entry.call = self._traced(entry, name) if traced else entry.fn

    def _traced(self, entry: Entry, name: str) -> Callable[[Any], Any]:
        """``entry``'s handler between the tracers' ``handler_start`` and ``handler_end`` hooks
        (the end also when it raises), so a traced machine keeps the fast path."""
        obs, fn, binding_id = self.observer, entry.fn, entry.binding_id
        starts, ends = "handler_start" in obs.hooks, "handler_end" in obs.hooks

        def call(e: Any) -> Any:
            tx = e.transition
            if starts:
                obs.trace("handler_start", tx, binding_id, name)
            try:
                return fn(e)
            finally:
                if ends:
                    obs.trace("handler_end", tx, binding_id, name)

        return call

    # ------------------------------------------------------------------ binding

    def bind(self, binding: Binding, states: Sequence[str]) -> None:
        self.bindings.append(binding)
        self.rebuild(states)

    def detach(self, binding_id: str, states: Sequence[str]) -> None:
        for i, binding in enumerate(self.bindings):
            if binding.id == binding_id:
                del self.bindings[i]
                self.rebuild(states)
                return
        raise KeyError(f"handlers not bound: {binding_id}")

    def clear(self) -> None:
        self.bindings.clear()
        self.rebuild(())

    def rebuild(self, states: Sequence[str]) -> None:
        """Index the bound handlers by event name and by state (after binding or a new schema)."""
        by_name: dict[str, list[Entry]] = {}
        for num, binding in enumerate(self.bindings):
            for name, fn in binding.handlers.items():
                entry = Entry(num, binding.id, fn, name in binding.is_async)
                by_name.setdefault(name, []).append(entry)
        self.by_name = {name: tuple(entries) for name, entries in by_name.items()}

        def table(suffix: str) -> dict[str, Handlers]:
            out: dict[str, Handlers] = {}
            for s in states:
                entries = self.by_name.get(s + suffix)
                if entries:
                    out[s] = (s + suffix, entries)
            return out

        self.enter, self.exit = table("Enter"), table("Exit")
        self.state, self.end = table("State"), table("End")
        any_enter, any_state = self.by_name.get("AnyEnter"), self.by_name.get("AnyState")
        self.any_enter = ("AnyEnter", any_enter) if any_enter else None
        self.any_state = ("AnyState", any_state) if any_state else None
        self.has_pairs = any(b.has_pairs for b in self.bindings)
        self.refresh()

    # ------------------------------------------------------------------ negotiation

    def negotiate(
        self,
        tx: Transition,
        exits: Sequence[str],
        enters: Sequence[str],
        active: StateSet,
        autos: Mapping[str, State] | None,
    ) -> str | set[str] | None:
        """Run ``Exit``, ``Enter``, self, state-to-state and ``AnyEnter`` handlers.

        The first refusal (``is False``) or error cancels, except that in an auto transition
        (``autos``) one tied to an auto state (its ``Enter``, self or ``<X><State>`` handler) only
        drops that state.
        """
        if not self.plain or autos is not None:
            return self._negotiate_observed(tx, exits, enters, active, autos)
        event, owner = self.event, self.owner
        name = ""
        try:  # the exit and enter loops are the same, written out twice: the hot path
            table = self.exit
            if table:
                for s in exits:
                    handlers = table.get(s)
                    if handlers is not None:
                        name = handlers[0]
                        e = event(owner, name, tx)
                        for entry in handlers[1]:
                            if entry.call(e) is False:
                                return name
            table = self.enter
            if table:
                for s in enters:
                    handlers = table.get(s)
                    if handlers is not None:
                        name = handlers[0]
                        e = event(owner, name, tx)
                        for entry in handlers[1]:
                            if entry.call(e) is False:
                                return name
            handlers = self.any_enter
            if handlers is not None:
                name = "AnyEnter"
                e = event(owner, name, tx)
                for entry in handlers[1]:
                    if entry.call(e) is False:
                        return name
        except Exception as err:
            self.errors.append((name, err))
            return name
        return None

    def _negotiate_observed(
        self,
        tx: Transition,
        exits: Sequence[str],
        enters: Sequence[str],
        active: StateSet,
        autos: Mapping[str, State] | None,
    ) -> str | set[str] | None:
        """The same order with state-to-state handlers, tracing, logging and timing."""
        by_name = self.by_name
        dropped: set[str] = set()
        # (handler name, the state a refusal may drop in an auto transition)
        order: list[tuple[str, str | None]] = [(s + "Exit", None) for s in exits]
        order += [(s + "Enter", s) for s in enters]
        if self.has_pairs:
            target, before = tx._target_order(), tx._before_order()
            if tx.mutation.type.value != "remove":
                order += [(s + s, s) for s in target if s in active]
            order += [(b + a, a) for b in before for a in target if a != b]
        order.append(("AnyEnter", None))
        for name, state in order:
            entries = by_name.get(name)
            if not entries or (state is not None and state in dropped):
                continue
            ok, err = self.call(tx, name, entries, final=False)
            if ok:
                continue
            self._log_refusal(tx, name, err, self_handler=state is not None and name == state * 2)
            if state is not None and autos is not None and autos[state].auto:
                dropped.add(state)
                continue
            return name
        if self.observer.level >= EVERYTHING:
            for name in [s + "Exit" for s in exits] + [s + "Enter" for s in enters] + ["AnyEnter"]:
                if name not in by_name:
                    self.observer.log(EVERYTHING, f"[handle] {name}")
        return dropped or None

    def _log_refusal(
        self, tx: Transition, name: str, err: Exception | None, self_handler: bool
    ) -> None:
        """``[cancel] (<target>) by <handler>`` (or ``by recover``/``by timeout`` for errors)."""
        obs = self.observer
        if obs.level < OPS:
            return
        if err is not None:
            why = "timeout" if isinstance(err, HandlerTimeoutError) else "recover"
            obs.log(OPS, f"[cancel] ({' '.join(tx._target_order())}) by {why}")
        else:
            kind = "cancel:self" if self_handler else "cancel"
            obs.log(OPS, f"[{kind}] ({' '.join(tx._target_order())}) by {name}")

    # ------------------------------------------------------------------ finals

    def finals(self, tx: Transition, exits: Sequence[str], enters: Sequence[str]) -> int | None:
        """Run ``End``, ``State`` and ``AnyState`` handlers, all bindings of each even after one
        raised. ``None`` when none raised, else -1 (an ``End`` raised: nothing to roll back) or
        the index in ``enters`` of the state whose ``State`` handler raised."""
        final = self._final if self.plain else self._final_observed
        table = self.end
        if table:
            for s in exits:
                handlers = table.get(s)
                if handlers is not None and not final(tx, handlers):
                    return -1
        table = self.state
        if table:
            for i, s in enumerate(enters):
                handlers = table.get(s)
                if handlers is not None and not final(tx, handlers):
                    return i
        if self.any_state is not None:
            final(tx, self.any_state)
        return None

    def _final(self, tx: Transition, handlers: Handlers) -> bool:
        name, entries = handlers
        e = self.event(self.owner, name, tx)
        ok = True
        for entry in entries:
            try:
                if entry.is_async:
                    self.spawn(name, entry.call(e))
                else:
                    entry.call(e)
            except Exception as err:
                self.errors.append((name, err))
                ok = False
        return ok

    def _final_observed(self, tx: Transition, handlers: Handlers) -> bool:
        return self.call(tx, handlers[0], handlers[1], final=True)[0]

    # ------------------------------------------------------------------ one handler, observed

    def call(
        self, tx: Transition, name: str, entries: Sequence[Entry], final: bool
    ) -> tuple[bool, Exception | None]:
        """Call ``name`` on every binding with tracer hooks, ``[handler]`` lines and the timeout.

        Negotiation stops at the first refusal or error; finals call every binding.
        """
        obs = self.observer
        e = self.event(self.owner, name, tx)
        timeout = self.timeout
        starts, ends = "handler_start" in obs.hooks, "handler_end" in obs.hooks
        logs = obs.level >= OPS
        ok, first_err = True, None
        for entry in entries:
            if starts:
                obs.trace("handler_start", tx, entry.binding_id, name)
            if logs:
                obs.log(OPS, f"[handler:{entry.num}] {name}")
            started = time.monotonic() if timeout is not None else 0.0
            err: Exception | None = None
            try:
                ret = entry.fn(e)
                if timeout is not None and time.monotonic() - started > timeout:
                    if entry.is_async:
                        ret.close()
                    raise HandlerTimeoutError(f"handler timeout: {name} from {entry.binding_id}")
                if entry.is_async:
                    self.spawn(name, ret)
            except Exception as raised:
                err = raised
                self.errors.append((name, raised))
            if ends:
                obs.trace("handler_end", tx, entry.binding_id, name)
            if err is not None:
                ok, first_err = False, first_err or err
                if not final:
                    return False, err
            elif not final and ret is False:
                return False, None
        return ok, first_err


def spawn_error(name: str) -> HandlerError:
    """An ``async def`` handler ran without a running event loop."""
    return HandlerError(f"async handler {name} needs a running event loop")
