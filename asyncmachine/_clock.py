"""A machine's time: its state names in order, a tick per state, the active states, the queue tick.

Local machines change it through transitions, remote mirrors (``rpc.NetMachine``) through the
server's updates; both own one, and a transition reads its time from it (docs/semantics.md#clocks).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ._time import Time

StateSet = set[str] | frozenset[str]
"""A set of state names: the clock's active set is either (see :class:`Clock`)."""


class Clock:
    """Ticks (odd = active), the active states in target order, the queue and machine ticks.

    ``active`` is a tuple and ``active_set`` a set or a frozenset: both may be shared with the
    resolver's memo, so they are replaced, never changed in place (except a ``set`` by
    :meth:`apply`, which owns it then).
    """

    __slots__ = ("active", "active_set", "index", "machine_tick", "names", "queue_tick", "ticks")

    def __init__(self, names: Iterable[str] = (), queue_tick: int = 1) -> None:
        self.names: list[str] = []
        self.index: dict[str, int] = {}
        self.ticks: dict[str, int] = {}
        self.active: tuple[str, ...] = ()
        self.active_set: StateSet = frozenset()
        self.queue_tick = queue_tick
        """The tick of the last dequeued mutation (docs/semantics.md#queue)."""
        self.machine_tick = 0
        """How many times this clock was imported (docs/semantics.md#export-and-import)."""
        self.set_names(names)

    def set_names(self, names: Iterable[str]) -> None:
        """Adopt an order of state names; new names start at tick 0, the others keep theirs.

        ``ticks`` has exactly these names, so it also answers "is this a state?".
        """
        self.names = list(names)
        self.index = {name: i for i, name in enumerate(self.names)}
        ticks = self.ticks
        self.ticks = {name: ticks.get(name, 0) for name in self.names}

    def time(self, states: Sequence[str] | None = None) -> Time:
        """Ticks of ``states`` (default: all, in name order); unknown names tick 0."""
        ticks = self.ticks
        return Time(ticks.get(s, 0) for s in (self.names if states is None else states))

    def apply(
        self,
        target: tuple[str, ...],
        target_set: StateSet | None,
        exits: Sequence[str],
        enters: Sequence[str],
    ) -> None:
        """Tick the exited and entered states and make ``target`` the active states.

        An entered state that is already active (a Multi re-entry) ticks twice. With
        ``target_set=None`` the active set follows by adding and removing the changed states,
        which costs O(changes) instead of O(active).
        """
        ticks = self.ticks
        active = self.active_set
        for s in exits:
            ticks[s] += 1
        for s in enters:
            ticks[s] += 2 if s in active else 1
        self.active = target
        if target_set is None:
            if type(active) is not set:
                active = set(active)
            active.difference_update(exits)
            active.update(enters)
            self.active_set = active
        else:
            self.active_set = target_set

    def rollback(self, states: Iterable[str]) -> None:
        """Deactivate ``states`` again (their tick moves on), keeping the order of the rest."""
        ticks = self.ticks
        active = self.active_set
        gone = {s for s in states if s in active}
        for s in gone:
            ticks[s] += 1
        self.active = tuple(s for s in self.active if s not in gone)
        self.active_set = frozenset(active - gone)

    def update(self, time: Sequence[int]) -> tuple[list[str], list[str], list[str]]:
        """Take a new time vector (name order) as it is: ``(activated, deactivated, ticked)``.

        An odd tick that moved by 2 or more counts as an activation (a Multi re-entry or a
        deactivation and activation in between).
        """
        ticks = self.ticks
        activated: list[str] = []
        deactivated: list[str] = []
        ticked: list[str] = []
        for name, after in zip(self.names, time, strict=True):
            before = ticks[name]
            if before == after:
                continue
            ticks[name] = after
            ticked.append(name)
            if after % 2 == 1 and (before % 2 == 0 or after - before >= 2):
                activated.append(name)
            elif after % 2 == 0 and before % 2 == 1:
                deactivated.append(name)
        if ticked:
            self.active = tuple(n for n in self.names if ticks[n] % 2 == 1)
            self.active_set = frozenset(self.active)
        return activated, deactivated, ticked

    def clear_active(self) -> None:
        """Forget the active states (a disposed machine shows none)."""
        self.active = ()
        self.active_set = frozenset()

    def export(self, machine_id: str) -> dict[str, Any]:
        """Plain data for :meth:`restore` (docs/semantics.md#export-and-import)."""
        return {
            "id": machine_id,
            "state_names": list(self.names),
            "time": list(self.time()),
            "queue_tick": self.queue_tick,
            "machine_tick": self.machine_tick,
        }

    def restore(self, names: Sequence[str], time: Sequence[int], machine_tick: int) -> None:
        """Adopt exported names and ticks; the machine tick counts this import."""
        self.set_names(names)
        ticks = self.ticks
        for name, tick in zip(names, time, strict=True):
            ticks[name] = tick
        self.active = tuple(n for n in names if ticks[n] % 2 == 1)
        self.active_set = frozenset(self.active)
        self.machine_tick = machine_tick + 1
