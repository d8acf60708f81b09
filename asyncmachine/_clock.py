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

Order = tuple[str, ...]
"""Active states in target order (the newest first)."""

_ALIVE = 1 << 62
_LOG_FROM = 32
"""From this many active states the order is kept as a log: adding one costs O(1), not a copy."""


class Snapshot:
    """The active order of a log-kept clock at one moment, turned into a tuple when read.

    The log is only appended to and its entries only marked dead with a later version, so what
    this snapshot sees never changes.
    """

    __slots__ = ("dead", "length", "log", "version")

    def __init__(self, log: list[str], dead: list[int], version: int) -> None:
        self.log = log
        self.dead = dead
        self.length = len(log)
        self.version = version

    def order(self) -> Order:
        log, dead, version = self.log, self.dead, self.version
        return tuple(log[i] for i in range(self.length - 1, -1, -1) if dead[i] > version)


class Clock:
    """Ticks (odd = active), the active states in target order, the queue and machine ticks.

    ``active_set`` is a set or a frozenset that may be shared with the resolver's memo, so it is
    replaced, never changed in place (except a ``set`` by the ``apply*`` methods, which own it).
    The order (``active``) is a tuple; from ``_LOG_FROM`` active states on it is kept as a log
    instead (``_log``: oldest first, ``_dead``: the version that removed each entry), so that a
    mutation changing a few states costs that much, not a copy of every active state.
    """

    __slots__ = (
        "_dead",
        "_log",
        "_pos",
        "_tuple",
        "_version",
        "active_set",
        "index",
        "machine_tick",
        "names",
        "queue_tick",
        "ticks",
    )

    def __init__(self, names: Iterable[str] = (), queue_tick: int = 1) -> None:
        self.names: list[str] = []
        self.index: dict[str, int] = {}
        self.ticks: dict[str, int] = {}
        self.active_set: StateSet = frozenset()
        self._tuple: Order | None = ()
        """The order; in log mode a cache of it (``None``: stale)."""
        self._log: list[str] | None = None
        self._dead: list[int] = []
        self._pos: dict[str, int] = {}
        """Log mode: the log position of each active state."""
        self._version = 0
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

    # ------------------------------------------------------------------ the order

    @property
    def active(self) -> Order:
        """The active states in target order."""
        order = self._tuple
        if order is None:
            assert self._log is not None
            order = self._tuple = Snapshot(self._log, self._dead, self._version).order()
        return order

    def snapshot(self) -> Order | Snapshot:
        """The active order as it is now, cheap to take: a transition keeps it as its "before"."""
        order = self._tuple
        if order is not None:
            return order
        assert self._log is not None
        return Snapshot(self._log, self._dead, self._version)

    def in_order(self, states: Iterable[str]) -> list[str]:
        """The given active states, in the active order."""
        if self._log is not None:
            return sorted(states, key=self._pos.__getitem__, reverse=True)
        keep = set(states)
        return [s for s in self.active if s in keep]

    def _set_order(self, order: Order) -> None:
        self._tuple = order
        self._log = None

    def _start_log(self) -> list[str]:
        """Keep the order as a log from now on (until it is replaced or shrinks)."""
        order = self.active
        log = self._log = list(reversed(order))
        self._dead = [_ALIVE] * len(order)
        self._pos = {s: i for i, s in enumerate(log)}
        return log

    # ------------------------------------------------------------------ applying transitions

    def apply(
        self, target: Order, target_set: StateSet, exits: Sequence[str], enters: Sequence[str]
    ) -> None:
        """Tick the exited and entered states and make ``target`` the active states.

        An entered state that is already active (a Multi re-entry) ticks twice.
        """
        ticks = self.ticks
        active = self.active_set
        for s in exits:
            ticks[s] += 1
        for s in enters:
            ticks[s] += 2 if s in active else 1
        self.active_set = target_set
        self._set_order(target)

    def apply_add(self, called: Sequence[str], enters: Sequence[str]) -> None:
        """An add without relations: ``called`` come first, in their order, and ``enters``
        tick. Costs O(called) for a big active set."""
        active = self.active_set
        log = self._log
        ticks = self.ticks
        for s in enters:
            ticks[s] += 2 if s in active else 1
        if log is None and len(active) < _LOG_FROM:
            before = self._tuple
            assert before is not None  # kept as a tuple
            if len(called) == 1:
                s = called[0]
                if s not in active:
                    order: Order = (s, *before)
                elif before[0] == s:
                    order = before
                else:
                    i = before.index(s)
                    order = (s, *before[:i], *before[i + 1 :])
            elif active.isdisjoint(called):
                order = (*called, *before)
            else:
                order = (*called, *(x for x in before if x not in called))
            self._tuple = order
        else:
            if log is None:
                log = self._start_log()
            pos, dead = self._pos, self._dead
            if len(called) != 1 or pos.get(called[0]) != len(log) - 1:  # else: already first
                version = self._version = self._version + 1
                for s in reversed(called):
                    old = pos.get(s)
                    if old is not None:
                        dead[old] = version
                    pos[s] = len(log)
                    log.append(s)
                    dead.append(_ALIVE)
                self._tuple = None
                if len(log) > 2 * len(pos) + 64:
                    self._set_order(self.active)  # a fresh log: snapshots keep the old one
        if enters:
            if type(active) is not set:
                active = self.active_set = set(active)
            active.update(enters)

    def apply_remove(self, exits: Sequence[str]) -> None:
        """A remove without relations: the (active) ``exits`` leave, the others keep their order.
        Costs O(exits) for a big active set."""
        if not exits:
            return
        active = self.active_set
        ticks = self.ticks
        for s in exits:
            ticks[s] += 1
        log = self._log
        if log is None and (len(exits) * 4 >= len(active) or len(active) < _LOG_FROM):
            before = self._tuple
            assert before is not None  # kept as a tuple
            if len(exits) == 1:
                i = before.index(exits[0])
                self._tuple = (*before[:i], *before[i + 1 :])
            else:
                gone = set(exits)
                self._tuple = tuple(s for s in before if s not in gone)
        else:
            if log is None:
                self._start_log()
            pos, dead = self._pos, self._dead
            version = self._version = self._version + 1
            for s in exits:
                dead[pos.pop(s)] = version
            self._tuple = None
        if type(active) is not set:
            active = self.active_set = set(active)
        active.difference_update(exits)
        if self._log is not None and len(self._pos) < _LOG_FROM // 2:
            self._set_order(self.active)

    def rollback(self, states: Iterable[str]) -> None:
        """Deactivate ``states`` again (their tick moves on), keeping the order of the rest."""
        ticks = self.ticks
        active = self.active_set
        gone = {s for s in states if s in active}
        for s in gone:
            ticks[s] += 1
        self.active_set = frozenset(active - gone)
        self._set_order(tuple(s for s in self.active if s not in gone))

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
            self.refresh_active()
        return activated, deactivated, ticked

    def update_at(
        self, time: Sequence[int], indexes: Iterable[int]
    ) -> tuple[list[str], list[str], list[str]]:
        """Like :meth:`update`, reading only the positions ``indexes`` of ``time`` (the ones a
        diff changed), so a mirror's update costs what changed, not the machine's size."""
        names, ticks = self.names, self.ticks
        activated: list[str] = []
        deactivated: list[str] = []
        ticked: list[str] = []
        for i in indexes:
            name = names[i]
            before, after = ticks[name], time[i]
            if before == after:
                continue
            ticks[name] = after
            ticked.append(name)
            if after % 2 == 1 and (before % 2 == 0 or after - before >= 2):
                activated.append(name)
            elif after % 2 == 0 and before % 2 == 1:
                deactivated.append(name)
        if activated or deactivated:
            self.refresh_active()
        return activated, deactivated, ticked

    def refresh_active(self) -> None:
        """Derive the active states from the ticks, in name order (a clock taken as it is)."""
        ticks = self.ticks
        order = tuple(n for n in self.names if ticks[n] % 2 == 1)
        self.active_set = frozenset(order)
        self._set_order(order)

    def clear_active(self) -> None:
        """Forget the active states (a disposed machine shows none)."""
        self.active_set = frozenset()
        self._set_order(())

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
        self.refresh_active()
        self.machine_tick = machine_tick + 1
