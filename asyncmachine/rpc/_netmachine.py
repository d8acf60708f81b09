"""A remote machine's local mirror: reads and waits answered from the mirrored clock, mutations
sent to the server."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .._result import Result
from .._schema import Schema, schema_from_dict
from .._subscriptions import Subscriptions
from .._view import ClockView
from .._waiter import Waiter
from . import _protocol as p

if TYPE_CHECKING:
    from ._client import Client

UpdateListener = Callable[[list[str], list[str]], None]
"""``listener(activated, deactivated)`` after each applied update from the server."""


class NetMachine(ClockView):
    """The read and wait API of ``am.Machine`` over a remote machine's clock.

    The clock follows the server's snapshots and diffs; waiters resolve when the update that
    satisfies them arrives. Mutations are ``async`` and return the server's result, after the
    clock already shows their effect: ``await net.add1("A") == am.Executed``.
    """

    def __init__(self, client: Client, machine_id: str) -> None:
        self._client = client
        self._id = machine_id
        self._schema: Schema = {}
        self._names: list[str] = []
        self._index: dict[str, int] = {}
        self._clock: dict[str, int] = {}
        self._time: list[int] = []
        self._active: list[str] = []
        self._active_set: set[str] = set()
        self._subs = Subscriptions()
        self._disposed = False
        self._queue_tick = 0
        self._machine_tick = 0
        self._seq = 0
        self._syncing = False
        self._listeners: list[UpdateListener] = []

    @property
    def client(self) -> Client:
        return self._client

    @property
    def schema(self) -> Schema:
        return dict(self._schema)

    @property
    def seq(self) -> int:
        """The position in the server's diff chain."""
        return self._seq

    def machine_tick(self) -> int:
        return self._machine_tick

    # ------------------------------------------------------------ mutations (remote)

    async def add(
        self, states: Sequence[str], args: dict[str, Any] | None = None, *, key: str | None = None
    ) -> Result:
        return await self._client._mutate(self, "add", self._called(states), args, key)

    async def add1(
        self, state: str, args: dict[str, Any] | None = None, *, key: str | None = None
    ) -> Result:
        return await self._client._mutate(self, "add", self._called1(state), args, key)

    async def remove(
        self, states: Sequence[str], args: dict[str, Any] | None = None, *, key: str | None = None
    ) -> Result:
        return await self._client._mutate(self, "remove", self._called(states), args, key)

    async def remove1(
        self, state: str, args: dict[str, Any] | None = None, *, key: str | None = None
    ) -> Result:
        return await self._client._mutate(self, "remove", self._called1(state), args, key)

    async def set(
        self, states: Sequence[str], args: dict[str, Any] | None = None, *, key: str | None = None
    ) -> Result:
        return await self._client._mutate(self, "set", self._called(states), args, key)

    async def toggle(
        self, states: Sequence[str], args: dict[str, Any] | None = None, *, key: str | None = None
    ) -> Result:
        """Remove ``states`` if all are active (as the mirror sees them), else add them."""
        called = self._called(states)
        op = "remove" if self._active_set.issuperset(called) else "add"
        return await self._client._mutate(self, op, called, args, key)

    async def toggle1(
        self, state: str, args: dict[str, Any] | None = None, *, key: str | None = None
    ) -> Result:
        return await self.toggle([state], args, key=key)

    async def sync(self) -> None:
        """Fetch a full snapshot now."""
        await self._client._sync(self)

    def on_update(self, listener: UpdateListener) -> Callable[[], None]:
        """Call ``listener(activated, deactivated)`` after every update that changed the clock;
        returns the remover."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def when_disposed(self) -> Waiter:
        """Never resolved by the server; the mirror ends when its client closes."""
        return self._client.mach.when_not1("Start")

    # ------------------------------------------------------------ updates from the server

    def _apply_snap(self, message: dict[str, Any]) -> None:
        names = message.get("names")
        time_ = message.get("time")
        if (
            not isinstance(names, list)
            or not isinstance(time_, list)
            or len(names) != len(time_)
            or not all(isinstance(t, int) and t >= 0 for t in time_)
        ):
            raise p.ProtocolError(p.E_BAD_MESSAGE, "malformed snapshot")
        if names != self._names:
            self._schema = schema_from_dict(message.get("schema") or {n: {} for n in names})
            self._names = list(names)
            self._index = {n: i for i, n in enumerate(names)}
            old = self._clock
            self._clock = {n: 0 for n in names}
            self._time = [0] * len(names)
            for n, t in old.items():
                if n in self._clock:
                    self._clock[n] = t
                    self._time[self._index[n]] = t
        changed = [i for i, t in enumerate(time_) if t != self._time[i]]
        self._time = list(time_)
        self._seq = int(message.get("seq", 0))
        self._machine_tick = int(message.get("mt", 0))
        self._syncing = False
        self._changed(changed, int(message.get("qt", 0)))

    def _apply_diff(self, message: dict[str, Any]) -> bool:
        """Apply a diff that continues the chain; False (and nothing applied) on a gap."""
        if message.get("base") != self._seq or not self._names:
            return False
        changes = message.get("d")
        if not isinstance(changes, list):
            raise p.ProtocolError(p.E_BAD_MESSAGE, "malformed diff")
        time_ = list(self._time)
        changed = p.apply_diff(time_, changes)
        self._time = time_
        self._seq = int(message["seq"])
        self._changed(changed, int(message.get("qt", self._queue_tick)))
        return True

    def _changed(self, indexes: list[int], queue_tick: int) -> None:
        """Update ticks and the active set, then resolve the waiters this satisfied."""
        names, clock, time_ = self._names, self._clock, self._time
        activated: list[str] = []
        deactivated: list[str] = []
        ticked: list[str] = []
        for i in indexes:
            name = names[i]
            before, after = clock[name], time_[i]
            clock[name] = after
            ticked.append(name)
            if after % 2 == 1 and (before % 2 == 0 or after - before >= 2):
                activated.append(name)
            elif after % 2 == 0 and before % 2 == 1:
                deactivated.append(name)
        self._queue_tick = queue_tick
        if indexes:
            self._active = [n for n in names if clock[n] % 2 == 1]
            self._active_set = set(self._active)
        subs = self._subs
        if subs.count and (indexes or subs.queries):
            subs.process(activated, deactivated, ticked, self._active_set, clock, queue_tick)
        elif subs.queue_heap:
            subs.queue_reached(queue_tick)
        if indexes:
            for listener in list(self._listeners):
                listener(activated, deactivated)

    def _dispose(self) -> None:
        """The mirror is gone (its client closed): pending waiters are cancelled."""
        if self._disposed:
            return
        self._disposed = True
        self._subs.dispose()
        self._active = []
        self._active_set = set()

    def __repr__(self) -> str:
        return f"<NetMachine {self._id} {self.string()}>"
