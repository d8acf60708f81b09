"""The mutation queue: queue ticks, the limit, de-duplication and inspection.

See docs/semantics.md#queue."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from ._clock import Clock, StateSet
from ._schema import EXCEPTION
from ._transition import Mutation, MutationType

ADD, REMOVE = MutationType.ADD, MutationType.REMOVE


class MutationQueue:
    """Mutations waiting for the current transition to end; appended ones get a queue tick.

    The clock's ``queue_tick`` is the tick of the last dequeued mutation; ``pending`` counts the
    queued ones that carry a tick, so a new one runs at ``queue_tick + pending``. Prepended
    mutations (auto, checks, errors, evals) run first and carry tick 0.
    """

    __slots__ = ("clock", "items", "limit", "pending")

    def __init__(self, clock: Clock, limit: int) -> None:
        self.clock = clock
        self.items: deque[Mutation] = deque()
        self.limit = limit
        self.pending = 0

    def __len__(self) -> int:
        return len(self.items)

    def push(self, mut: Mutation) -> int:
        """Append ``mut``; returns its queue tick."""
        self.pending += 1
        tick = mut.queue_tick = self.clock.queue_tick + self.pending
        self.items.append(mut)
        return tick

    def prepend(self, mut: Mutation) -> None:
        self.items.appendleft(mut)

    def pop(self) -> Mutation:
        """The next mutation; dequeuing one with a queue tick advances the clock's."""
        mut = self.items.popleft()
        if mut.queue_tick:
            self.pending -= 1
            self.clock.queue_tick += 1
        return mut

    def clear(self) -> None:
        self.items.clear()
        self.pending = 0

    def is_full(self) -> bool:
        return len(self.items) >= self.limit

    def lets_through(self, mtype: MutationType, called: Sequence[str], active: StateSet) -> bool:
        """Past the limit, one ``Exception`` still gets in (and out)."""
        if EXCEPTION not in called:
            return False
        if mtype is ADD:
            return EXCEPTION not in active
        if mtype is REMOVE:
            return EXCEPTION in active
        return False

    def repeats_last(self, mtype: MutationType, called: Sequence[str]) -> bool:
        """The last queued mutation is the same argless one: queuing this again changes nothing.

        Only the last one counts, since a later mutation could undo an earlier twin
        (docs/semantics.md#queue).
        """
        if not self.items:
            return False
        last = self.items[-1]
        return (
            last.type is mtype
            and not last.args
            and not last.is_check
            and not last.is_auto
            and last.eval_fn is None
            and len(last.called) == len(called)
            and set(last.called) == set(called)
        )

    def find(
        self,
        mtype: MutationType,
        states: Sequence[str],
        *,
        without_args_only: bool = False,
        strict: bool = False,
        min_queue_tick: int = 0,
        is_check: bool = False,
    ) -> tuple[bool, int, int]:
        """``(found, index, queue_tick)`` of the first matching queued mutation."""
        for i, m in enumerate(self.items):
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

    def will_be(self, mtype: MutationType, states: Sequence[str]) -> bool:
        """A (non-check) mutation of ``mtype`` calling at least ``states`` is queued."""
        return any(
            m.type is mtype and not m.is_check and all(s in m.called for s in states)
            for m in self.items
        )
