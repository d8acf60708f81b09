"""A remote machine's local mirror: reads and waits answered from the mirrored clock, mutations
and dry runs sent to the server through whatever ``Remote`` owns the mirror (a ``Client``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from .._clock import Clock
from .._machine import Event, Machine
from .._result import Result
from .._schema import EXCEPTION, Schema, schema_from_dict
from .._subscriptions import Subscriptions
from .._transition import Transition, current_transition
from .._view import ClockView
from .._waiter import Waiter, resolved_waiter
from . import _protocol as p
from ._errors import ProtocolError

UpdateListener = Callable[[list[str], list[str]], None]
"""``listener(activated, deactivated)`` after each applied update from the server."""

Source = Event | Transition
"""The local handler (its event, or its transition) a remote mutation is made from."""

Origin = tuple[str, str, int]
"""``(machine id, transition id, machine time)`` of the transition a mutation comes from."""


class Remote(Protocol):
    """What a mirror needs of its owner: the connection's machine and the remote calls."""

    @property
    def mach(self) -> Machine: ...

    def _mutate(
        self,
        net: NetMachine,
        op: str,
        states: list[str],
        args: dict[str, Any] | None,
        key: str | None,
        origin: Origin | None,
        err: BaseException | None = None,
    ) -> Awaitable[Result]: ...

    def _check(
        self, net: NetMachine, op: str, states: list[str], args: dict[str, Any] | None
    ) -> Awaitable[Result]: ...

    def _explain(
        self, net: NetMachine, op: str, states: list[str], args: dict[str, Any] | None
    ) -> Awaitable[Any]: ...

    def _sync(self, net: NetMachine) -> Awaitable[None]: ...


def source_fields(source: Source | None) -> Origin | None:
    """``(machine id, transition id, machine time)`` of the transition a mutation comes from:
    ``source``, or else the transition whose handler is running (``am.current_transition()``)."""
    tx: Transition | None
    if isinstance(source, Event):
        tx = source.transition
    elif source is not None:
        tx = source
    else:
        tx = current_transition()
    if tx is None:
        return None
    return tx.machine.id, tx.id, sum(tx.time_before)


class NetMachine(ClockView):
    """The read and wait API of ``am.Machine`` over a remote machine's clock.

    The clock follows the server's snapshots and diffs; waiters resolve when the update that
    satisfies them arrives. Mutations and dry runs are ``async`` and answered by the server;
    a mutation returns after the mirror already shows its effect:
    ``await net.add1("A") == am.Executed``. A mirror limited to some states (the principal's
    ``read_states``, or ``client.machine(id, states=...)``) knows only those.
    """

    def __init__(self, remote: Remote, machine_id: str) -> None:
        self._remote = remote
        self._id = machine_id
        self._schema: Schema = {}
        self._clock = Clock(queue_tick=0)
        self._time: list[int] = []
        """The server's time vector in name order, as the diffs patch it."""
        self._subs = Subscriptions()
        self._disposed = False
        self._disposed_waiter: Waiter | None = None
        self._seq = 0
        self._syncing = False
        self._listeners: list[UpdateListener] = []

    @property
    def client(self) -> Remote:
        return self._remote

    @property
    def schema(self) -> Schema:
        return dict(self._schema)

    @property
    def seq(self) -> int:
        """The position in the server's diff chain."""
        return self._seq

    @property
    def is_disposed(self) -> bool:
        return self._disposed

    def machine_tick(self) -> int:
        return self._clock.machine_tick

    # ------------------------------------------------------------ mutations (remote)
    # Plain methods returning the awaitable: the states are checked, and the source transition
    # read, at the call (inside the handler that makes it), not when the result is awaited.

    def add(
        self,
        states: Sequence[str],
        args: dict[str, Any] | None = None,
        *,
        key: str | None = None,
        source: Source | None = None,
    ) -> Awaitable[Result]:
        return self._mutate("add", self._called(states), args, key, source)

    def add1(
        self,
        state: str,
        args: dict[str, Any] | None = None,
        *,
        key: str | None = None,
        source: Source | None = None,
    ) -> Awaitable[Result]:
        return self._mutate("add", self._called1(state), args, key, source)

    def remove(
        self,
        states: Sequence[str],
        args: dict[str, Any] | None = None,
        *,
        key: str | None = None,
        source: Source | None = None,
    ) -> Awaitable[Result]:
        return self._mutate("remove", self._called(states), args, key, source)

    def remove1(
        self,
        state: str,
        args: dict[str, Any] | None = None,
        *,
        key: str | None = None,
        source: Source | None = None,
    ) -> Awaitable[Result]:
        return self._mutate("remove", self._called1(state), args, key, source)

    def set(
        self,
        states: Sequence[str],
        args: dict[str, Any] | None = None,
        *,
        key: str | None = None,
        source: Source | None = None,
    ) -> Awaitable[Result]:
        return self._mutate("set", self._called(states), args, key, source)

    def toggle(
        self,
        states: Sequence[str],
        args: dict[str, Any] | None = None,
        *,
        key: str | None = None,
        source: Source | None = None,
    ) -> Awaitable[Result]:
        """Remove ``states`` if all are active (as the mirror sees them), else add them."""
        called = self._called(states)
        op = "remove" if self._clock.active_set.issuperset(called) else "add"
        return self._mutate(op, called, args, key, source)

    def toggle1(
        self,
        state: str,
        args: dict[str, Any] | None = None,
        *,
        key: str | None = None,
        source: Source | None = None,
    ) -> Awaitable[Result]:
        return self.toggle([state], args, key=key, source=source)

    def add_err(
        self,
        err: BaseException,
        args: dict[str, Any] | None = None,
        *,
        key: str | None = None,
        source: Source | None = None,
    ) -> Awaitable[Result]:
        """Activate ``Exception`` on the server with ``err`` (its type name and message travel;
        the server sees an ``rpc.RemoteError``)."""
        return self.add_err_state(EXCEPTION, err, args, key=key, source=source)

    def add_err_state(
        self,
        state: str,
        err: BaseException,
        args: dict[str, Any] | None = None,
        *,
        key: str | None = None,
        source: Source | None = None,
    ) -> Awaitable[Result]:
        """Activate the error state ``state`` (and ``Exception``) on the server with ``err``."""
        if not isinstance(err, BaseException):
            raise TypeError(f"err must be an exception, got {type(err).__name__}")
        return self._mutate("add_err", self._called1(state), args, key, source, err)

    def _mutate(
        self,
        op: str,
        called: list[str],
        args: dict[str, Any] | None,
        key: str | None,
        source: Source | None,
        err: BaseException | None = None,
    ) -> Awaitable[Result]:
        origin = source_fields(source)
        return self._remote._mutate(self, op, called, args, key, origin, err)

    # ------------------------------------------------------------ dry runs (remote)
    # Checked at the call too; they change nothing on the server.

    def can_add(
        self, states: Sequence[str], args: dict[str, Any] | None = None
    ) -> Awaitable[Result]:
        """Would the server accept adding ``states``? Its negotiation handlers run; nothing
        changes. A mutation this client's policy forbids is ``Canceled``."""
        return self._remote._check(self, "add", self._called(states), args)

    def can_add1(self, state: str, args: dict[str, Any] | None = None) -> Awaitable[Result]:
        return self._remote._check(self, "add", self._called1(state), args)

    def can_remove(
        self, states: Sequence[str], args: dict[str, Any] | None = None
    ) -> Awaitable[Result]:
        return self._remote._check(self, "remove", self._called(states), args)

    def can_remove1(self, state: str, args: dict[str, Any] | None = None) -> Awaitable[Result]:
        return self._remote._check(self, "remove", self._called1(state), args)

    def explain_add(
        self, states: Sequence[str], args: dict[str, Any] | None = None
    ) -> Awaitable[Any]:
        """The server's ``explain_add``: what adding ``states`` would do, and why (an
        ``am.Explanation``). Servers whose core cannot explain answer ``RpcError`` with code
        ``unsupported``."""
        return self._remote._explain(self, "add", self._called(states), args)

    def explain_add1(self, state: str, args: dict[str, Any] | None = None) -> Awaitable[Any]:
        return self._remote._explain(self, "add", self._called1(state), args)

    async def sync(self) -> None:
        """Fetch a full snapshot now."""
        await self._remote._sync(self)

    # ------------------------------------------------------------ local

    def on_update(self, listener: UpdateListener) -> Callable[[], None]:
        """Call ``listener(activated, deactivated)`` after every update that changed the clock;
        returns the remover."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def when_disposed(self) -> Waiter:
        """Resolved when the mirror ends: its client closed, or the server's machine is gone."""
        if self._disposed:
            return resolved_waiter()
        if self._disposed_waiter is None:
            self._disposed_waiter = Waiter()
        return self._disposed_waiter

    # ------------------------------------------------------------ updates from the server

    def _apply_snap(self, message: dict[str, Any]) -> None:
        """Replace the mirror with a snapshot (names, schema, clock); always applies."""
        names = message.get("names")
        time_ = message.get("time")
        seq, qt, mt = message.get("seq"), message.get("qt"), message.get("mt")
        if (
            not isinstance(names, list)
            or not all(isinstance(n, str) for n in names)
            or len(set(names)) != len(names)
            or not isinstance(time_, list)
            or len(names) != len(time_)
            or not all(p.is_int(t) for t in time_)
            or not (p.is_int(seq) and p.is_int(qt) and p.is_int(mt))
        ):
            raise ProtocolError(p.E_BAD_MESSAGE, "malformed snapshot")
        schema = message.get("schema")
        if names != self._clock.names:
            self._reshape(names, schema if isinstance(schema, dict) else {})
        changed = [i for i, t in enumerate(time_) if t != self._time[i]]
        self._time = list(time_)
        self._seq = int(seq)
        self._clock.machine_tick = int(mt)
        self._syncing = False
        self._changed(changed, int(qt))

    def _reshape(self, names: list[str], schema: dict[str, Any]) -> None:
        """New state names: ticks of the states kept stay until the snapshot's are applied."""
        try:
            parsed = schema_from_dict({n: schema.get(n) or {} for n in names})
        except (TypeError, ValueError, KeyError):
            raise ProtocolError(p.E_BAD_MESSAGE, "malformed schema") from None
        self._schema = parsed
        clock = self._clock
        clock.set_names(names)
        self._time = list(clock.time())
        clock.refresh_active()

    def _apply_diff(self, body: dict[str, Any]) -> bool:
        """Apply a diff that continues the chain; False (and nothing applied) on a gap."""
        if body.get("base") != self._seq or not self._clock.names:
            return False
        seq, qt = body.get("seq"), body.get("qt")
        if not p.is_int(seq) or not p.is_int(qt):
            raise ProtocolError(p.E_BAD_MESSAGE, "malformed diff")
        changed = p.apply_diff(self._time, body.get("d"))
        self._seq = seq
        self._changed(changed, qt)
        return True

    def _see_queue_tick(self, queue_tick: int) -> None:
        """The server's queue tick, when a result arrives without a diff."""
        if queue_tick > self._clock.queue_tick:
            self._changed([], queue_tick)

    def _changed(self, indexes: list[int], queue_tick: int) -> None:
        """Update ticks and the active set, then resolve the waiters this satisfied."""
        clock = self._clock
        activated, deactivated, ticked = clock.update_at(self._time, indexes)
        clock.queue_tick = queue_tick
        subs = self._subs
        if subs.count and (indexes or subs.queries):
            subs.process(activated, deactivated, ticked, clock.active_set, clock.ticks, queue_tick)
        elif subs.queue_heap:
            subs.queue_reached(queue_tick)
        if indexes:
            for listener in list(self._listeners):
                listener(activated, deactivated)

    def _dispose(self) -> None:
        """The mirror is gone: pending waiters are cancelled, ``when_disposed`` resolves."""
        if self._disposed:
            return
        self._disposed = True
        self._subs.dispose()
        self._clock.clear_active()
        if self._disposed_waiter is not None:
            self._disposed_waiter._resolve()

    def __repr__(self) -> str:
        return f"<NetMachine {self._id} {self.string()}>"
