"""The read-and-wait half of a machine: clocks, checks and waiters, shared by local machines and
their remote mirrors (``rpc.NetMachine``), which own the same kind of clock but change it
differently (docs/semantics.md#reading, #waiters)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ._clock import Clock
from ._ctx import Ctx
from ._errors import StateMissingError
from ._log import DECISIONS
from ._schema import EXCEPTION, Schema
from ._subscriptions import Query, Subscriptions
from ._time import Time, next_active_in
from ._waiter import Waiter, cancelled_waiter, resolved_waiter


class ClockView:
    """Reads and waits over a :class:`Clock`: ``state_names()`` order, ticks, the active set.

    Subclasses own ``_clock`` and call ``_subs.process()`` after each change to it, which
    resolves the waiters synchronously.
    """

    _id: str
    _schema: Schema
    _clock: Clock
    _subs: Subscriptions
    _disposed: bool

    @property
    def id(self) -> str:
        """The machine's id."""
        return self._id

    def _log(self, level: int, msg: str) -> None:
        """Log a line (machines log; mirrors do not)."""

    def _called(self, states: Sequence[str]) -> list[str]:
        if isinstance(states, str):
            raise TypeError(
                f"states must be a list of state names, got the string {states!r} "
                "(use the *1 variant for a single state)"
            )
        called = list(dict.fromkeys(states))
        known = self._clock.ticks  # the schema's names; the dict the transition ticks next
        for s in called:
            if s not in known:
                raise StateMissingError([x for x in called if x not in known], self._id)
        return called

    def _called1(self, state: str) -> list[str]:
        if state not in self._clock.ticks:
            raise StateMissingError([state], self._id)
        return [state]

    def is_(self, states: Sequence[str]) -> bool:
        """All ``states`` are active (an unknown name is simply not active)."""
        active = self._clock.active_set
        for s in states:
            if s not in active:
                if s not in self._schema:
                    self._log(DECISIONS, f"[is] state {s} not found")
                return False
        return True

    def is1(self, state: str) -> bool:
        """``state`` is active (an unknown name is simply not active)."""
        return state in self._clock.active_set

    def not_(self, states: Sequence[str]) -> bool:
        """None of ``states`` is active; unknown names raise ``StateMissingError``."""
        called = self._called(states)
        return not any(s in self._clock.active_set for s in called)

    def not1(self, state: str) -> bool:
        """``state`` is inactive; an unknown name raises ``StateMissingError``."""
        self._called1(state)
        return state not in self._clock.active_set

    def any(self, *lists: Sequence[str]) -> bool:
        """Some list is fully active."""
        return any(self.is_(states) for states in lists)

    def any1(self, *states: str) -> bool:
        """Some single state is active."""
        return any(s in self._clock.active_set for s in states)

    def has(self, states: Sequence[str]) -> bool:
        """All names are in the schema."""
        if self._disposed:
            return False
        return all(s in self._schema for s in states)

    def has1(self, state: str) -> bool:
        """``state`` is in the schema."""
        return not self._disposed and state in self._schema

    def switch(self, *groups: Sequence[str]) -> str:
        """The first active state, scanning the groups in order; ``""`` if none."""
        for group in groups:
            for s in group:
                if s in self._clock.active_set:
                    return s
        return ""

    def active_states(self, states: Sequence[str] | None = None) -> list[str]:
        """Active states in target order, or those of ``states`` that are active."""
        if states is None:
            return list(self._clock.active)
        return [s for s in states if s in self._clock.active_set]

    def state_names(self) -> list[str]:
        """Every state, in the machine's order (sorted, or as verified)."""
        return list(self._clock.names)

    def index1(self, state: str) -> int:
        """The position of ``state`` in ``state_names()``, -1 if unknown."""
        if self._disposed:
            return -1
        return self._clock.index.get(state, -1)

    def index(self, states: Sequence[str]) -> list[int]:
        """``index1`` of each state."""
        return [self.index1(s) for s in states]

    def tick(self, state: str) -> int:
        """The clock of ``state`` (odd: active), 0 if unknown."""
        if self._disposed:
            return 0
        return self._clock.ticks.get(state, 0)

    def time(self, states: Sequence[str] | None = None) -> Time:
        """Ticks of ``states`` (default: all, in ``state_names()`` order)."""
        if self._disposed:
            return Time()
        return self._clock.time(states)

    def clock(self, states: Sequence[str] | None = None) -> dict[str, int]:
        """Ticks by name, of ``states`` (default: all)."""
        if self._disposed:
            return {}
        ticks = self._clock.ticks
        return {s: ticks.get(s, 0) for s in (self._clock.names if states is None else states)}

    def is_time(self, time: Sequence[int], states: Sequence[str] | None = None) -> bool:
        """True when nothing in ``states`` ticked since ``time`` was read."""
        if self._disposed:
            return False
        names = self._clock.names if states is None else states
        if len(names) != len(time):
            return False
        ticks = self._clock.ticks
        return all(ticks.get(s, -1) == t for s, t in zip(names, time, strict=True))

    def is_clock(self, clock: Mapping[str, int]) -> bool:
        """True when no state in ``clock`` ticked since it was read."""
        if self._disposed:
            return False
        ticks = self._clock.ticks
        return all(ticks.get(s, -1) == t for s, t in clock.items())

    def was_clock(self, clock: Mapping[str, int]) -> bool:
        """True when every state in ``clock`` is at that tick or later."""
        if self._disposed:
            return False
        ticks = self._clock.ticks
        return all(ticks.get(s, -1) >= t for s, t in clock.items())

    def was_time(self, time: Sequence[int], states: Sequence[str] | None = None) -> bool:
        """True when every state in ``states`` is at its tick in ``time`` or later."""
        if self._disposed:
            return False
        names = self._clock.names if states is None else states
        ticks = self._clock.ticks
        return all(ticks.get(s, -1) >= t for s, t in zip(names, time, strict=False))

    def queue_tick(self) -> int:
        """The tick of the last dequeued mutation (docs/semantics.md#queue)."""
        return self._clock.queue_tick

    def is_err(self) -> bool:
        """``Exception`` is active."""
        return EXCEPTION in self._clock.active_set

    def string(self) -> str:
        """Active states with ticks: ``(A:1 B:3)``."""
        if self._disposed:
            return ""
        clock = self._clock
        ticks, active = clock.ticks, clock.active_set
        return "(" + " ".join(f"{s}:{ticks[s]}" for s in clock.names if s in active) + ")"

    def string_all(self) -> str:
        """Active, then inactive states with ticks: ``(A:1 B:3) [C:0 Exception:0]``."""
        if self._disposed:
            return ""
        clock = self._clock
        ticks, active = clock.ticks, clock.active_set
        inactive = " ".join(f"{s}:{ticks[s]}" for s in clock.names if s not in active)
        return f"{self.string()} [{inactive}]"

    def inspect(self, states: Sequence[str] | None = None) -> str:
        """A multi-line dump of states, ticks and relations (docs/semantics.md#reading)."""
        if self._disposed:
            return ""
        lines: list[str] = []
        clock = self._clock
        for name in clock.names if states is None else states:
            state = self._schema[name]
            lines.append(f"{1 if name in clock.active_set else 0} {name}")
            lines.append(f"    |Tick     {clock.ticks[name]}")
            if state.auto:
                lines.append("    |Auto     true")
            if state.multi:
                lines.append("    |Multi    true")
            for rel in ("add", "require", "remove", "after"):
                value = getattr(state, rel)
                if value:
                    lines.append(f"    |{rel.capitalize():<9}{' '.join(value)}")
        return "".join(line + "\n" for line in lines)

    def _ctx_ok(self, ctx: Ctx | None) -> bool:
        return not self._disposed and (ctx is None or not ctx.done())

    def when(self, states: Sequence[str], ctx: Ctx | None = None) -> Waiter:
        """Resolved once all ``states`` are active."""
        if len(states) == 1 and not isinstance(states, str):
            return self.when1(states[0], ctx)
        if not self._ctx_ok(ctx):
            return cancelled_waiter()
        called = self._called(states)
        if self._clock.active_set.issuperset(called):
            return resolved_waiter()
        key = ("when", frozenset(called), ctx)
        return self._subs.reuse(key) or self._subs.add_when(called, ctx, key, negate=False)

    def when1(self, state: str, ctx: Ctx | None = None) -> Waiter:
        """Resolved once ``state`` is active."""
        if self._disposed or (ctx is not None and ctx.done()):
            return cancelled_waiter()
        if state in self._clock.active_set:
            return resolved_waiter()
        if state not in self._schema:
            raise StateMissingError([state], self._id)
        subs = self._subs
        if ctx is None:
            return subs.plain.get(state) or subs.add_plain(state)
        key = ("when", state, ctx)
        return subs.keys.get(key) or subs.add_when((state,), ctx, key, negate=False)

    def when_not(self, states: Sequence[str], ctx: Ctx | None = None) -> Waiter:
        """Resolved once none of ``states`` is active."""
        if not self._ctx_ok(ctx):
            return cancelled_waiter()
        called = self._called(states)
        if not any(s in self._clock.active_set for s in called):
            return resolved_waiter()
        key = ("not", frozenset(called), ctx)
        return self._subs.reuse(key) or self._subs.add_when(called, ctx, key, negate=True)

    def when_not1(self, state: str, ctx: Ctx | None = None) -> Waiter:
        """Resolved once ``state`` is inactive."""
        return self.when_not([state], ctx)

    def when_err(self, ctx: Ctx | None = None) -> Waiter:
        """Resolved once ``Exception`` is active."""
        return self.when1(EXCEPTION, ctx)

    def when_time(
        self, states: Sequence[str], times: Sequence[int], ctx: Ctx | None = None
    ) -> Waiter:
        """Resolved once ``tick(states[i]) >= times[i]`` for every i."""
        if len(states) != len(times) or not states:
            raise ValueError(
                f"when_time: states and times must have the same length ({' '.join(states)}) > 0"
            )
        if not self._ctx_ok(ctx):
            return cancelled_waiter()
        called = self._called(states)
        if len(called) != len(states):
            raise ValueError("when_time: duplicate states")
        ticks = self._clock.ticks
        if all(ticks[s] >= t for s, t in zip(called, times, strict=True)):
            return resolved_waiter()
        key = ("time", tuple(called), tuple(times), ctx)
        return self._subs.reuse(key) or self._subs.add_time(called, times, ctx, key)

    def when_time1(self, state: str, tick: int, ctx: Ctx | None = None) -> Waiter:
        """Resolved once ``tick(state) >= tick``."""
        return self.when_time([state], [tick], ctx)

    def when_ticks(self, state: str, n: int, ctx: Ctx | None = None) -> Waiter:
        """Resolved once ``state`` ticked ``n`` more times from now."""
        self._called1(state)
        return self.when_time([state], [self._clock.ticks[state] + n], ctx)

    def when_next_active(self, state: str, ctx: Ctx | None = None) -> Waiter:
        """Resolved on the next activation, not the current one."""
        self._called1(state)
        return self.when_ticks(state, next_active_in(self._clock.ticks[state]), ctx)

    def when_query(self, fn: Query, ctx: Ctx | None = None) -> Waiter:
        """Resolved after a transition when ``fn(clock)`` is true (not checked at creation)."""
        if not self._ctx_ok(ctx):
            return cancelled_waiter()
        return self._subs.add_query(fn, ctx)

    def when_queue(self, tick: int) -> Waiter:
        """Resolved once the queue tick reaches ``tick`` (e.g. a queued mutation's result)."""
        if self._disposed:
            return cancelled_waiter()
        if self._clock.queue_tick >= tick:
            return resolved_waiter()
        return self._subs.add_queue(tick)
