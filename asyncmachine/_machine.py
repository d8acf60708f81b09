"""The machine: clocks, the mutation queue, transitions and handler dispatch.

This module is the I/O-free core. It imports no asyncio: handlers run synchronously inside the queue
loop, waiters are resolved in place, and only awaiting a waiter or forking a task touches the event
loop (through ``_aio``, imported on demand).
"""

from __future__ import annotations

import builtins
import random
import time as _time
import traceback
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._ctx import Ctx
from ._errors import (
    HandlerError,
    HandlerTimeoutError,
    NestedEvalError,
    SchemaError,
    StateMissingError,
)
from ._handlers import Binding
from ._log import ArgsMapper, Logger, LogLevel, format_args, log_args, stdlib_logger
from ._resolver import Resolver
from ._result import Canceled, Executed, Queued, Result
from ._schema import EXCEPTION, Schema, State, parse_schema
from ._subscriptions import Subscriptions
from ._time import Time
from ._transition import (
    ERR_ARGS_KEY,
    ErrArgs,
    Event,
    Mutation,
    MutationSource,
    MutationType,
    PanicInfo,
    Transition,
)
from ._view import ClockView
from ._waiter import Waiter, cancelled_waiter, resolved_waiter

if TYPE_CHECKING:
    import asyncio

    from ._tracer import Tracer

ADD, REMOVE, SET, EVAL = MutationType.ADD, MutationType.REMOVE, MutationType.SET, MutationType.EVAL
_HEALTH = ("Healthcheck", "Heartbeat")
_CHANGES, _OPS, _DECISIONS, _EVERYTHING = 2, 3, 4, 5


@dataclass(frozen=True, slots=True)
class StateCtxInfo:
    """What a state context belongs to: ``Ctx.value`` of ``new_state_ctx()``."""

    machine_id: str
    state: str
    tick: int


@dataclass(frozen=True, slots=True)
class _StateNames:
    """Handler names of one state, built once per schema instead of once per transition."""

    enter: str
    exit: str
    state: str
    end: str
    self_: str


class _Entry:
    """One handler of one binding, as dispatched."""

    __slots__ = ("binding", "fn", "is_async", "num")

    def __init__(self, num: int, binding: Binding, fn: Callable[..., Any], is_async: bool) -> None:
        self.num = num
        self.binding = binding
        self.fn = fn
        self.is_async = is_async


class _Breakpoint:
    __slots__ = ("added", "removed", "strict")

    def __init__(self, added: Iterable[str], removed: Iterable[str], strict: bool) -> None:
        self.added = frozenset(added)
        self.removed = frozenset(removed)
        self.strict = strict


class Machine(ClockView):
    """A clock-based multi-state machine (see the package docs and ``docs/decisions.md``)."""

    def __init__(
        self,
        schema: Mapping[str, State],
        *,
        id: str | None = None,
        parent: Machine | str | None = None,
        log_level: LogLevel | int = LogLevel.NOTHING,
        logger: Logger | None = None,
        log_id: bool = True,
        handler_timeout: float | None = None,
        queue_limit: int = 1000,
        tracers: Iterable[Tracer] = (),
        panic_to_exception: bool = True,
        tags: Iterable[str] = (),
    ) -> None:
        parsed, conflicts = parse_schema(schema)
        self._id = id if id is not None else f"{random.getrandbits(64):016x}"
        if isinstance(parent, Machine):
            self._parent_id: str | None = parent.id
        else:
            self._parent_id = parent
        self._tags = list(dict.fromkeys(tags))
        self._log_level = LogLevel(log_level)
        self._logger: Logger = logger or stdlib_logger
        self._log_prefix = f"[{self._id[:5]}] " if log_id else ""
        self._args_mapper: ArgsMapper | None = None
        self._disposing = False
        self._disposed = False
        self._handler_timeout = handler_timeout
        self._queue_limit = queue_limit
        self._panic_to_exception = panic_to_exception

        self._clock: dict[str, int] = {}
        self._active: list[str] = []
        self._active_set: builtins.set[str] = set()
        self._set_schema(parsed, sorted(parsed))
        self._verified = False

        self._queue: deque[Mutation] = deque()
        self._queue_tick = 1
        self._pending_ticks = 0
        self._machine_tick = 0
        self._processing = False
        self._in_eval = False
        self._transition: Transition | None = None
        self._bindings: list[Binding] = []
        self._dispatch: dict[str, list[_Entry]] = {}
        """Event name -> handlers in bind order; rebuilt on (un)binding, read per transition."""
        self._has_pairs = False
        self._ever_bound = False
        self._tracers: list[Tracer] = list(tracers)
        self._slow_calls = False
        self._update_slow_calls()
        self._breakpoints: list[_Breakpoint] = []
        self._err: BaseException | None = None
        self._reraise: Exception | None = None
        self._on_error: list[Callable[[Machine, BaseException], None]] = []
        self._on_change: list[Callable[[Machine, Time, Time], None]] = []
        self._on_dispose: list[Callable[[str], None]] = []
        self._ctx = Ctx()
        self._state_ctxs: dict[str, Ctx] = {}
        self._subs = Subscriptions()
        self._disposed_waiter: Waiter | None = None

        for tracer in self._tracers:
            self._call_tracer(tracer, "machine_init", self)
        if isinstance(parent, Machine):
            parent._trace("new_submachine", parent, self)
        for conflict in conflicts:
            self.add_err(SchemaError(conflict))

    def _set_schema(self, parsed: Schema, names: list[str]) -> None:
        self._schema = parsed
        self._names = names
        self._index = {name: i for i, name in enumerate(names)}
        self._resolver = Resolver(parsed, names)
        self._multi = {n for n in names if parsed[n].multi}
        self._handler_names = {
            n: _StateNames(n + "Enter", n + "Exit", n + "State", n + "End", n + n) for n in names
        }
        for name in names:
            self._clock.setdefault(name, 0)
        cycle = self._resolver.require_cycle
        if cycle is not None:
            self._log(_CHANGES, f"[resolver] relation error: state {cycle} has a Require cycle")

    # ------------------------------------------------------------------ properties

    @property
    def parent_id(self) -> str | None:
        return self._parent_id

    @property
    def tags(self) -> list[str]:
        return list(self._tags)

    @property
    def schema(self) -> Schema:
        """A copy of the parsed schema (§1.2)."""
        return dict(self._schema)

    @property
    def ctx(self) -> Ctx:
        """The machine's context, cancelled at the end of ``dispose()``."""
        return self._ctx

    @property
    def is_disposed(self) -> bool:
        return self._disposed

    @property
    def transition(self) -> Transition | None:
        """The transition being processed, or ``None`` when the machine is idle."""
        return self._transition

    @property
    def states_verified(self) -> bool:
        return self._verified

    @property
    def log_level(self) -> LogLevel:
        return self._log_level

    def __str__(self) -> str:
        return self.string()

    def __repr__(self) -> str:
        return f"<Machine {self._id} {self.string()}>"

    # ------------------------------------------------------------------ mutations

    def add(self, states: Sequence[str], args: dict[str, Any] | None = None) -> Result:
        """Activate ``states`` (and what they imply), keeping the active ones."""
        return self._mutate(ADD, self._called(states), args)

    def add1(self, state: str, args: dict[str, Any] | None = None) -> Result:
        if state not in self._schema:
            raise StateMissingError([state], self._id)
        return self._mutate(ADD, [state], args)

    def remove(self, states: Sequence[str], args: dict[str, Any] | None = None) -> Result:
        """Deactivate ``states`` (and what requires them)."""
        return self._mutate(REMOVE, self._called(states), args)

    def remove1(self, state: str, args: dict[str, Any] | None = None) -> Result:
        if state not in self._schema:
            raise StateMissingError([state], self._id)
        return self._mutate(REMOVE, [state], args)

    def set(self, states: Sequence[str], args: dict[str, Any] | None = None) -> Result:
        """Make ``states`` the called set; other active states stay only if relations keep them."""
        return self._mutate(SET, self._called(states), args)

    def toggle(self, states: Sequence[str], args: dict[str, Any] | None = None) -> Result:
        """Remove ``states`` if all are active, else add them."""
        called = self._called(states)
        if self._disposing:
            return Canceled
        if all(s in self._active_set for s in called):
            return self._mutate(REMOVE, called, args)
        return self._mutate(ADD, called, args)

    def toggle1(self, state: str, args: dict[str, Any] | None = None) -> Result:
        return self.toggle([state], args)

    def add_err(self, err: BaseException | None, args: dict[str, Any] | None = None) -> Result:
        """Store ``err`` for ``err()`` and activate ``Exception`` with it in the args (§8)."""
        return self.add_err_state(EXCEPTION, err, args)

    def add_err_state(
        self,
        state: str,
        err: BaseException | None,
        args: dict[str, Any] | None = None,
        *,
        _source: MutationSource | None = None,
    ) -> Result:
        """Activate the error state ``state`` together with ``Exception`` (§8)."""
        called = self._called1(state)
        if self._disposing or err is None or _is_cancellation(err):
            return Canceled
        if len(self._queue) >= self._queue_limit:
            return Canceled
        self._err = err
        trace = "".join(traceback.format_exception(err)) if err.__traceback__ else ""
        for fn in self._on_error:
            fn(self, err)
        merged = dict(args) if args else {}
        merged[ERR_ARGS_KEY] = ErrArgs(err, trace)
        if state != EXCEPTION:
            called = [state, EXCEPTION]
        return self._enqueue(Mutation(ADD, called, merged, source=_source))

    def can_add(self, states: Sequence[str], args: dict[str, Any] | None = None) -> Result:
        """Would adding ``states`` be accepted? Negotiation handlers run; nothing changes (§3.6)."""
        return self._check(ADD, self._called(states), args)

    def can_add1(self, state: str, args: dict[str, Any] | None = None) -> Result:
        return self._check(ADD, self._called1(state), args)

    def can_remove(self, states: Sequence[str], args: dict[str, Any] | None = None) -> Result:
        return self._check(REMOVE, self._called(states), args)

    def can_remove1(self, state: str, args: dict[str, Any] | None = None) -> Result:
        return self._check(REMOVE, self._called1(state), args)

    # mutations caused by a handler event: they record their source (§3.1)

    def ev_add(self, e: Event, states: Sequence[str], args: dict[str, Any] | None = None) -> Result:
        return self._mutate(ADD, self._called(states), args, _source(e))

    def ev_add1(self, e: Event, state: str, args: dict[str, Any] | None = None) -> Result:
        return self._mutate(ADD, self._called1(state), args, _source(e))

    def ev_remove(
        self, e: Event, states: Sequence[str], args: dict[str, Any] | None = None
    ) -> Result:
        return self._mutate(REMOVE, self._called(states), args, _source(e))

    def ev_remove1(self, e: Event, state: str, args: dict[str, Any] | None = None) -> Result:
        return self._mutate(REMOVE, self._called1(state), args, _source(e))

    def ev_toggle(
        self, e: Event, states: Sequence[str], args: dict[str, Any] | None = None
    ) -> Result:
        called = self._called(states)
        mtype = REMOVE if self._active_set.issuperset(called) else ADD
        return self._mutate(mtype, called, args, _source(e))

    def ev_toggle1(self, e: Event, state: str, args: dict[str, Any] | None = None) -> Result:
        return self.ev_toggle(e, [state], args)

    def ev_add_err(
        self, e: Event, err: BaseException | None, args: dict[str, Any] | None = None
    ) -> Result:
        return self.ev_add_err_state(e, EXCEPTION, err, args)

    def ev_add_err_state(
        self, e: Event, state: str, err: BaseException | None, args: dict[str, Any] | None = None
    ) -> Result:
        return self.add_err_state(state, err, args, _source=_source(e))

    def _mutate(
        self,
        mtype: MutationType,
        called: list[str],
        args: dict[str, Any] | None,
        source: MutationSource | None = None,
    ) -> Result:
        if self._disposing:
            return Canceled
        queue = self._queue
        if not self._processing and not queue and self._queue_limit > 0:
            # idle: the mutation runs now, as if queued and dequeued at once
            mut = Mutation(mtype, called, {} if args is None else args)
            if source is not None:
                mut.source = source
            self._queue_tick += 1
            mut.queue_tick = self._queue_tick
            if self._tracers:
                self._trace("mutation_queued", self, mut)
            self._process_queue(mut)
            return mut.result
        if len(queue) >= self._queue_limit and not self._let_through(mtype, called):
            self._log(_OPS, f"[queue:skipped] queue limit reached for [{mtype}] {' '.join(called)}")
            return Canceled
        if self._processing and queue:
            if not args and not self._multi.intersection(called):
                last = queue[-1]
                if (
                    last.type is mtype
                    and not last.args
                    and not last.is_check
                    and not last.is_auto
                    and last.eval_fn is None
                    and len(last.called) == len(called)
                    and set(last.called) == set(called)
                ):
                    self._log(
                        _OPS, f"[queue:skipped] Duplicate detected for [{mtype}] {' '.join(called)}"
                    )
                    return Executed
        elif (
            mtype is REMOVE and self._processing and not any(s in self._active_set for s in called)
        ):
            return Executed
        mut = Mutation(mtype, called, args if args is not None else {})
        if source is not None:
            mut.source = source
        return self._enqueue(mut)

    def _let_through(self, mtype: MutationType, called: list[str]) -> bool:
        """Past the queue limit, one Exception still gets in (and out)."""
        if EXCEPTION not in called:
            return False
        if mtype is ADD:
            return EXCEPTION not in self._active_set
        if mtype is REMOVE:
            return EXCEPTION in self._active_set
        return False

    def _enqueue(self, mut: Mutation) -> Result:
        self._pending_ticks += 1
        mut.queue_tick = self._queue_tick + self._pending_ticks
        self._queue.append(mut)
        if self._tracers:
            self._trace("mutation_queued", self, mut)
        if self._processing:
            if self._log_level >= _OPS:
                self._log(
                    _OPS, f"[queue:{mut.type}] {' '.join(mut.called)}{self._fmt_args(mut.args)}"
                )
            return Result(mut.queue_tick)
        self._process_queue()
        return Result(mut.result)

    def _prepend(self, mut: Mutation) -> None:
        self._queue.appendleft(mut)
        if self._tracers:
            self._trace("mutation_queued", self, mut)
        if self._log_level >= _OPS:
            self._log(_OPS, f"[prepend:{mut.type}] {' '.join(mut.called)}")

    def _check(self, mtype: MutationType, called: list[str], args: dict[str, Any] | None) -> Result:
        if self._disposing:
            return Canceled
        mut = Mutation(mtype, called, args if args is not None else {}, is_check=True)
        self._prepend(mut)
        if self._processing:
            return Queued
        self._process_queue()
        return Result(mut.result)

    # ------------------------------------------------------------------ the queue

    def _process_queue(self, first: Mutation | None = None) -> None:
        """Run mutations until the queue is empty, ``first`` (already dequeued) first."""
        queue = self._queue
        subs = self._subs
        self._processing = True
        try:
            if first is not None:
                self._run_transition(first)
                if self._reraise is not None:
                    err, self._reraise = self._reraise, None
                    raise err
                if subs.queue_heap:
                    subs.queue_reached(self._queue_tick)
            while queue:
                mut = queue.popleft()
                if mut.queue_tick:
                    self._pending_ticks -= 1
                    self._queue_tick += 1
                if self._disposing and not mut.internal:
                    mut.result = Canceled
                    continue
                if mut.eval_fn is not None:
                    self._run_eval(mut)
                else:
                    self._run_transition(mut)
                    if self._reraise is not None:
                        err, self._reraise = self._reraise, None
                        raise err
                if subs.queue_heap and mut.queue_tick:
                    subs.queue_reached(self._queue_tick)
        finally:
            self._processing = False
            self._transition = None
        if self._tracers:
            self._trace("queue_end", self)
        if subs.queue_ends:
            subs.queue_ended()
        if self._disposing and not self._disposed:
            self._finish_dispose()

    def _run_eval(self, mut: Mutation) -> None:
        assert mut.eval_fn is not None
        self._log(_OPS, f"[eval] {mut.eval_label}")
        self._in_eval = True
        try:
            mut.eval_fn()
        finally:
            self._in_eval = False

    # ------------------------------------------------------------------ transitions

    def _run_transition(self, mut: Mutation) -> None:
        """Resolve, negotiate, apply and finalise one mutation (§4).

        The common cases (no relations among the states involved, no Multi state, no tracers, no
        logging) are written inline: this is the engine's hot path.
        """
        before = self._active
        active = self._active_set
        called = mut.called
        mtype = mut.type
        tx = Transition(self, mut, before)
        self._transition = tx
        tracers = self._tracers
        level = self._log_level
        log = self._log if level >= _OPS else None
        resolver = self._resolver
        if log is not None:
            if mut.is_auto:
                self._log(_DECISIONS, f"[add:auto] {' '.join(called)}")
            else:
                log(_OPS, f"[{mtype}] {' '.join(called)}{self._fmt_args(mut.args)}")

        if mtype is ADD:
            to_set = called + before if before else called
        elif mtype is REMOVE:
            removing = called if len(called) < 8 else set(called)
            to_set = [s for s in before if s not in removing]
        else:
            to_set = called
        if resolver.related.isdisjoint(to_set):
            target = list(dict.fromkeys(to_set)) if len(to_set) > 1 else list(to_set)
        else:
            excluded = set(called) if mtype is REMOVE else None
            target = resolver.target_states(called, to_set, active, excluded, log, mut.is_auto)
        target_set = set(target)

        accepted = True
        if mtype is not REMOVE and not target_set.issuperset(called):
            rejected = [s for s in called if s not in target_set]
            if mut.is_auto:
                accepted = len(rejected) < len(called)
                if accepted:
                    target, target_set = self._auto_reresolve(mut, target_set)
            else:
                accepted = mut.is_check and not self._multi.isdisjoint(called)
            if not accepted and log is not None:
                log(_OPS, f"[cancel:reject] {' '.join(rejected)}")
        tx.target_states = target
        tx.is_accepted = accepted

        if accepted:
            if before:
                exits = [s for s in before if s not in target_set]
                if len(exits) > 1:
                    exits = resolver.sort(exits)
            else:
                exits = []
            if self._multi:
                enters = self._enters(active, target, called)
            elif len(target) == 1:
                enters = [] if target[0] in active else target
            else:
                enters = [s for s in target if s not in active]
            tx.exits = exits
            tx.enters = enters
        else:
            exits = enters = []
        if tracers:
            self._trace("transition_init", tx)
            self._trace("transition_start", tx)

        dispatch = self._dispatch
        if accepted and (dispatch or level >= _EVERYTHING):
            outcome = self._negotiate(tx, before, active, target, exits, enters)
            if outcome is None:
                accepted = False
            elif outcome is not target:
                kept = set(outcome)
                target, target_set = self._auto_reresolve(mut, kept, target_set - kept)
                if not target:
                    accepted = False
                else:
                    exits = resolver.sort([s for s in before if s not in target_set])
                    enters = self._enters(active, target, called)
                    tx.target_states, tx.exits, tx.enters = target, exits, enters
            if not accepted:
                tx.is_accepted = False

        if mut.is_check or not accepted:
            mut.result = Executed if accepted else Canceled
            self._end_transition(tx)
            return

        # apply (§4.8)
        clock = self._clock
        ticks_before = {}
        for s in exits:
            ticks_before[s] = clock[s]
            clock[s] += 1
        for s in enters:
            ticks_before[s] = clock[s]
            clock[s] += 2 if s in active else 1
        tx._ticks_before = ticks_before
        self._active = target
        self._active_set = target_set
        if level >= _CHANGES and (ticks_before or level >= _EVERYTHING):
            self._log_state(tx, exits, enters, target)
        if ticks_before and self._state_ctxs:
            for s in ticks_before:
                self._cancel_state_ctx(s)
        if tracers:
            self._trace("transition_finals", tx)

        ok = True
        if dispatch or level >= _EVERYTHING or self._subs.args:
            ok = self._finals(tx, exits, enters)
        if not ok:
            mut.result = Canceled
            tx.is_accepted = False
        elif mtype is REMOVE and not self._active_set.isdisjoint(called):
            mut.result = Canceled
        else:
            mut.result = Executed
        if ticks_before:
            if self._breakpoints:
                self._check_breakpoints(tx, exits, enters)
            if (
                ok
                and resolver.auto_states
                and not mut.is_auto
                and not self._disposing
                and not (mtype is ADD and len(called) == 1 and called[0] in _HEALTH)
            ):
                self._schedule_auto()
        tx.is_completed = True
        if self._on_change or tracers:
            self._end_transition(tx)
        if self._subs.count and (ticks_before or self._subs.queries):
            now_active = self._active_set
            activated = [s for s in enters if s in now_active] if not ok else enters
            self._subs.process(
                activated, exits, list(ticks_before), now_active, clock, self._queue_tick
            )

    def _enters(self, active: builtins.set[str], target: list[str], called: list[str]) -> list[str]:
        """Target states not active yet, plus called Multi states (re-entered)."""
        recalled = self._multi.intersection(called)
        return [s for s in target if s not in active or s in recalled]

    def _auto_reresolve(
        self,
        mut: Mutation,
        kept: builtins.set[str],
        refused: builtins.set[str] | None = None,
    ) -> tuple[list[str], builtins.set[str]]:
        """Resolve an auto mutation again with only the accepted candidates (§4.7).

        States refused by their own handlers stay out even when another state ``add``s them.
        """
        called = [s for s in mut.called if s in kept]
        if not called:
            return [], set()
        before = self._active
        target = self._resolver.target_states(
            called, called + before, self._active_set, refused or None, None, True
        )
        return target, set(target)

    def _end_transition(self, tx: Transition) -> None:
        tx.is_completed = True
        if self._on_change and not tx.mutation.is_check:
            before, after = tx.time_before, tx.time_after
            for fn in self._on_change:
                fn(self, before, after)
        if self._tracers:
            self._trace("transition_end", tx)

    def _schedule_auto(self) -> None:
        active = self._active_set
        removed_by = self._resolver.removed_by
        auto: list[str] = []
        for s in self._resolver.auto_states:
            if s in active:
                continue
            blockers = removed_by.get(s)
            if blockers and not active.isdisjoint(blockers):
                continue
            auto.append(s)
        if auto:
            self._log(_OPS, f"[auto] {' '.join(auto)}")
            self._prepend(Mutation(ADD, auto, {}, is_auto=True))

    # ------------------------------------------------------------------ handlers

    def _negotiate(
        self,
        tx: Transition,
        before: list[str],
        active: builtins.set[str],
        target: list[str],
        exits: list[str],
        enters: list[str],
    ) -> list[str] | None:
        """Run the cancellable handlers (§4.6).

        Returns ``None`` when canceled, ``target`` itself when accepted, or a new list without
        the auto states whose handlers refused (partial acceptance of an auto transition).
        """
        names = self._handler_names
        dispatch = self._dispatch
        handle = self._handle
        # In an auto transition, a refusal tied to an auto state only drops that state.
        autos = self._schema if tx.mutation.is_auto else None
        dropped: builtins.set[str] = set()

        for s in exits:
            name = names[s].exit
            if name in dispatch and not handle(tx, name):
                return None
        for s in enters:
            name = names[s].enter
            if name in dispatch and not handle(tx, name) and s not in dropped:
                if autos is None or not autos[s].auto:
                    return None
                dropped.add(s)
        if self._has_pairs:
            if tx.mutation.type is not REMOVE:
                for s in target:
                    name = names[s].self_
                    if (
                        s in active
                        and name in dispatch
                        and s not in dropped
                        and not handle(tx, name, self_handler=True)
                    ):
                        if autos is None or not autos[s].auto:
                            return None
                        dropped.add(s)
            for b in before:
                for a in target:
                    name = b + a
                    if a != b and name in dispatch and a not in dropped and not handle(tx, name):
                        if autos is None or not autos[a].auto:
                            return None
                        dropped.add(a)
        if "AnyEnter" in dispatch and not handle(tx, "AnyEnter"):
            return None
        if self._log_level >= _EVERYTHING:
            self._log_unhandled(tx, exits, enters)
        if dropped:
            return [s for s in target if s not in dropped]
        return target

    def _log_unhandled(self, tx: Transition, exits: list[str], enters: list[str]) -> None:
        """At EVERYTHING, list the negotiation events dispatched with no handler."""
        names = self._handler_names
        events = [names[s].exit for s in exits] + [names[s].enter for s in enters] + ["AnyEnter"]
        for name in events:
            if name not in self._dispatch:
                self._log(_EVERYTHING, f"[handle] {name}")

    def _handle(self, tx: Transition, name: str, self_handler: bool = False) -> bool:
        """Call a negotiation handler on every binding; False once one refuses or raises."""
        event = Event(self, name, tx)
        slow = self._slow_calls
        for entry in self._dispatch[name]:
            if slow:
                ret = self._call_handler(tx, entry, event, final=False)
            else:
                try:
                    ret = entry.fn(event)
                except Exception as err:
                    self._handler_raised(tx, name, err)
                    return False
            if ret is False:
                if self._log_level >= _OPS:
                    kind = "cancel:self" if self_handler else "cancel"
                    self._log(_OPS, f"[{kind}] ({' '.join(tx.target_states)}) by {name}")
                return False
            if ret is _RAISED:
                return False
        return True

    def _call_handler(self, tx: Transition, entry: _Entry, event: Event, final: bool) -> Any:
        """Call one handler with tracing, logging, timing and async support."""
        name = event.name
        binding_id = entry.binding.id
        if self._tracers:
            self._trace("handler_start", tx, binding_id, name)
        if self._log_level >= _OPS:
            self._log(_OPS, f"[handler:{entry.num}] {name}")
        timeout = self._handler_timeout
        started = _time.monotonic() if timeout is not None else 0.0
        try:
            ret = entry.fn(event)
            if timeout is not None and _time.monotonic() - started > timeout:
                if entry.is_async:
                    ret.close()
                raise HandlerTimeoutError(f"handler timeout: {name} from {binding_id}")
            if entry.is_async:
                self._fork_handler(name, ret)
        except Exception as err:
            if self._tracers:
                self._trace("handler_end", tx, binding_id, name)
            self._handler_raised(tx, name, err)
            return _RAISED
        if self._tracers:
            self._trace("handler_end", tx, binding_id, name)
        return ret

    def _fork_handler(self, name: str, coro: Coroutine[Any, Any, Any]) -> None:
        """Start an ``async def`` final handler as a task bound to its state's context."""
        state = name[: -len("State")] if name.endswith("State") else ""
        ctx = self.new_state_ctx(state) if state in self._schema else self._ctx
        try:
            self.fork(ctx, coro)
        except RuntimeError:
            raise HandlerError(f"async handler {name} needs a running event loop") from None

    def _handler_raised(self, tx: Transition, name: str, err: Exception) -> None:
        """A handler raised: log, and queue ``Exception`` (the caller cancels or rolls back)."""
        why = "timeout" if isinstance(err, HandlerTimeoutError) else "recover"
        self._log(_OPS, f"[cancel] ({' '.join(tx.target_states)}) by {why}")
        if not self._panic_to_exception:
            self._reraise = err  # raised to the caller once the transition is cleaned up
            return
        mut = tx.mutation
        if EXCEPTION in mut.called:
            return  # no nesting: an Exception handler that raises queues no new Exception
        self._err = err
        for fn in self._on_error:
            fn(self, err)
        trace = "".join(traceback.format_exception(err))
        panic = PanicInfo(name, tuple(mut.called), tuple(tx.states_before), tx)
        self._prepend(Mutation(ADD, [EXCEPTION], {ERR_ARGS_KEY: ErrArgs(err, trace, panic)}))

    def _finals(self, tx: Transition, exits: list[str], enters: list[str]) -> bool:
        """Run ``End``/``State`` handlers, then ``AnyState`` (§4.9); False after a rollback."""
        names = self._handler_names
        dispatch = self._dispatch
        for s in exits:
            name = names[s].end
            if name in dispatch and not self._handle_final(tx, name):
                return False  # an End handler raised: nothing to roll back (§5.4)
        args_subs = self._subs.args
        for i, s in enumerate(enters):
            if args_subs and s in args_subs:
                self._subs.match_args(s, tx.mutation.args)
            name = names[s].state
            if name in dispatch and not self._handle_final(tx, name):
                self._rollback(enters[i:])
                return False
        if "AnyState" in dispatch:
            self._handle_final(tx, "AnyState")
        return True

    def _handle_final(self, tx: Transition, name: str) -> bool:
        """Call a final handler on every binding (all of them, even after one raised)."""
        event = Event(self, name, tx)
        slow = self._slow_calls
        ok = True
        for entry in self._dispatch[name]:
            if slow or entry.is_async:
                if self._call_handler(tx, entry, event, final=True) is _RAISED:
                    ok = False
            else:
                try:
                    entry.fn(event)
                except Exception as err:
                    self._handler_raised(tx, name, err)
                    ok = False
        return ok

    def _rollback(self, states: list[str]) -> None:
        """Deactivate the entered states from the one whose handler raised onwards (§5.4)."""
        clock = self._clock
        active = self._active_set
        for s in states:
            if s in active:
                clock[s] += 1
        gone = set(states)
        self._active = [s for s in self._active if s not in gone]
        self._active_set = active - gone
        if self._state_ctxs:
            for s in states:
                self._cancel_state_ctx(s)

    # ------------------------------------------------------------------ handler binding

    def bind_handlers(
        self, obj: object, *, id: str | None = None, state_prefix: str | None = None
    ) -> str:
        """Bind ``obj``'s handlers by name (``FooEnter``, ``FooState``, ...); returns its id.

        Names are validated: one that refers to a state missing from the schema, or an ``async
        def`` negotiation handler, raises ``HandlerError``.
        """
        binding = Binding(obj, self._schema, id, state_prefix)
        first = not self._ever_bound
        self._bindings.append(binding)
        self._rebuild_dispatch()
        self._ever_bound = True
        self._log(_OPS, f"[handlers] bind {len(self._bindings) - 1}:{binding.id}")
        if first and EXCEPTION in self._active_set and self._err is not None:
            self.add_err(self._err)
        return binding.id

    def detach_handlers(self, binding_id: str) -> None:
        for i, binding in enumerate(self._bindings):
            if binding.id == binding_id:
                del self._bindings[i]
                self._rebuild_dispatch()
                self._log(_OPS, f"[handlers] detach {binding_id}")
                return
        raise KeyError(f"handlers not bound: {binding_id}")

    def _rebuild_dispatch(self) -> None:
        dispatch: dict[str, list[_Entry]] = {}
        for num, binding in enumerate(self._bindings):
            for name, fn in binding.handlers.items():
                entry = _Entry(num, binding, fn, name in binding.is_async)
                dispatch.setdefault(name, []).append(entry)
        self._dispatch = dispatch
        self._has_pairs = any(b.has_pairs for b in self._bindings)

    def handlers(self) -> list[str]:
        return [b.id for b in self._bindings]

    def on_change(self, fn: Callable[[Machine, Time, Time], None]) -> None:
        """Call ``fn(mach, time_before, time_after)`` after every transition, canceled or not
        (checks excluded)."""
        self._on_change.append(fn)

    def on_error(self, fn: Callable[[Machine, BaseException], None]) -> None:
        """Call ``fn(mach, err)`` whenever an error is added, before ``Exception`` activates."""
        self._on_error.append(fn)

    # ------------------------------------------------------------------ checking

    def machine_tick(self) -> int:
        return self._machine_tick

    def queue_len(self) -> int:
        return len(self._queue)

    def queue(self) -> list[Mutation]:
        return list(self._queue)

    def err(self) -> BaseException | None:
        """The last error added, even after ``Exception`` was removed."""
        return self._err

    def will_be(self, states: Sequence[str]) -> bool:
        """An Add of (at least) these states is queued."""
        return self._queued_with(ADD, states)

    def will_be1(self, state: str) -> bool:
        return self._queued_with(ADD, [state])

    def will_be_removed(self, states: Sequence[str]) -> bool:
        return self._queued_with(REMOVE, states)

    def will_be_removed1(self, state: str) -> bool:
        return self._queued_with(REMOVE, [state])

    def is_queued(
        self,
        mtype: MutationType,
        states: Sequence[str],
        *,
        without_args_only: bool = False,
        strict: bool = False,
        min_queue_tick: int = 0,
        is_check: bool = False,
    ) -> tuple[bool, int, int]:
        """Find a queued mutation: ``(found, index, queue_tick)`` (§3.4).

        It matches on type and ``is_check``, contains every given state (``strict``: exactly
        them), has no args when ``without_args_only``, and runs at ``min_queue_tick`` or later.
        """
        for i, m in enumerate(self._queue):
            if m.type is not mtype or m.is_check != is_check:
                continue
            if without_args_only and m.args:
                continue
            if strict and len(m.called) != len(states):
                continue
            if not all(s in m.called for s in states):
                continue
            if min_queue_tick and m.queue_tick < min_queue_tick:
                continue
            return True, i, m.queue_tick
        return False, -1, 0

    def _queued_with(self, mtype: MutationType, states: Sequence[str]) -> bool:
        return any(
            m.type is mtype and not m.is_check and all(s in m.called for s in states)
            for m in self._queue
        )

    # ------------------------------------------------------------------ inspection

    def verify_states(self, names: Sequence[str]) -> None:
        """Check ``names`` against the schema and adopt their order for ``state_names()``."""
        if self._disposed:
            return
        names = list(names)
        errors: list[str] = []
        unknown = [n for n in names if n not in self._schema]
        if unknown:
            errors.append(f"states {' '.join(unknown)} not defined in schema for {self._id}")
        dups = sorted({n for n in names if names.count(n) > 1})
        if dups:
            errors.append(f"duplicate states: {' '.join(dups)}")
        missing = [n for n in self._names if n not in names]
        if missing:
            errors.append(
                f"trying to verify less states than registered for {self._id}; "
                f"missing: {' '.join(missing)}"
            )
        if errors:
            raise SchemaError("; ".join(errors))
        self._set_schema(self._schema, names)
        self._verified = True
        self._trace("verify_states", self)

    def set_schema(self, schema: Mapping[str, State], names: Sequence[str]) -> None:
        """Grow the schema at runtime; new states start at tick 0 (§16)."""
        if self._processing:
            raise SchemaError("schema error: cannot change the schema during a transition")
        parsed, conflicts = parse_schema(schema)
        if len(parsed) <= len(self._schema):
            raise SchemaError(f"schema error: new schema too short (> {len(self._schema)} states)")
        names = list(names)
        if len(names) != len(parsed) or set(names) != set(parsed):
            raise SchemaError("schema error: names must list every state of the new schema once")
        old = dict(self._schema)
        self._set_schema(parsed, names)
        self._verified = True
        self._trace("schema_change", self, old)
        for conflict in conflicts:
            self.add_err(SchemaError(conflict))

    # ------------------------------------------------------------------ subscriptions

    def when_args(self, state: str, args: Mapping[str, Any], ctx: Ctx | None = None) -> Waiter:
        """Resolved when ``state`` is entered by a mutation whose args include ``args``."""
        if not self._ctx_ok(ctx):
            return cancelled_waiter()
        self._called1(state)
        return self._subs.add_args(state, args, ctx)

    def when_queue_ends(self) -> Waiter:
        """Resolved when the current queue run finishes; at once when idle."""
        if self._disposed:
            return cancelled_waiter()
        if not self._processing:
            return resolved_waiter()
        return self._subs.add_queue_ends()

    def when_disposed(self) -> Waiter:
        if self._disposed:
            return resolved_waiter()
        if self._disposed_waiter is None:
            self._disposed_waiter = Waiter()
        return self._disposed_waiter

    # ------------------------------------------------------------------ contexts and tasks

    def new_state_ctx(self, state: str) -> Ctx:
        """The context of ``state``'s current tick: cancelled when the state ticks (§9.1)."""
        self._called1(state)
        ctx = self._state_ctxs.get(state)
        if ctx is not None and not ctx.done():
            return ctx
        ctx = self._ctx.child(StateCtxInfo(self._id, state, self._clock[state]))
        if not ctx.done():
            self._state_ctxs[state] = ctx
            self._log(_OPS, f"[ctx:new] {state}")
        return ctx

    def _cancel_state_ctx(self, state: str) -> None:
        ctx = self._state_ctxs.pop(state, None)
        if ctx is not None:
            self._log(_OPS, f"[ctx:match] {state}")
            ctx.cancel()

    def fork(self, ctx: Ctx, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any] | None:
        """Run ``coro`` as a task cancelled with ``ctx``; its exception becomes ``add_err``."""
        if ctx.done():
            coro.close()
            return None
        from . import _aio

        try:
            task = _aio.start_task(coro)
        except RuntimeError:
            coro.close()
            raise

        def cancel(_: Ctx) -> None:
            task.cancel()

        def finished(t: asyncio.Task[Any]) -> None:
            ctx.remove_done_callback(cancel)
            if not t.cancelled():
                err = t.exception()
                if err is not None:
                    self.add_err(err)

        ctx.add_done_callback(cancel)
        task.add_done_callback(finished)
        return task

    # ------------------------------------------------------------------ eval

    def eval(self, fn: Callable[[], Any], source: str = "") -> bool:
        """Run ``fn`` on the machine's queue, between transitions (§12).

        Returns True once it ran. From a handler it returns False and adds ``NestedEvalError``
        (the handler would wait on itself); from another eval, or on a disposed machine, False.
        """
        if self._disposing or self._in_eval:
            return False
        if self._processing:
            self.add_err(
                NestedEvalError(
                    f"eval nested in handler or eval: eval:{source} called directly in a handler"
                )
            )
            return False
        self._prepend(Mutation(EVAL, [], {}, eval_label=source, eval_fn=fn))
        self._process_queue()
        return True

    # ------------------------------------------------------------------ logging

    def set_log_level(self, level: LogLevel | int) -> None:
        self._log_level = LogLevel(level)
        self._update_slow_calls()

    def _update_slow_calls(self) -> None:
        """Handlers need the instrumented call path when traced, logged or timed."""
        self._slow_calls = (
            bool(self._tracers) or self._log_level >= _OPS or self._handler_timeout is not None
        )

    def set_logger(self, fn: Logger | None) -> None:
        """Send log lines to ``fn(level, msg)``; ``None`` restores the stdlib logger."""
        self._logger = fn or stdlib_logger

    def set_args_mapper(self, fn: ArgsMapper | None) -> None:
        """Choose which args appear in log lines (``am.new_log_args_mapper()``)."""
        self._args_mapper = fn

    def log(self, msg: str) -> None:
        """Log an external message: ``[exter] msg``."""
        self._log(1, "[exter] " + msg.replace("\n", " "))

    def _log(self, level: int, msg: str) -> None:
        if level <= self._log_level and not self._disposed:
            self._logger(LogLevel(level), self._log_prefix + msg)

    def _fmt_args(self, args: Mapping[str, Any]) -> str:
        if not args:
            return ""
        return format_args(log_args(args, self._args_mapper))

    def log_args(self, args: Mapping[str, Any]) -> dict[str, str]:
        """The args a log line (or a tracer) shows: typed args' log fields and the mapper's pick."""
        return log_args(args, self._args_mapper)

    def _log_state(
        self, tx: Transition, exits: list[str], enters: list[str], target: list[str]
    ) -> None:
        parts = [f"+{s}" for s in enters] + [f"-{s}" for s in exits]
        line = f"[{'auto_' if tx.is_auto else 'state'}] {' '.join(parts)}"
        if self._log_level >= _EVERYTHING:
            entered = set(enters)
            same = [s for s in target if s not in entered]
            if same:
                line += "    " + " ".join(same)
        self._log(_CHANGES, line + self._fmt_args(tx.mutation.args))

    # ------------------------------------------------------------------ tracers and breakpoints

    def bind_tracer(self, tracer: Tracer) -> None:
        self._tracers.append(tracer)
        self._update_slow_calls()
        self._log(_OPS, f"[tracers] bind {type(tracer).__name__}")

    def detach_tracer(self, tracer: Tracer) -> None:
        try:
            self._tracers.remove(tracer)
        except ValueError:
            raise KeyError(f"tracer not bound: {tracer!r}") from None
        self._update_slow_calls()

    def tracers(self) -> list[Tracer]:
        return list(self._tracers)

    def _trace(self, hook: str, *args: Any) -> None:
        for tracer in list(self._tracers):
            self._call_tracer(tracer, hook, *args)

    def _call_tracer(self, tracer: Tracer, hook: str, *args: Any) -> None:
        try:
            getattr(tracer, hook)(*args)
        except Exception as err:
            if self._log_level >= _CHANGES:
                self._logger(
                    LogLevel.CHANGES,
                    f"{self._log_prefix}[tracer] {type(tracer).__name__}.{hook} raised {err!r}",
                )

    def add_breakpoint(
        self, added: Sequence[str], removed: Sequence[str] = (), strict: bool = False
    ) -> None:
        """Call the tracers' ``breakpoint`` hook when a transition activates all of ``added`` and
        deactivates all of ``removed`` (``strict``: exactly those)."""
        self._called(list(added) + list(removed))
        self._breakpoints.append(_Breakpoint(added, removed, strict))

    def _check_breakpoints(self, tx: Transition, exits: list[str], enters: list[str]) -> None:
        activated, deactivated = set(enters), set(exits)
        for bp in self._breakpoints:
            if bp.strict:
                hit = activated == bp.added and deactivated == bp.removed
            else:
                hit = bp.added <= activated and bp.removed <= deactivated
            if hit:
                self._log(_CHANGES, "[breakpoint] Machine.breakpoint")
                self._trace("breakpoint", self, tx)

    # ------------------------------------------------------------------ lifecycle

    def on_dispose(self, fn: Callable[[str], None]) -> None:
        """Call ``fn(machine_id)`` once the machine is disposed."""
        self._on_dispose.append(fn)

    def dispose(self) -> None:
        """Stop the machine: remove ``Start`` first (if defined), then cancel everything (§9.3).

        From inside a handler, the current queue run finishes the disposal.
        """
        if self._disposing:
            return
        if "Start" in self._schema and "Start" in self._active_set:
            if self._processing:
                self._queue.appendleft(Mutation(REMOVE, ["Start"], {}, internal=True))
            else:
                self.remove1("Start")
        self._disposing = True
        if not self._processing:
            self._finish_dispose()

    def _finish_dispose(self) -> None:
        self._queue.clear()
        self._pending_ticks = 0
        self._disposed = True
        self._trace("machine_dispose", self._id)
        self._bindings.clear()
        self._rebuild_dispatch()
        self._subs.dispose()
        ctxs, self._state_ctxs = self._state_ctxs, {}
        for ctx in ctxs.values():
            ctx.cancel()
        self._active = []
        self._active_set = set()
        for fn in self._on_dispose:
            fn(self._id)
        self._ctx.cancel()
        if self._disposed_waiter is not None:
            self._disposed_waiter._resolve()

    def export(self) -> dict[str, Any]:
        """The clock as plain data, for ``import_data()`` (§16)."""
        return {
            "id": self._id,
            "state_names": list(self._names),
            "time": list(self.time()),
            "queue_tick": self._queue_tick,
            "machine_tick": self._machine_tick,
        }

    def import_data(self, data: Mapping[str, Any]) -> None:
        """Restore a clock from ``export()``; the state names must match (§16)."""
        names = list(data["state_names"])
        ticks = list(data["time"])
        if set(names) != set(self._names) or len(names) != len(self._names):
            raise ValueError(
                f"import: state names differ: {' '.join(names)} vs {' '.join(self._names)}"
            )
        if len(ticks) != len(names) or not all(isinstance(t, int) and t >= 0 for t in ticks):
            raise ValueError("import: time must be one non-negative int per state")
        if self._processing:
            raise RuntimeError("import: cannot import during a transition")
        self._set_schema(self._schema, names)
        self._verified = True
        for name, tick in zip(names, ticks, strict=True):
            self._clock[name] = tick
        active = [n for n in names if ticks[self._index[n]] % 2 == 1]
        self._active = active
        self._active_set = set(active)
        self._machine_tick = int(data.get("machine_tick", 0)) + 1
        self._log(
            _CHANGES,
            f"[import] imported {self._machine_tick} times, now at {sum(ticks)} ticks",
        )
        if "MachineRestored" in self._schema:
            self.add1("MachineRestored")


class _Raised:
    """Marks a handler call that raised (its return value is meaningless)."""


_RAISED = _Raised()


def _source(e: Event) -> MutationSource:
    tx = e.transition
    return MutationSource(e.machine.id, tx.id, sum(tx.time_before))


def _is_cancellation(err: BaseException) -> bool:
    """``asyncio.CancelledError`` without importing asyncio into the core."""
    return any(
        cls.__name__ == "CancelledError" and cls.__module__.startswith(("asyncio", "concurrent"))
        for cls in type(err).__mro__
    )
