"""The transition engine: the queue loop, and one transition at a time.

A transition resolves relations, asks the negotiation handlers, applies the clock, runs the final
handlers, resolves waiters and schedules auto states (docs/semantics.md#transitions). That path is
one function, :meth:`Engine._transition`, written for speed: an unobserved machine (no handlers,
tracers, waiters or logs) builds no mutation or transition object at all, a mutation of states
without relations skips resolution, and other resolutions are remembered (``_resolver.Memo``).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from typing import Any

from ._clock import Clock, StateSet
from ._ctx import Ctx
from ._dispatch import Dispatcher
from ._log import CHANGES, DECISIONS, EVERYTHING, OPS
from ._observer import Observer
from ._queue import MutationQueue
from ._resolver import Memo, Resolver
from ._result import Canceled, Executed, Queued, Result
from ._schema import EXCEPTION, Schema
from ._subscriptions import Subscriptions
from ._time import Time
from ._transition import (
    ERR_ARGS_KEY,
    ErrArgs,
    Explanation,
    Mutation,
    MutationFields,
    MutationSource,
    MutationType,
    PanicInfo,
    Transition,
    _current,
)

ADD, REMOVE, SET = MutationType.ADD, MutationType.REMOVE, MutationType.SET
_KIND = {ADD: 0, REMOVE: 1, SET: 2}
_HEALTH = ("Healthcheck", "Heartbeat")
"""Adding one of these alone never triggers auto states (docs/semantics.md#auto-states)."""

ChangeFn = Callable[[Any, Time, Time], None]
ErrorFn = Callable[[Any, BaseException], None]


class Engine:
    """Runs one machine's mutations: the queue loop and the transitions.

    Its collaborators are given to it (clock, queue, observer, dispatcher, subscriptions); it
    never calls back into the machine, except through ``owner`` handed to hooks and the
    ``after_run`` callbacks (run once when the current queue run ends).
    """

    __slots__ = (
        "after_run",
        "autos",
        "clock",
        "dispatcher",
        "disposing",
        "err",
        "in_eval",
        "lean",
        "machine_id",
        "memo",
        "multi",
        "observer",
        "on_change",
        "on_error",
        "owner",
        "panic_to_exception",
        "queue",
        "refused_by",
        "related",
        "reraise",
        "resolver",
        "running",
        "schema",
        "state_ctxs",
        "subs",
        "tx",
    )

    def __init__(
        self,
        owner: object,
        machine_id: str,
        clock: Clock,
        queue: MutationQueue,
        observer: Observer,
        dispatcher: Dispatcher,
        subs: Subscriptions,
        panic_to_exception: bool,
    ) -> None:
        self.owner = owner
        self.machine_id = machine_id
        self.clock = clock
        self.queue = queue
        self.observer = observer
        self.dispatcher = dispatcher
        self.subs = subs
        self.panic_to_exception = panic_to_exception
        self.schema: Schema = {}
        self.resolver = Resolver({}, ())
        self.memo = Memo(self.resolver)
        self.multi: frozenset[str] = frozenset()
        self.related: set[str] = set()
        self.autos = False
        """The schema has auto states."""
        self.running = False
        """A queue run is in progress (handlers are on the stack): new mutations are queued."""
        self.disposing = False
        self.in_eval = False
        self.tx: Transition | None = None
        self.err: BaseException | None = None
        self.reraise: Exception | None = None
        self.refused_by: str | None = None
        """The negotiation handler that refused the last refused transition."""
        self.on_error: list[ErrorFn] = []
        self.on_change: list[ChangeFn] = []
        self.after_run: list[Callable[[], None]] = []
        self.state_ctxs: dict[str, Ctx] = {}
        self.lean = True
        """Nothing can observe a transition: mutations need no objects (see :meth:`refresh`)."""

    def set_schema(self, schema: Schema, names: Sequence[str]) -> None:
        """Resolve with a new schema or state order (the memo starts over)."""
        self.schema = schema
        self.resolver = Resolver(schema, names)
        self.memo = Memo(self.resolver)
        self.multi = self.resolver.multi
        self.related = self.resolver.related
        self.autos = bool(self.resolver.auto_states)

    def refresh(self) -> None:
        """Recompute ``lean`` after handlers, tracers, hooks or the log level changed."""
        obs = self.observer
        self.dispatcher.refresh()
        self.lean = not (
            self.dispatcher.by_name
            or obs.traced
            or obs.breakpoints
            or obs.level >= CHANGES
            or self.on_change
        )

    # ------------------------------------------------------------------ entering the queue

    def mutate(
        self,
        mtype: MutationType,
        called: list[str],
        args: dict[str, Any] | None,
        source: MutationSource | None = None,
    ) -> Result:
        """Run (when idle) or queue a mutation (docs/semantics.md#queue)."""
        if self.disposing:
            return Canceled
        queue = self.queue
        if not self.running and not queue.items and queue.limit > 0:
            # idle: the mutation runs now, as if queued and dequeued at once
            clock = self.clock
            clock.queue_tick += 1
            if self.lean and not self.subs.count and not self.state_ctxs:
                return self.process(mtype, called, None)
            fields: MutationFields = (
                mtype,
                called,
                {} if args is None else args,
                False,
                False,
                clock.queue_tick,
                source,
            )
            obs = self.observer
            if "mutation_queued" in obs.hooks or obs.level >= OPS:
                mut = Mutation(*fields)
                self._queued(mut)
                return self.process(mtype, called, mut)
            return self.process(mtype, called, fields)
        obs = self.observer
        if len(queue.items) >= queue.limit and not queue.lets_through(
            mtype, called, self.clock.active_set
        ):
            obs.log(OPS, f"[queue:skipped] queue limit reached for [{mtype}] {' '.join(called)}")
            return Canceled
        if self.running and queue.items:
            if not args and self.multi.isdisjoint(called) and queue.repeats_last(mtype, called):
                obs.log(OPS, f"[queue:skipped] Duplicate detected for [{mtype}] {' '.join(called)}")
                return Executed
        elif mtype is REMOVE and self.running and self.clock.active_set.isdisjoint(called):
            return Executed
        mut = Mutation(mtype, called, {} if args is None else args, source=source)
        return self._push(mut)

    def add_error(
        self,
        called: list[str],
        err: BaseException,
        args: dict[str, Any] | None,
        source: MutationSource | None,
        logged: bool = False,
    ) -> Result:
        """Store ``err`` and queue ``Exception`` (and an error state) with it in the args."""
        if len(self.queue.items) >= self.queue.limit:
            return Canceled
        self.err = err
        trace = "".join(traceback.format_exception(err)) if err.__traceback__ else ""
        for fn in self.on_error:
            fn(self.owner, err)
        merged = dict(args) if args else {}
        merged[ERR_ARGS_KEY] = ErrArgs(err, trace, logged=logged)
        return self._push(Mutation(ADD, called, merged, source=source))

    def check(self, mtype: MutationType, called: list[str], args: dict[str, Any] | None) -> Result:
        """A dry run: relations and negotiation, nothing applied (docs/semantics.md#dry-runs)."""
        if self.disposing:
            return Canceled
        mut = Mutation(mtype, called, {} if args is None else args, is_check=True)
        self._prepend(mut)
        if self.running:
            return Queued
        return self._run_queue()

    def explain(
        self, mtype: MutationType, called: list[str], args: dict[str, Any] | None
    ) -> Explanation:
        """A dry run that also says why (docs/semantics.md#explanations)."""
        if self.running:
            raise RuntimeError(
                "explain_* cannot run during a transition (from a handler): it runs handlers "
                "itself; call it from outside, or use can_add/can_remove there"
            )
        if self.disposing:
            return Explanation(Canceled, [], [], [], None, [])
        clock = self.clock
        why: dict[str, str] = {}
        kind = _KIND[mtype]
        res = self.resolver.resolve(kind, called, clock.active, clock.active_set, why=why)
        rejected = []
        if mtype is not REMOVE:  # a remove drops the called states on purpose
            rejected = [(s, why[s]) for s in called if s not in res.target_set]
        canceled_by = None
        result = Executed if res.accepted else Canceled
        if res.accepted:
            self.refused_by = None
            result = self.check(mtype, called, dict(args) if args else None)
            canceled_by = self.refused_by
        return Explanation(
            result, list(res.target), list(res.enters), list(res.exits), canceled_by, rejected
        )

    def eval(self, fn: Callable[[], Any], label: str) -> None:
        """Run ``fn`` first thing on the queue (the caller checked it may run now)."""
        self._prepend(Mutation(MutationType.EVAL, [], {}, eval_label=label, eval_fn=fn))
        self._run_queue()

    def _push(self, mut: Mutation) -> Result:
        tick = self.queue.push(mut)
        self._queued(mut)
        if self.running:
            return Result(tick)
        return self._run_queue()

    def _queued(self, mut: Mutation) -> None:
        obs = self.observer
        if "mutation_queued" in obs.hooks:
            obs.trace("mutation_queued", self.owner, mut)
        if obs.level >= OPS:
            called = " ".join(mut.called)
            obs.log(OPS, f"[queue:{mut.type}] {called}{obs.fmt_args(mut.args)}")

    def _prepend(self, mut: Mutation) -> None:
        self.queue.prepend(mut)
        obs = self.observer
        if "mutation_queued" in obs.hooks:
            obs.trace("mutation_queued", self.owner, mut)
        if obs.level >= OPS:
            obs.log(OPS, f"[prepend:{mut.type}] {' '.join(mut.called)}")

    # ------------------------------------------------------------------ the queue loop

    def _run_queue(self) -> Result:
        """Process the queue from its head; the result of the head mutation."""
        first = self.queue.pop()
        return self.process(first.type, first.called, first)

    def process(
        self, mtype: MutationType, called: list[str], first: Mutation | MutationFields | None
    ) -> Result:
        """Run one mutation (``first=None``: an unobserved one; a tuple: one nobody queued, whose
        ``Mutation`` is made only if asked for), then the queue until empty."""
        queue = self.queue
        subs = self.subs
        self.running = True
        result = Executed
        try:
            if type(first) is Mutation and first.eval_fn is not None:
                self._run_eval(first)
            else:
                result = self._transition(mtype, called, first)
                if self.reraise is not None:
                    err, self.reraise = self.reraise, None
                    raise err
            if subs.queue_heap:
                subs.queue_reached(self.clock.queue_tick)
            while queue.items:
                mut = queue.pop()
                if self.disposing and not mut.internal:
                    continue
                if mut.eval_fn is not None:
                    self._run_eval(mut)
                else:
                    self._transition(mut.type, mut.called, mut)
                    if self.reraise is not None:
                        err, self.reraise = self.reraise, None
                        raise err
                if subs.queue_heap and mut.queue_tick:
                    subs.queue_reached(self.clock.queue_tick)
        finally:
            self.running = False
            self.tx = None
        if "queue_end" in self.observer.hooks:
            self.observer.trace("queue_end", self.owner)
        if subs.queue_ends:
            subs.queue_ended()
        if self.after_run:
            callbacks, self.after_run = self.after_run, []
            for fn in callbacks:
                fn()
        return result

    def _run_eval(self, mut: Mutation) -> None:
        assert mut.eval_fn is not None
        self.observer.log(OPS, f"[eval] {mut.eval_label}")
        self.in_eval = True
        try:
            mut.eval_fn()
        finally:
            self.in_eval = False

    # ------------------------------------------------------------------ one transition

    def _transition(
        self, mtype: MutationType, called: list[str], mut: Mutation | MutationFields | None
    ) -> Result:
        """Resolve, negotiate, apply and finalise one mutation: the hot path.

        ``mut is None`` means nobody can observe this transition (``lean``, no waiters): it then
        needs no ``Mutation``/``Transition`` objects and no handler or waiter work.
        """
        clock = self.clock
        active = clock.active_set
        obs = self.observer
        level = obs.level
        is_auto = is_check = False
        tx = None
        if mut is not None:
            if type(mut) is Mutation:
                is_auto, is_check = mut.is_auto, mut.is_check
            tx = self.tx = Transition(self.owner, self.machine_id, clock, mut, clock.snapshot())
            if level >= OPS:
                if is_auto:
                    obs.log(DECISIONS, f"[add:auto] {' '.join(called)}")
                else:
                    args = tx.mutation.args
                    obs.log(OPS, f"[{mtype}] {' '.join(called)}{obs.fmt_args(args)}")

        # relations (docs/semantics.md#relations)
        related = self.related
        accepted = True
        target: tuple[str, ...] | None = None  # None: an add or remove the clock applies itself
        target_set: StateSet = active
        exits: Sequence[str] = ()
        enters: Sequence[str] = ()
        if level < OPS and (
            not related or (related.isdisjoint(called) and related.isdisjoint(active))
        ):
            # no relations involved: what changes follows from the called states alone
            multi = self.multi
            if mtype is ADD:
                if len(called) == 1:
                    if called[0] not in active or called[0] in multi:
                        enters = called
                elif active.isdisjoint(called):
                    enters = called
                else:
                    enters = [s for s in called if s not in active or s in multi]
            elif mtype is REMOVE:
                if len(called) == 1:
                    if called[0] in active:
                        exits = called
                else:
                    gone = [s for s in called if s in active]
                    exits = clock.in_order(gone) if len(gone) > 1 else gone
            else:
                target = tuple(called)
                target_set = set(target)
                exits = [s for s in clock.active if s not in target_set]
                enters = [s for s in target if s not in active or s in multi]
        else:
            kind = _KIND[mtype]  # logged: resolved from scratch, so the logs tell it all
            before = clock.active
            if level < OPS and not is_check:
                res = self.memo.resolve(kind, called, before, active, is_auto)
            else:
                log = obs.log if level >= OPS else None
                res = self.resolver.resolve(kind, called, before, active, is_auto, is_check, log)
            target, target_set, exits, enters = res.target, res.target_set, res.exits, res.enters
            accepted = res.accepted
        if tx is not None:
            tx._target, tx._exits, tx._enters = target, exits, enters
            tx.is_accepted = accepted
            hooks = obs.hooks
            if "transition_init" in hooks:
                obs.trace("transition_init", tx)
            if "transition_start" in hooks:
                obs.trace("transition_start", tx)

        # negotiation (docs/semantics.md#negotiation)
        disp = self.dispatcher
        token = None
        try:
            if accepted and tx is not None and (disp.by_name or level >= EVERYTHING):
                token = _current.set(tx)
                outcome = disp.negotiate(
                    tx, exits, enters, active, self.schema if is_auto else None
                )
                if disp.errors:
                    self._handler_errors(tx)
                if outcome is not None:
                    if isinstance(outcome, str):
                        accepted = False
                        self.refused_by = outcome
                    else:  # an auto transition without the auto states whose handlers refused
                        kept = set(tx._target_order()) - outcome
                        resolver = self.resolver
                        before = tx._before_order()
                        target = tuple(
                            resolver.reresolve_auto(called, kept, outcome, before, active)
                        )
                        if not target:
                            accepted = False
                        else:
                            target_set = set(target)
                            exits = resolver.exits(before, target_set)
                            enters = resolver.enters(target, active, called)
                            tx._target, tx._exits, tx._enters = target, exits, enters
                if not accepted:
                    tx.is_accepted = False

            if is_check or not accepted:
                if tx is not None:
                    self._end(tx)
                return Executed if accepted else Canceled

            # apply (docs/semantics.md#clocks)
            if target is not None:
                clock.apply(target, target_set, exits, enters)
            elif mtype is ADD:
                clock.apply_add(called, enters)
            else:
                clock.apply_remove(exits)
            changed = bool(exits or enters)
            if tx is not None:
                tx._applied = True
                if level >= CHANGES and (changed or level >= EVERYTHING):
                    shown = clock.active if level >= EVERYTHING else ()
                    obs.log_state(is_auto, exits, enters, shown, tx.mutation.args)
            if changed and self.state_ctxs:
                self._cancel_state_ctxs(exits, enters)
            if tx is None:
                # lean: nothing else can be bound; only auto states may follow
                if changed and self.autos and self._autos_follow(mtype, called):
                    self._schedule_auto()
                if mtype is REMOVE and not clock.active_set.isdisjoint(called):
                    return Canceled
                return Executed
            if "transition_finals" in obs.hooks:
                obs.trace("transition_finals", tx)

            # finals (docs/semantics.md#final-handlers)
            ok = True
            subs = self.subs
            if disp.by_name:
                if token is None:
                    token = _current.set(tx)
                stop = disp.finals(tx, exits, enters)
                if subs.args:
                    matched = enters if stop is None else enters[: max(stop + 1, 0)]
                    for s in matched:
                        subs.match_args(s, tx.mutation.args)
                if disp.errors:
                    self._handler_errors(tx)
                if stop is not None:
                    ok = False
                    if stop >= 0:
                        rolled = [s for s in enters[stop:] if s in clock.active_set]
                        clock.rollback(rolled)
                        tx._rolled_back = rolled
                        if self.state_ctxs:
                            self._cancel_state_ctxs((), rolled)
            elif subs.args:
                for s in enters:
                    subs.match_args(s, tx.mutation.args)
        finally:
            if token is not None:
                _current.reset(token)

        assert tx is not None  # the lean path has returned
        if not ok:
            result = Canceled
            tx.is_accepted = False
        elif mtype is REMOVE and not clock.active_set.isdisjoint(called):
            result = Canceled
        else:
            result = Executed
        if changed:
            if obs.breakpoints:
                obs.check_breakpoints(tx, exits, enters)
            if ok and not is_auto and self.autos and self._autos_follow(mtype, called):
                self._schedule_auto()
        tx.is_completed = True
        if self.on_change or obs.traced:
            self._end(tx)
        if subs.count and (changed or subs.queries):
            now = clock.active_set
            activated = enters if ok else [s for s in enters if s in now]
            subs.process(activated, exits, [*exits, *enters], now, clock.ticks, clock.queue_tick)
        return result

    def _end(self, tx: Transition) -> None:
        tx.is_completed = True
        if self.on_change and not tx.mutation.is_check:
            before, after = tx.time_before, tx.time_after
            for fn in self.on_change:
                fn(self.owner, before, after)
        if "transition_end" in self.observer.hooks:
            self.observer.trace("transition_end", tx)

    def _autos_follow(self, mtype: MutationType, called: Sequence[str]) -> bool:
        """A changing, non-auto transition is followed by auto states, unless the machine is
        disposing or the mutation only added ``Healthcheck``/``Heartbeat``."""
        if self.disposing:
            return False
        return not (mtype is ADD and len(called) == 1 and called[0] in _HEALTH)

    def _schedule_auto(self) -> None:
        """Prepend an auto mutation of every inactive, unblocked auto state
        (docs/semantics.md#auto-states)."""
        active = self.clock.active_set
        removed_by = self.resolver.removed_by
        auto: list[str] = []
        for s in self.resolver.auto_states:
            if s in active:
                continue
            blockers = removed_by.get(s)
            if blockers and not active.isdisjoint(blockers):
                continue
            auto.append(s)
        if auto:
            self.observer.log(OPS, f"[auto] {' '.join(auto)}")
            self._prepend(Mutation(ADD, auto, {}, is_auto=True))

    def _cancel_state_ctxs(self, exits: Sequence[str], enters: Sequence[str]) -> None:
        """A state's context ends when its tick moves (docs/semantics.md#contexts)."""
        ctxs = self.state_ctxs
        for states in (exits, enters):
            for s in states:
                ctx = ctxs.pop(s, None)
                if ctx is not None:
                    self.observer.log(OPS, f"[ctx:match] {s}")
                    ctx.cancel()

    def _handler_errors(self, tx: Transition) -> None:
        """Handlers raised: log each error, queue ``Exception`` with it
        (docs/semantics.md#errors).

        With ``panic_to_exception=False`` the first one is raised to the mutation's caller once
        the transition is cleaned up.
        """
        errors = self.dispatcher.errors
        pending, errors[:] = list(errors), []
        mut = tx.mutation
        for name, err in pending:
            if not self.panic_to_exception:
                if self.reraise is None:
                    self.reraise = err
                continue
            trace = "".join(traceback.format_exception(err))
            called = " ".join(mut.called)
            self.observer.error(f"[error:{mut.type}] {called} ({err})\n{trace.rstrip()}")
            if EXCEPTION in mut.called:
                continue  # no nesting: an Exception handler that raises queues no new Exception
            self.err = err
            for fn in self.on_error:
                fn(self.owner, err)
            panic = PanicInfo(name, tuple(mut.called), tx._before_order(), tx)
            self._prepend(
                Mutation(ADD, [EXCEPTION], {ERR_ARGS_KEY: ErrArgs(err, trace, panic, logged=True)})
            )
