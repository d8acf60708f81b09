"""Subscriptions: pending waiters indexed by the states that can satisfy them.

After a transition only the waiters on states that changed are looked at, so a machine with many
states and few waiters pays for the waiters it has, not for its size (docs/semantics.md#waiters).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ._clock import StateSet
from ._ctx import Ctx
from ._waiter import _RESOLVED, Waiter, cancelled_waiter

Query = Callable[[dict[str, int]], bool]


class _Sub(Waiter):
    """A pending waiter and what it waits for."""

    __slots__ = ("ctx", "extra", "index", "key", "kind", "owner", "states")

    def __init__(
        self,
        owner: Subscriptions,
        kind: str,
        states: Sequence[str],
        key: Any,
        ctx: Ctx | None,
        extra: Any = None,
    ) -> None:
        self._state = 0
        self._callbacks = None
        self.owner = owner
        self.kind = kind
        self.states = states
        self.key = key
        self.ctx = ctx
        self.extra = extra
        self.index: dict[str, dict[_Sub, None]] | None = None

    def _unlink(self) -> None:
        """Forget this sub everywhere once its waiter ended (either way)."""
        owner = self.owner
        owner.count -= 1
        if self.key is not None:
            owner.keys.pop(self.key, None)
        index = self.index
        if index is not None:
            for s in self.states:
                subs = index.get(s)
                if subs is not None:
                    subs.pop(self, None)
                    if not subs:
                        del index[s]
        elif self.kind == "query":
            owner.queries.pop(self, None)
        elif self.kind == "ends":
            owner.queue_ends.pop(self, None)
        if self.ctx is not None:
            self.ctx.remove_done_callback(self.on_ctx_done)

    def on_ctx_done(self, _: Ctx) -> None:
        self._cancel()


class _Plain(Waiter):
    """``when1(state)`` without a ctx: one shared waiter per state, in ``Subscriptions.plain``."""

    __slots__ = ("owner", "state")

    def __init__(self, owner: Subscriptions, state: str) -> None:
        self._state = 0
        self._callbacks = None
        self.owner = owner
        self.state = state

    def _unlink(self) -> None:
        """Cancelled (disposal): forget it. A resolved one was already taken out."""
        owner = self.owner
        if owner.plain.get(self.state) is self:
            del owner.plain[self.state]
            owner.count -= 1


class Subscriptions:
    """The machine's pending waiters."""

    __slots__ = (
        "args",
        "count",
        "keys",
        "plain",
        "queries",
        "queue_ends",
        "queue_heap",
        "time",
        "when",
        "when_not",
    )

    def __init__(self) -> None:
        self.count = 0
        """Pending subs; 0 lets the engine skip all subscription work."""
        self.keys: dict[Any, _Sub] = {}
        self.plain: dict[str, _Plain] = {}
        """``when1(state)`` without a ctx, the common case: one shared waiter per state, resolved
        without looking at any other state."""
        self.when: dict[str, dict[_Sub, None]] = {}
        self.when_not: dict[str, dict[_Sub, None]] = {}
        self.time: dict[str, dict[_Sub, None]] = {}
        self.args: dict[str, dict[_Sub, None]] = {}
        self.queries: dict[_Sub, None] = {}
        self.queue_ends: dict[_Sub, None] = {}
        self.queue_heap: list[tuple[int, int, Waiter]] = []

    def _new(
        self,
        kind: str,
        states: Sequence[str],
        key: Any,
        ctx: Ctx | None,
        index: dict[str, dict[_Sub, None]] | None,
        extra: Any = None,
    ) -> Waiter:
        if ctx is not None and ctx.done():
            return cancelled_waiter()
        sub = _Sub(self, kind, states, key, ctx, extra)
        self.count += 1
        if key is not None:
            self.keys[key] = sub
        if index is not None:
            sub.index = index
            for s in states:
                subs = index.get(s)
                if subs is None:
                    index[s] = {sub: None}
                else:
                    subs[sub] = None
        elif kind == "query":
            self.queries[sub] = None
        elif kind == "ends":
            self.queue_ends[sub] = None
        if ctx is not None:
            ctx.add_done_callback(sub.on_ctx_done)
        return sub

    def add_plain(self, state: str) -> Waiter:
        """``when1(state)`` without a ctx (the caller checked ``plain`` for one to reuse)."""
        sub = self.plain[state] = _Plain(self, state)
        self.count += 1
        return sub

    def reuse(self, key: Any) -> Waiter | None:
        sub = self.keys.get(key)
        return sub

    def add_when(self, states: Sequence[str], ctx: Ctx | None, key: Any, negate: bool) -> Waiter:
        index = self.when_not if negate else self.when
        return self._new("not" if negate else "when", states, key, ctx, index)

    def add_time(
        self, states: Sequence[str], times: Sequence[int], ctx: Ctx | None, key: Any
    ) -> Waiter:
        return self._new("time", states, key, ctx, self.time, tuple(times))

    def add_args(self, state: str, args: Mapping[str, Any], ctx: Ctx | None) -> Waiter:
        for sub in self.args.get(state, ()):
            if sub.ctx is ctx and sub.extra == args:
                return sub
        return self._new("args", (state,), None, ctx, self.args, dict(args))

    def add_query(self, fn: Query, ctx: Ctx | None) -> Waiter:
        return self._new("query", (), None, ctx, None, fn)

    def add_queue_ends(self) -> Waiter:
        return self._new("ends", (), None, None, None)

    def add_queue(self, tick: int) -> Waiter:
        waiter = Waiter()
        heapq.heappush(self.queue_heap, (tick, id(waiter), waiter))
        return waiter

    # processing, called by the machine

    def process(
        self,
        activated: Sequence[str],
        deactivated: Sequence[str],
        ticked: Sequence[str],
        active: StateSet,
        clock: dict[str, int],
        queue_tick: int,
    ) -> None:
        """Resolve what an applied transition satisfied, in upstream's order: when, when_not,
        when_time, when_queue, when_query."""
        plain = self.plain
        if plain:
            for s in activated:
                waiter = plain.pop(s, None)
                if waiter is not None:  # resolved in place: it is in no other index
                    waiter._state = _RESOLVED
                    self.count -= 1
                    callbacks = waiter._callbacks
                    if callbacks:
                        waiter._callbacks = None
                        for fn in callbacks:
                            fn(waiter)
        if self.when:
            for s in activated:
                subs = self.when.get(s)
                if subs:
                    for sub in list(subs):
                        if active.issuperset(sub.states):
                            sub._resolve()
        if self.when_not:
            for s in deactivated:
                subs = self.when_not.get(s)
                if subs:
                    for sub in list(subs):
                        if active.isdisjoint(sub.states):
                            sub._resolve()
        if self.time:
            for s in ticked:
                subs = self.time.get(s)
                if subs:
                    for sub in list(subs):
                        if all(clock[x] >= t for x, t in zip(sub.states, sub.extra, strict=True)):
                            sub._resolve()
        if self.queue_heap:
            self.queue_reached(queue_tick)
        if self.queries:
            snapshot = dict(clock)
            for sub in list(self.queries):
                if sub.extra(snapshot):
                    sub._resolve()

    def match_args(self, state: str, args: Mapping[str, Any]) -> None:
        """A ``<state>State`` handler event is dispatched with ``args``."""
        subs = self.args.get(state)
        if not subs:
            return
        for sub in list(subs):
            want: dict[str, Any] = sub.extra
            if all(k in args and args[k] == v for k, v in want.items()):
                sub._resolve()

    def queue_reached(self, tick: int) -> None:
        heap = self.queue_heap
        while heap and heap[0][0] <= tick:
            heapq.heappop(heap)[2]._resolve()

    def queue_ended(self) -> None:
        for sub in list(self.queue_ends):
            sub._resolve()

    def dispose(self) -> None:
        """Cancel every pending waiter."""
        subs: dict[Waiter, None] = dict.fromkeys(self.plain.values())
        for index in (self.when, self.when_not, self.time, self.args):
            for group in index.values():
                subs.update(dict.fromkeys(group))
        subs.update(dict.fromkeys(self.queries))
        subs.update(dict.fromkeys(self.queue_ends))
        for sub in subs:
            sub._cancel()
        heap, self.queue_heap = self.queue_heap, []
        for _, _, waiter in heap:
            waiter._cancel()
