"""A remote machine's local mirror: reads and waits answered from the mirrored clock, mutations
sent to the server."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .._clock import Clock
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
        self._clock = Clock(queue_tick=0)
        self._subs = Subscriptions()
        self._disposed = False
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
        return self._clock.machine_tick

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
        op = "remove" if self._clock.active_set.issuperset(called) else "add"
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
        clock = self._clock
        if names != clock.names:
            self._schema = schema_from_dict(message.get("schema") or {n: {} for n in names})
            clock.set_names(names)
        self._seq = int(message.get("seq", 0))
        clock.machine_tick = int(message.get("mt", 0))
        self._syncing = False
        self._changed(time_, int(message.get("qt", 0)))

    def _apply_diff(self, message: dict[str, Any]) -> bool:
        """Apply a diff that continues the chain; False (and nothing applied) on a gap."""
        clock = self._clock
        if message.get("base") != self._seq or not clock.names:
            return False
        changes = message.get("d")
        if not isinstance(changes, list):
            raise p.ProtocolError(p.E_BAD_MESSAGE, "malformed diff")
        time_ = list(clock.time())
        p.apply_diff(time_, changes)
        self._seq = int(message["seq"])
        self._changed(time_, int(message.get("qt", clock.queue_tick)))
        return True

    def _changed(self, time_: list[int], queue_tick: int) -> None:
        """Take the server's time, then resolve the waiters this satisfied."""
        clock = self._clock
        activated, deactivated, ticked = clock.update(time_)
        clock.queue_tick = queue_tick
        subs = self._subs
        if subs.count and (ticked or subs.queries):
            subs.process(activated, deactivated, ticked, clock.active_set, clock.ticks, queue_tick)
        elif subs.queue_heap:
            subs.queue_reached(queue_tick)
        if ticked:
            for listener in list(self._listeners):
                listener(activated, deactivated)

    def _dispose(self) -> None:
        """The mirror is gone (its client closed): pending waiters are cancelled."""
        if self._disposed:
            return
        self._disposed = True
        self._subs.dispose()
        self._clock.clear_active()

    def __repr__(self) -> str:
        return f"<NetMachine {self._id} {self.string()}>"
