"""The lean floor: the cheapest honest multi-state machine that still does the work W1-W5 need.

A reference system for ratios, not a product: the engine's speed is reported as a fraction of this
machine's, measured side by side in the same run (absolute rates drift between boxes and days).
It runs the same workload code and the same validation checks as the engine (``bench.workloads_am``
takes it as its ``system``), so it must really do the work:

- a list as the queue; a mutation is ``(type, states, is_auto)``; the first caller drains it;
- ``active`` is a set, the clock a dict of ticks (+1 on every activation and deactivation);
- targets: called states first, transitive ``add``, then (for add) the active states; ``remove``
  relations block later candidates unless called; ``require`` by fixpoint;
- handlers on one bound object, looked up by name through a cache; ``Exit``/``Enter`` returning
  ``False`` cancels; finals run after the clock is applied;
- ``when1`` waiters are flags resolved inside the mutation; auto states are queued at the front
  after a non-auto transition that changed something.

Nothing else: no Multi, After, args, tracers, logging, contexts, timeouts or error states.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

ADD, REMOVE, SET = 0, 1, 2
Mutation = tuple[int, list[str], bool]


@dataclass(frozen=True)
class State:
    auto: bool = False
    require: tuple[str, ...] = ()
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()


class Event:
    """What a handler gets: the machine and the handler's name."""

    __slots__ = ("machine", "name")

    def __init__(self, machine: Machine, name: str) -> None:
        self.machine = machine
        self.name = name


class Flag:
    """A ``when1`` waiter: set inside the mutation that activates its state."""

    __slots__ = ("is_set",)

    def __init__(self, is_set: bool = False) -> None:
        self.is_set = is_set

    def done(self) -> bool:
        return self.is_set

    def cancelled(self) -> bool:
        return False


class Machine:
    def __init__(self, schema: dict[str, State]) -> None:
        self.schema = schema
        self.active: set[str] = set()
        self.clock = dict.fromkeys(schema, 0)
        self.queue: list[Mutation] = []
        self.running = False
        self.handlers: object = None
        self.cache: dict[str, Callable[[Event], Any] | None] = {}
        self.waiters: dict[str, list[Flag]] = {}
        self.autos = [name for name, state in schema.items() if state.auto]

    # the public surface the workloads use

    def bind_handlers(self, obj: object) -> None:
        self.handlers = obj
        self.cache = {}

    def add(self, states: Sequence[str]) -> int:
        return self._mutate((ADD, list(states), False))

    def add1(self, state: str) -> int:
        return self._mutate((ADD, [state], False))

    def remove(self, states: Sequence[str]) -> int:
        return self._mutate((REMOVE, list(states), False))

    def remove1(self, state: str) -> int:
        return self._mutate((REMOVE, [state], False))

    def set(self, states: Sequence[str]) -> int:
        return self._mutate((SET, list(states), False))

    def when1(self, state: str) -> Flag:
        if state in self.active:
            return Flag(True)
        flag = Flag()
        self.waiters.setdefault(state, []).append(flag)
        return flag

    def tick(self, state: str) -> int:
        return self.clock[state]

    def is1(self, state: str) -> bool:
        return state in self.active

    def not1(self, state: str) -> bool:
        return state not in self.active

    def active_states(self) -> list[str]:
        return list(self.active)

    # the engine

    def _mutate(self, mutation: Mutation) -> int:
        """Queue the mutation; the first caller drains the queue and gets its own result."""
        self.queue.append(mutation)
        if self.running:
            return 2
        self.running = True
        result = -1
        try:
            while self.queue:
                ok = self._transition(*self.queue.pop(0))
                if result < 0:
                    result = 0 if ok else 1
        finally:
            self.running = False
        return result

    def _handler(self, name: str) -> Callable[[Event], Any] | None:
        try:
            return self.cache[name]
        except KeyError:
            fn = getattr(self.handlers, name, None) if self.handlers is not None else None
            self.cache[name] = fn
            return fn

    def _resolve(self, kind: int, called: list[str]) -> list[str]:
        schema, active = self.schema, self.active
        if kind == REMOVE:
            candidates = [s for s in active if s not in called]
        else:
            candidates = list(called)
            seen = set(candidates)
            for name in candidates:  # grows while iterating: transitive add
                for x in schema[name].add:
                    if x not in seen:
                        seen.add(x)
                        candidates.append(x)
            if kind == ADD:
                candidates += [s for s in active if s not in seen]
        target: list[str] = []
        blocked: set[str] = set()
        for name in candidates:
            if name in blocked and name not in called:
                continue
            target.append(name)
            blocked.update(schema[name].remove)
        kept = set(target)
        while True:  # require by fixpoint
            dropped = {s for s in kept if not kept.issuperset(schema[s].require)}
            if not dropped:
                return [s for s in target if s in kept]
            kept -= dropped

    def _transition(self, kind: int, called: list[str], is_auto: bool) -> bool:
        active = self.active
        target = self._resolve(kind, called)
        target_set = set(target)
        # a called state that did not make it cancels; an auto mutation needs only one
        rejected = kind != REMOVE and not target_set.issuperset(called)
        if rejected and (not is_auto or target_set.isdisjoint(called)):
            return False
        exits = [s for s in active if s not in target_set]
        enters = [s for s in target if s not in active]
        handle = self._handler if self.handlers is not None else None
        if handle is not None:
            for name in [s + "Exit" for s in exits] + [s + "Enter" for s in enters]:
                fn = handle(name)
                if fn is not None and fn(Event(self, name)) is False:
                    return False
        clock = self.clock
        for s in exits:
            clock[s] += 1
        for s in enters:
            clock[s] += 1
        self.active = target_set
        if handle is not None:
            for name in [s + "End" for s in exits] + [s + "State" for s in enters]:
                fn = handle(name)
                if fn is not None:
                    fn(Event(self, name))
        if self.waiters:
            for s in enters:
                flags = self.waiters.pop(s, None)
                if flags:
                    for flag in flags:
                        flag.is_set = True
        if (exits or enters) and not is_auto and self.autos:
            autos = [s for s in self.autos if s not in target_set]
            if autos:
                self.queue.insert(0, (ADD, autos, True))
        return True
