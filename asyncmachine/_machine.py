"""The machine: the public face over a clock, a queue, a transition engine, a handler dispatcher
and an observer (docs/semantics.md).

This is the I/O-free core: nothing here imports asyncio. Handlers run synchronously inside the
queue loop and waiters resolve in place; only awaiting a waiter or forking a task touches the event
loop (through ``_aio``, imported on demand).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._clock import Clock
from ._ctx import Ctx, StateCtxInfo
from ._dispatch import Dispatcher, spawn_error
from ._engine import ADD, REMOVE, SET, ChangeFn, Engine, ErrorFn
from ._errors import NestedEvalError, SchemaError, StateMissingError, is_cancellation
from ._handlers import Binding
from ._log import CHANGES, EXTERNAL, OPS, ArgsMapper, Logger, LogLevel, log_args
from ._observer import Breakpoint, Observer
from ._queue import MutationQueue
from ._result import Canceled, Result
from ._schema import EXCEPTION, Schema, State, parse_schema
from ._subscriptions import Subscriptions
from ._tracer import CREATION_HOOKS, Tracer
from ._transition import Explanation, Mutation, MutationSource, MutationType, Transition
from ._view import ClockView
from ._waiter import Waiter, cancelled_waiter, resolved_waiter

if TYPE_CHECKING:
    import asyncio

Args = dict[str, Any] | None


class Event:
    """What a handler receives: its name, the machine, the transition and the shared args."""

    __slots__ = ("machine", "name", "transition")

    def __init__(self, machine: Machine, name: str, transition: Transition) -> None:
        self.machine = machine
        """The machine whose transition this is."""
        self.name = name
        """The handler's name (``FooEnter``)."""
        self.transition = transition
        """The transition being handled."""

    @property
    def args(self) -> dict[str, Any]:
        """The mutation's args: one dict shared by every handler of the transition."""
        return self.transition.mutation.args

    @property
    def mutation(self) -> Mutation:
        """The mutation being handled."""
        return self.transition.mutation

    @property
    def machine_id(self) -> str:
        """The machine's id."""
        return self.machine.id

    def is_valid(self) -> bool:
        """True while this event's transition runs and has not been canceled."""
        tx = self.transition
        return self.machine.transition is tx and not tx.is_completed and tx.is_accepted

    def __repr__(self) -> str:
        return f"<Event {self.name}>"


class Machine(ClockView):
    """A clock-based multi-state machine (docs/semantics.md)."""

    def __init__(
        self,
        schema: Mapping[str, State],
        *,
        id: str | None = None,
        parent: Machine | str | None = None,
        log_level: LogLevel | int = LogLevel.NOTHING,
        logger: Logger | None = None,
        log_id: bool | str = True,
        handler_timeout: float | None = None,
        queue_limit: int = 1000,
        tracers: Iterable[Tracer] = (),
        panic_to_exception: bool = True,
        tags: Iterable[str] = (),
    ) -> None:
        """Build a machine; no mutation runs. ``log_id``: ``True`` prefixes log lines with the
        first 5 characters of the id, ``"full"`` with all of it, ``False`` with nothing."""
        parsed, conflicts = parse_schema(schema)
        self._id = id if id is not None else f"{random.getrandbits(64):016x}"
        self._parent_id = parent.id if isinstance(parent, Machine) else parent
        self._tags = list(dict.fromkeys(tags))
        self._schema = parsed
        self._verified = False
        self._disposed = False
        self._ever_bound = False
        self._ctx = Ctx()
        self._on_dispose: list[Callable[[str], None]] = []
        self._disposed_waiter: Waiter | None = None
        self._clock = Clock()
        self._subs = Subscriptions()
        obs = self._observer = Observer(self, self._id, log_level, logger, log_id, tracers)
        self._dispatcher = Dispatcher(self, Event, self._spawn, obs, handler_timeout)
        self._queue = MutationQueue(self._clock, queue_limit)
        self._engine = Engine(
            self,
            self._id,
            self._clock,
            self._queue,
            obs,
            self._dispatcher,
            self._subs,
            panic_to_exception,
        )
        self._set_schema(parsed, sorted(parsed))
        self._engine.refresh()
        obs.trace("machine_init", self)
        if isinstance(parent, Machine):
            parent._observer.trace("new_submachine", parent, self)
        for hook in list(CREATION_HOOKS):
            try:
                hook(self)
            except Exception as err:
                obs.error(f"[error:tracer] machine hook {hook!r} raised {err!r}")
        for conflict in conflicts:
            self.add_err(SchemaError(conflict))

    def _set_schema(self, parsed: Schema, names: list[str]) -> None:
        self._schema = parsed
        self._clock.set_names(names)
        self._engine.set_schema(parsed, names)
        self._dispatcher.rebuild(names)
        cycle = self._engine.resolver.require_cycle
        if cycle is not None:
            self._log(CHANGES, f"[resolver] relation error: state {cycle} has a Require cycle")

    # ------------------------------------------------------------------ properties

    @property
    def parent_id(self) -> str | None:
        """The id of the machine given as ``parent``."""
        return self._parent_id

    @property
    def tags(self) -> list[str]:
        """The machine's tags, de-duplicated."""
        return list(self._tags)

    @property
    def schema(self) -> Schema:
        """A copy of the parsed schema (docs/semantics.md#schema)."""
        return dict(self._schema)

    @property
    def ctx(self) -> Ctx:
        """The machine's context, cancelled at the end of ``dispose()``."""
        return self._ctx

    @property
    def is_disposed(self) -> bool:
        """``dispose()`` has finished."""
        return self._disposed

    @property
    def transition(self) -> Transition | None:
        """The transition being processed, or ``None`` when the machine is idle."""
        return self._engine.tx

    @property
    def states_verified(self) -> bool:
        """``verify_states()`` (or an import) set the order of ``state_names()``."""
        return self._verified

    @property
    def log_level(self) -> LogLevel:
        """How much the machine logs."""
        return LogLevel(self._observer.level)

    def __str__(self) -> str:
        return self.string()

    def __repr__(self) -> str:
        return f"<Machine {self._id} {self.string()}>"

    # ------------------------------------------------------------------ mutations

    def add(self, states: Sequence[str], args: Args = None) -> Result:
        """Activate ``states`` (and what they imply), keeping the active ones."""
        return self._engine.mutate(ADD, self._called(states), args)

    def add1(self, state: str, args: Args = None) -> Result:
        """``add([state], args)``."""
        if state not in self._clock.ticks:
            raise StateMissingError([state], self._id)
        return self._engine.mutate(ADD, [state], args)

    def remove(self, states: Sequence[str], args: Args = None) -> Result:
        """Deactivate ``states`` (and what requires them)."""
        return self._engine.mutate(REMOVE, self._called(states), args)

    def remove1(self, state: str, args: Args = None) -> Result:
        """``remove([state], args)``."""
        if state not in self._clock.ticks:
            raise StateMissingError([state], self._id)
        return self._engine.mutate(REMOVE, [state], args)

    def set(self, states: Sequence[str], args: Args = None) -> Result:
        """Make ``states`` the called set; other active states stay only if relations keep them."""
        return self._engine.mutate(SET, self._called(states), args)

    def toggle(self, states: Sequence[str], args: Args = None) -> Result:
        """Remove ``states`` if all are active, else add them."""
        called = self._called(states)
        if self._engine.disposing:
            return Canceled
        mtype = REMOVE if self._clock.active_set.issuperset(called) else ADD
        return self._engine.mutate(mtype, called, args)

    def toggle1(self, state: str, args: Args = None) -> Result:
        """``toggle([state], args)``."""
        return self.toggle([state], args)

    def add_err(self, err: BaseException | None, args: Args = None) -> Result:
        """Store ``err`` for ``err()`` and activate ``Exception`` with it in the args
        (docs/semantics.md#errors)."""
        return self.add_err_state(EXCEPTION, err, args)

    def add_err_state(
        self,
        state: str,
        err: BaseException | None,
        args: Args = None,
        *,
        _source: MutationSource | None = None,
    ) -> Result:
        """Activate the error state ``state`` together with ``Exception``."""
        called = self._called1(state)
        if self._engine.disposing or err is None or is_cancellation(err):
            return Canceled
        if state != EXCEPTION:
            called = [state, EXCEPTION]
        return self._engine.add_error(called, err, args, _source)

    def can_add(self, states: Sequence[str], args: Args = None) -> Result:
        """Would adding ``states`` be accepted? Negotiation handlers run; nothing changes
        (docs/semantics.md#dry-runs)."""
        return self._engine.check(ADD, self._called(states), args)

    def can_add1(self, state: str, args: Args = None) -> Result:
        """``can_add([state], args)``."""
        return self._engine.check(ADD, self._called1(state), args)

    def can_remove(self, states: Sequence[str], args: Args = None) -> Result:
        """Would removing ``states`` be accepted? (see ``can_add``)."""
        return self._engine.check(REMOVE, self._called(states), args)

    def can_remove1(self, state: str, args: Args = None) -> Result:
        """``can_remove([state], args)``."""
        return self._engine.check(REMOVE, self._called1(state), args)

    def explain_add(self, states: Sequence[str], args: Args = None) -> Explanation:
        """What adding ``states`` would do, and why: a dry run that changes nothing
        (docs/semantics.md#explanations). Raises ``RuntimeError`` inside a transition."""
        return self._engine.explain(ADD, self._called(states), args)

    def explain_add1(self, state: str, args: Args = None) -> Explanation:
        """``explain_add([state], args)``."""
        return self._engine.explain(ADD, self._called1(state), args)

    def explain_remove(self, states: Sequence[str], args: Args = None) -> Explanation:
        """What removing ``states`` would do, and why (see ``explain_add``)."""
        return self._engine.explain(REMOVE, self._called(states), args)

    def explain_remove1(self, state: str, args: Args = None) -> Explanation:
        """``explain_remove([state], args)``."""
        return self._engine.explain(REMOVE, self._called1(state), args)

    # mutations caused by a handler event: they record their source

    def ev_add(self, e: Event, states: Sequence[str], args: Args = None) -> Result:
        """``add()`` recording ``e``'s transition as the source."""
        return self._engine.mutate(ADD, self._called(states), args, _source(e))

    def ev_add1(self, e: Event, state: str, args: Args = None) -> Result:
        """``add1()`` recording ``e``'s transition as the source."""
        return self._engine.mutate(ADD, self._called1(state), args, _source(e))

    def ev_remove(self, e: Event, states: Sequence[str], args: Args = None) -> Result:
        """``remove()`` recording ``e``'s transition as the source."""
        return self._engine.mutate(REMOVE, self._called(states), args, _source(e))

    def ev_remove1(self, e: Event, state: str, args: Args = None) -> Result:
        """``remove1()`` recording ``e``'s transition as the source."""
        return self._engine.mutate(REMOVE, self._called1(state), args, _source(e))

    def ev_toggle(self, e: Event, states: Sequence[str], args: Args = None) -> Result:
        """``toggle()`` recording ``e``'s transition as the source."""
        called = self._called(states)
        mtype = REMOVE if self._clock.active_set.issuperset(called) else ADD
        return self._engine.mutate(mtype, called, args, _source(e))

    def ev_toggle1(self, e: Event, state: str, args: Args = None) -> Result:
        """``toggle1()`` recording ``e``'s transition as the source."""
        return self.ev_toggle(e, [state], args)

    def ev_add_err(self, e: Event, err: BaseException | None, args: Args = None) -> Result:
        """``add_err()`` recording ``e``'s transition as the source."""
        return self.ev_add_err_state(e, EXCEPTION, err, args)

    def ev_add_err_state(
        self, e: Event, state: str, err: BaseException | None, args: Args = None
    ) -> Result:
        """``add_err_state()`` recording ``e``'s transition as the source."""
        return self.add_err_state(state, err, args, _source=_source(e))

    # ------------------------------------------------------------------ the queue

    def machine_tick(self) -> int:
        """How many times the clock was imported (docs/semantics.md#export-and-import)."""
        return self._clock.machine_tick

    def queue_len(self) -> int:
        """How many mutations wait in the queue."""
        return len(self._queue)

    def queue(self) -> list[Mutation]:
        """A copy of the queue."""
        return list(self._queue.items)

    def err(self) -> BaseException | None:
        """The last error added, even after ``Exception`` was removed."""
        return self._engine.err

    def will_be(self, states: Sequence[str]) -> bool:
        """An add of (at least) these states is queued."""
        return self._queue.will_be(ADD, states)

    def will_be1(self, state: str) -> bool:
        """An add of ``state`` is queued."""
        return self._queue.will_be(ADD, [state])

    def will_be_removed(self, states: Sequence[str]) -> bool:
        """A removal of (at least) these states is queued."""
        return self._queue.will_be(REMOVE, states)

    def will_be_removed1(self, state: str) -> bool:
        """A removal of ``state`` is queued."""
        return self._queue.will_be(REMOVE, [state])

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
        """Find a queued mutation: ``(found, index, queue_tick)``.

        It matches on type and ``is_check``, contains every given state (``strict``: exactly
        them), has no args when ``without_args_only``, and runs at ``min_queue_tick`` or later.
        """
        return self._queue.find(
            mtype,
            states,
            without_args_only=without_args_only,
            strict=strict,
            min_queue_tick=min_queue_tick,
            is_check=is_check,
        )

    # ------------------------------------------------------------------ the schema

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
        missing = [n for n in self._clock.names if n not in names]
        if missing:
            errors.append(
                f"trying to verify less states than registered for {self._id}; "
                f"missing: {' '.join(missing)}"
            )
        if errors:
            raise SchemaError("; ".join(errors))
        self._set_schema(self._schema, names)
        self._verified = True
        self._observer.trace("verify_states", self)

    def set_schema(self, schema: Mapping[str, State], names: Sequence[str]) -> None:
        """Grow the schema at runtime; new states start at tick 0
        (docs/semantics.md#schema-changes)."""
        if self._engine.running:
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
        self._observer.trace("schema_change", self, old)
        for conflict in conflicts:
            self.add_err(SchemaError(conflict))

    # ------------------------------------------------------------------ waiters

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
        if not self._engine.running:
            return resolved_waiter()
        return self._subs.add_queue_ends()

    def when_disposed(self) -> Waiter:
        """Resolved once ``dispose()`` has finished."""
        if self._disposed:
            return resolved_waiter()
        if self._disposed_waiter is None:
            self._disposed_waiter = Waiter()
        return self._disposed_waiter

    # ------------------------------------------------------------------ contexts and tasks

    def new_state_ctx(self, state: str) -> Ctx:
        """The context of ``state``'s current tick: cancelled when the state ticks
        (docs/semantics.md#contexts)."""
        self._called1(state)
        ctxs = self._engine.state_ctxs
        ctx = ctxs.get(state)
        if ctx is not None and not ctx.done():
            return ctx
        ctx = self._ctx.child(StateCtxInfo(self._id, state, self._clock.ticks[state]))
        if not ctx.done():
            ctxs[state] = ctx
            self._log(OPS, f"[ctx:new] {state}")
        return ctx

    def fork(self, ctx: Ctx, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any] | None:
        """Run ``coro`` as a task cancelled with ``ctx``; its exception is logged and becomes
        ``add_err`` (docs/semantics.md#contexts)."""
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
            if t.cancelled():
                return
            err = t.exception()
            if err is not None and not self._engine.disposing and not is_cancellation(err):
                name = getattr(coro, "__qualname__", "task")
                self._observer.error(f"[error:task] {name} ({err})")
                self._engine.add_error([EXCEPTION], err, None, None, logged=True)

        ctx.add_done_callback(cancel)
        task.add_done_callback(finished)
        return task

    def _spawn(self, name: str, coro: Coroutine[Any, Any, Any]) -> None:
        """Start an ``async def`` final handler as a task bound to its state's context."""
        state = name[: -len("State")] if name.endswith("State") else ""
        ctx = self.new_state_ctx(state) if state in self._schema else self._ctx
        try:
            self.fork(ctx, coro)
        except RuntimeError:
            raise spawn_error(name) from None

    # ------------------------------------------------------------------ eval

    def eval(self, fn: Callable[[], Any], source: str = "") -> bool:
        """Run ``fn`` on the machine's queue, between transitions (docs/semantics.md#eval).

        Returns True once it ran. From a handler it returns False and adds ``NestedEvalError``
        (the handler would wait on itself); from another eval, or on a disposed machine, False.
        """
        engine = self._engine
        if engine.disposing or engine.in_eval:
            return False
        if engine.running:
            self.add_err(
                NestedEvalError(
                    f"eval nested in handler or eval: eval:{source} called directly in a handler"
                )
            )
            return False
        engine.eval(fn, source)
        return True

    # ------------------------------------------------------------------ logging

    def set_log_level(self, level: LogLevel | int) -> None:
        """Log more or less from now on (docs/semantics.md#logging)."""
        self._observer.level = int(LogLevel(level))
        self._engine.refresh()

    def set_logger(self, fn: Logger | None) -> None:
        """Send log lines to ``fn(level, msg)``; ``None`` restores the stdlib logger."""
        self._observer.logger = fn or self._observer.stdlib

    @property
    def logger(self) -> Logger:
        """Where log lines go: the function given to ``set_logger()``, or the default sink that
        writes to the stdlib logger ``asyncmachine.<id>``."""
        return self._observer.logger

    def set_args_mapper(self, fn: ArgsMapper | None) -> None:
        """Choose which args appear in log lines (``am.new_log_args_mapper()``)."""
        self._observer.args_mapper = fn

    def log(self, msg: str) -> None:
        """Log an external message: ``[exter] msg``."""
        self._log(EXTERNAL, "[exter] " + msg.replace("\n", " "))

    def _log(self, level: int, msg: str) -> None:
        self._observer.log(level, msg)

    def log_args(self, args: Mapping[str, Any]) -> dict[str, str]:
        """The args a log line (or a tracer) shows: typed args' log fields and the mapper's pick."""
        return log_args(args, self._observer.args_mapper)

    # ------------------------------------------------------------------ tracers, breakpoints

    def bind_tracer(self, tracer: Tracer) -> None:
        """Call ``tracer``'s hooks from now on (docs/semantics.md#tracers)."""
        self._observer.bind(tracer)
        self._engine.refresh()

    def detach_tracer(self, tracer: Tracer) -> None:
        """Stop calling ``tracer``; ``KeyError`` if it is not bound."""
        self._observer.detach(tracer)
        self._engine.refresh()

    def tracers(self) -> list[Tracer]:
        """The bound tracers."""
        return list(self._observer.tracers)

    def add_breakpoint(
        self, added: Sequence[str], removed: Sequence[str] = (), strict: bool = False
    ) -> None:
        """Call the tracers' ``breakpoint`` hook when a transition activates all of ``added`` and
        deactivates all of ``removed`` (``strict``: exactly those)."""
        self._called(list(added) + list(removed))
        self._observer.breakpoints.append(Breakpoint(added, removed, strict))
        self._engine.refresh()

    # ------------------------------------------------------------------ handlers and hooks

    def bind_handlers(
        self, obj: object, *, id: str | None = None, state_prefix: str | None = None
    ) -> str:
        """Bind ``obj``'s handlers by name (``FooEnter``, ``FooState``, ...); returns its id.

        A name that refers to a state missing from the schema, or an ``async def`` negotiation
        handler, raises ``HandlerError``; a name that looks like a misspelt handler warns with
        ``HandlerWarning`` (docs/semantics.md#handlers).
        """
        binding = Binding(obj, self._schema, id, state_prefix, warn_stacklevel=3)
        disp = self._dispatcher
        disp.bind(binding, self._clock.names)
        self._engine.refresh()
        self._log(OPS, f"[handlers] bind {len(disp.bindings) - 1}:{binding.id}")
        first, self._ever_bound = not self._ever_bound, True
        err = self._engine.err
        if first and EXCEPTION in self._clock.active_set and err is not None:
            self.add_err(err)
        return binding.id

    def detach_handlers(self, binding_id: str) -> None:
        """Unbind the handlers bound under ``binding_id``; ``KeyError`` if there are none."""
        self._dispatcher.detach(binding_id, self._clock.names)
        self._engine.refresh()
        self._log(OPS, f"[handlers] detach {binding_id}")

    def handlers(self) -> list[str]:
        """The ids of the bound handler objects, in bind order."""
        return [b.id for b in self._dispatcher.bindings]

    def on_change(self, fn: ChangeFn) -> None:
        """Call ``fn(mach, time_before, time_after)`` after every transition, canceled or not
        (checks excluded)."""
        self._engine.on_change.append(fn)
        self._engine.refresh()

    def on_error(self, fn: ErrorFn) -> None:
        """Call ``fn(mach, err)`` whenever an error is added, before ``Exception`` activates."""
        self._engine.on_error.append(fn)

    # ------------------------------------------------------------------ lifecycle

    def on_dispose(self, fn: Callable[[str], None]) -> None:
        """Call ``fn(machine_id)`` once the machine is disposed."""
        self._on_dispose.append(fn)

    def dispose(self) -> None:
        """Stop the machine: remove ``Start`` first (if defined), then cancel everything
        (docs/semantics.md#disposal). From a handler, the current queue run finishes it."""
        engine = self._engine
        if engine.disposing:
            return
        if "Start" in self._schema and "Start" in self._clock.active_set:
            if engine.running:
                self._queue.prepend(Mutation(REMOVE, ["Start"], {}, internal=True))
            else:
                self.remove1("Start")
        engine.disposing = True
        if engine.running:
            engine.after_run.append(self._finish_dispose)
        else:
            self._finish_dispose()

    def _finish_dispose(self) -> None:
        if self._disposed:
            return
        self._queue.clear()
        self._disposed = True
        self._observer.trace("machine_dispose", self._id)
        self._observer.disposed = True
        self._dispatcher.clear()
        self._subs.dispose()
        ctxs, self._engine.state_ctxs = self._engine.state_ctxs, {}
        for ctx in ctxs.values():
            ctx.cancel()
        self._clock.clear_active()
        for fn in self._on_dispose:
            fn(self._id)
        self._ctx.cancel()
        if self._disposed_waiter is not None:
            self._disposed_waiter._resolve()

    def export(self) -> dict[str, Any]:
        """The clock as plain data, for ``import_data()`` (docs/semantics.md#export-and-import)."""
        return self._clock.export(self._id)

    def import_data(self, data: Mapping[str, Any], *, check_id: bool = True) -> None:
        """Restore a clock from ``export()``: the state names must match, and so must the id
        unless ``check_id=False`` (docs/semantics.md#export-and-import)."""
        if check_id and data.get("id") != self._id:
            raise ValueError(f"import ID mismatch: {data.get('id')!r} is not {self._id!r}")
        names = list(data["state_names"])
        ticks = list(data["time"])
        own = self._clock.names
        if set(names) != set(own) or len(names) != len(own):
            raise ValueError(f"import: state names differ: {' '.join(names)} vs {' '.join(own)}")
        if len(ticks) != len(names) or not all(isinstance(t, int) and t >= 0 for t in ticks):
            raise ValueError("import: time must be one non-negative int per state")
        if self._engine.running:
            raise RuntimeError("import: cannot import during a transition")
        self._set_schema(self._schema, names)
        self._verified = True
        self._clock.restore(names, ticks, int(data.get("machine_tick", 0)))
        self._log(
            CHANGES,
            f"[import] imported {self._clock.machine_tick} times, now at {sum(ticks)} ticks",
        )
        if "MachineRestored" in self._schema:
            self.add1("MachineRestored")


def _source(e: Event) -> MutationSource:
    tx = e.transition
    return MutationSource(e.machine.id, tx.id, sum(tx.time_before))
