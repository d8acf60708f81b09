"""The server side without I/O: the machines a server exposes and the connections watching them.

One ``Hub`` per server (or gateway). For each exposed machine it numbers the clocks it has seen
(epochs) and keeps the ones some subscription (one connection, one machine) still stands on: a
subscription is sent the change from its epoch to the latest, filtered to the states it may see,
and computed (and encoded) once for every subscription on the same epoch. A mutation's own
connection is brought up to date at once (its result carries the diff); everyone else on the next
flush, so a burst of mutations costs one diff per subscription.

No asyncio, sockets or ``websockets`` here: the adapter injects ``schedule`` (run a callback soon,
after the current synchronous work) and drives the sessions (``_server_session.py``).
"""

from __future__ import annotations

import inspect
import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from .._machine import Machine
from .._result import Canceled, Result
from .._schema import schema_to_dict
from .._tracer import Tracer
from .._transition import Mutation, MutationSource, Transition
from . import _protocol as p
from ._auth import ANONYMOUS, Authenticate, ConnInfo, Policy, Principal
from ._errors import ProtocolError
from ._idempotency import IdempotencyStore, Remembered, Scope, machine_store
from ._states import SERVER_SCHEMA, ServerStates

log = logging.getLogger("asyncmachine.rpc")

ss = ServerStates()

Schedule = Callable[[Callable[[], None]], None]
"""``schedule(fn)``: call ``fn`` soon, once the current synchronous work is done."""

Answer = Callable[[Any, ProtocolError | None], None]
"""``done(value, error)``: the outcome of a mutation or a dry run, now or later."""


@dataclass
class Request:
    """A client's mutation or dry run, checked and ready for its machine (local or remote)."""

    op: str
    states: list[str]
    args: dict[str, Any] | None
    principal: str
    policy: Policy
    key: str | None = None
    scope: Scope = ("", "", "")
    source: MutationSource | None = None
    err: BaseException | None = None


class RemoteMachines(Protocol):
    """Machines hosted elsewhere that a hub serves too (a NATS gateway's)."""

    def get(self, machine_id: str) -> Exposed | None:
        """The machine, when it is followed and its clock is known."""
        ...

    def ids(self) -> list[str]:
        """The machines known to be hosted now (for ``welcome.machines``)."""
        ...

    def follow(self, machine_id: str, then: Callable[[], None], since: int | None = None) -> None:
        """Start following ``machine_id`` (if not yet) and call ``then`` once ``get`` knows
        whether it exists; ``since``: a client's ``seq`` to keep the clock of, to resume it."""
        ...


class Peer(Protocol):
    """What the hub and a subscription need of a connection (a ``ServerSession``)."""

    holding: Subscription | None
    id: str
    client_id: str
    subs: dict[str, Subscription]

    @property
    def is_open(self) -> bool: ...

    def event_args(self) -> dict[str, Any]: ...

    def push_payload(self, frame: str) -> bool: ...

    def push_diff(self, sub: Subscription, body: dict[str, Any], frame: str | None) -> None: ...

    def push_snapshot(self, sub: Subscription) -> None: ...

    def end(self, code: int, reason: str) -> None: ...

    def machine_gone(self, sub: Subscription) -> None: ...


class Subscription:
    """One connection watching one machine, limited to ``names`` (the states it may see)."""

    __slots__ = ("at", "exposed", "indexes", "names", "peer", "pos", "schema", "seq", "wanted")

    def __init__(self, peer: Peer, exposed: Exposed, wanted: frozenset[str] | None) -> None:
        self.peer = peer
        self.exposed = exposed
        self.wanted = wanted
        """The states asked for and allowed; ``None``: all of them."""
        self.seq = 0
        """The ``seq`` of the last snapshot or diff this connection was sent."""
        self.at = 0
        """The epoch of the clock this connection's mirror shows (0: none yet)."""
        self.names: list[str] = []
        self.indexes: list[int] | None = None
        """Positions of ``names`` in the machine's clock; ``None`` when it sees every state."""
        self.pos: dict[int, int] | None = None
        """Machine position -> position in ``names``."""
        self.schema: dict[str, Any] = {}
        self.reindex()

    def reindex(self) -> None:
        """Follow the machine's state names (a new schema, or a new order)."""
        exposed = self.exposed
        names = exposed.names
        wanted = self.wanted
        if wanted is None:
            self.names, self.indexes, self.pos = names, None, None
            self.schema = exposed.schema
            return
        self.indexes = [i for i, name in enumerate(names) if name in wanted]
        self.names = [names[i] for i in self.indexes]
        self.pos = {i: n for n, i in enumerate(self.indexes)}
        self.schema = {
            name: _visible_spec(spec, wanted)
            for name, spec in exposed.schema.items()
            if name in wanted
        }


def _visible_spec(spec: dict[str, Any], wanted: frozenset[str]) -> dict[str, Any]:
    """A state's spec with its relations to states outside ``wanted`` left out."""
    out: dict[str, Any] = {}
    for key, value in spec.items():
        if isinstance(value, list):
            value = [s for s in value if s in wanted]
            if not value:
                continue
        out[key] = value
    return out


class _Resolution(Tracer):
    """Catches the first transition a dry resolution runs on the shadow machine."""

    def __init__(self) -> None:
        self.tx: Transition | None = None
        self.armed = False

    def transition_init(self, tx: Transition) -> None:
        if self.armed:
            self.armed = False
            self.tx = tx


class Exposed(Tracer):
    """A machine one hub exposes: its subscriptions, its last pushed clock, its idempotency
    store. It watches the machine (as a tracer) only while someone subscribes or mutates, so a
    stopped server leaves nothing bound."""

    resumable = False
    """Whether ``seq`` names one clock across processes and restarts (a NATS host's chain): a
    client's ``sub`` with its ``seq`` then resumes with a diff when ``base(seq)`` is known."""

    def __init__(
        self, hub: Hub, mach: Machine, machine_id: str, store: IdempotencyStore | None
    ) -> None:
        self.hub = hub
        self.mach = mach
        self.id = machine_id
        self.store: IdempotencyStore = store if store is not None else machine_store(mach)
        self.subs: dict[Subscription, None] = {}
        self.names: list[str] = []
        self.schema: dict[str, Any] = {}
        self.time: list[int] = []
        self.qt = 0
        self.mt = 0
        self.epoch = 0
        """The latest epoch: ``time`` and ``qt`` are its clock."""
        self._bases: dict[int, tuple[list[int], int]] = {}
        """Epoch -> (time, qt), for the epochs subscriptions stand on."""
        self._on: dict[int, int] = {}
        """Epoch -> how many subscriptions stand on it."""
        self._index: dict[str, int] = {}
        self._touched: set[str] = set()
        """States the transitions since the latest epoch changed (while watched)."""
        self._step: list[list[int]] = []
        """The change from ``_prev`` (the epoch before the latest) to the latest."""
        self._prev = 0
        self.dirty = False
        self.reshape = True
        """The state names may have changed: the next flush sends snapshots."""
        self._users = 0
        self._stamp: MutationSource | None = None
        self._shadow: Machine | None = None
        self._resolution = _Resolution()

    # ------------------------------------------------------------ what sessions read

    @property
    def gone(self) -> bool:
        return self.mach.is_disposed

    def has(self, state: str) -> bool:
        return self.mach.has1(state)

    def state_names(self) -> list[str]:
        return self.mach.state_names()

    def base(self, seq: int) -> tuple[list[int], int] | None:
        """The clock and queue tick at epoch ``seq``, if still known (for a resume)."""
        return self._bases.get(seq) if self.resumable else None

    def resume(self, sub: Subscription, seq: int) -> bool:
        """Let a new ``sub`` stand on ``seq`` (its mirror's), so it gets a diff from there."""
        base = self.base(seq)
        if base is None:
            return False
        self._bases.setdefault(seq, base)
        sub.seq = seq
        self._stand(sub, seq)
        return True

    # ------------------------------------------------------------ watching the machine

    def attach(self) -> None:
        if self._users == 0 and not self.mach.is_disposed:
            self.mach.bind_tracer(self)
        self._users += 1

    def detach(self) -> None:
        self._users -= 1
        if self._users == 0:
            self._shadow = None
            if not self.mach.is_disposed and self in self.mach.tracers():
                self.mach.detach_tracer(self)

    def mutation_queued(self, mach: Machine, mutation: Mutation) -> None:
        if self._stamp is not None:
            mutation.source, self._stamp = self._stamp, None

    def transition_finals(self, tx: Transition) -> None:
        # the clock changed: a payload sent from a final handler must follow this diff
        if self.subs:
            self._touched.update(tx.enters)
            self._touched.update(tx.exits)
            if not self.dirty:
                self.dirty = True
                self.hub.mark_dirty(self)

    def transition_end(self, tx: Transition) -> None:
        if not tx.mutation.is_check and self.subs:
            self._touched.update(tx.enters)  # a final handler may have rolled some back
            if not self.dirty:
                self.dirty = True
                self.hub.mark_dirty(self)

    def schema_change(self, mach: Machine, old_schema: dict[str, Any]) -> None:
        self._reshaped()

    def verify_states(self, mach: Machine) -> None:
        self._reshaped()

    def _reshaped(self) -> None:
        self.reshape = True
        self._shadow = None
        if self.subs and not self.dirty:
            self.dirty = True
            self.hub.mark_dirty(self)

    def machine_dispose(self, mach_id: str) -> None:
        self.hub.forget(self)

    # ------------------------------------------------------------ subscriptions and diffs

    def subscribe(self, peer: Peer, policy: Policy, states: Iterable[str] | None) -> Subscription:
        """A new subscription (raises ``ProtocolError`` for a state the principal cannot see);
        send it ``snapshot(sub)`` next."""
        self.advance()  # unwatched until now, it reads everything
        wanted = None if policy.read_states is None else frozenset(policy.read_states)
        if states is not None:
            asked = list(states)
            visible = set(self.names) if wanted is None else wanted.intersection(self.names)
            unknown = [s for s in asked if s not in visible]
            if unknown:
                raise ProtocolError(p.E_UNKNOWN_STATE, f"unknown states: {' '.join(unknown)[:200]}")
            wanted = frozenset(asked)
        sub = Subscription(peer, self, wanted)
        if not self.subs:
            self.attach()
            self._touched = set()
        self.subs[sub] = None
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self.subs:
            del self.subs[sub]
            self._stand(sub, 0)
            if not self.subs:
                self.detach()

    def snapshot(self, sub: Subscription, rid: int | None = None) -> dict[str, Any]:
        """The latest clock as ``sub`` sees it; restarts its chain there."""
        time = self.time
        sub.seq = self.epoch
        self._stand(sub, self.epoch)
        message: dict[str, Any] = {
            "t": "snap",
            "m": self.id,
            "seq": self.epoch,
            "names": sub.names,
            "schema": sub.schema,
            "time": time if sub.indexes is None else [time[i] for i in sub.indexes],
            "qt": self.qt,
            "mt": self.mt,
        }
        if rid is not None:
            message["id"] = rid
        return message

    def advance(self) -> bool:
        """Take the machine's clock as the latest epoch (if it changed). False when the state
        names changed: every subscription was sent a snapshot instead.

        While watched, only the states the transitions touched are read: a large machine costs
        what changed, not its size."""
        mach = self.mach
        if mach.is_disposed:
            return False
        qt, mt = mach.queue_tick(), mach.machine_tick()
        if self.reshape or mt != self.mt or not self._users:
            self._reset(qt, mt)
            return False
        touched, self._touched = self._touched, set()
        now: list[int] | None = None
        step: list[list[int]] = []
        index, tick, time = self._index, mach.tick, self.time
        for name in touched:
            i = index[name]
            delta = tick(name) - time[i]
            if delta:
                if now is None:
                    now = time.copy()
                now[i] += delta
                step.append([i, delta])
        if now is not None or qt != self.qt:
            step.sort()
            self._set_latest(time if now is None else now, qt, step)
        return True

    def _reset(self, qt: int, mt: int) -> None:
        """New names (or a clock nobody watched): read everything, snapshot every subscription."""
        mach = self.mach
        self.reshape = False
        self._touched = set()
        self.names = mach.state_names()
        self._index = {name: i for i, name in enumerate(self.names)}
        self.schema = schema_to_dict(mach.schema)
        now = list(mach.time())
        self._set_latest(now, qt, [])  # no one stands on the epoch before: all get snapshots
        self.mt = mt
        self._bases = {self.epoch: (now, qt)}
        self._on = {}
        for sub in list(self.subs):
            sub.at = 0
            sub.reindex()
            sub.peer.push_snapshot(sub)

    def _set_latest(
        self, now: list[int], qt: int, step: list[list[int]], epoch: int | None = None
    ) -> None:
        previous = self._prev = self.epoch
        self.epoch = previous + 1 if epoch is None else epoch
        self.time, self.qt, self._step = now, qt, step
        self._bases[self.epoch] = (now, qt)
        if previous not in self._on:
            self._bases.pop(previous, None)

    def _stand(self, sub: Subscription, epoch: int) -> None:
        """``sub`` now stands on ``epoch`` (0: nowhere); bases nobody needs are dropped."""
        old = sub.at
        if old == epoch:
            return
        sub.at = epoch
        on = self._on
        if epoch:
            on[epoch] = on.get(epoch, 0) + 1
        if old in on:
            on[old] -= 1
            if not on[old]:
                del on[old]
                if old != self.epoch:
                    self._bases.pop(old, None)

    def flush(self) -> None:
        """Bring every subscription to the machine's current clock (one diff each)."""
        self.dirty = False
        if not self.advance():
            return
        epoch = self.epoch
        changes: dict[int, list[list[int]]] = {}
        frames: dict[tuple[int, int], str] = {}
        for sub in list(self.subs):
            if sub.at != epoch and sub.at:
                self._catch_up(sub, changes, frames)

    def flush_one(self, sub: Subscription) -> None:
        """Bring one subscription up to date now (the others wait for the next flush)."""
        if self.advance() and sub.at != self.epoch and sub.at:
            self._catch_up(sub, {}, {})

    def _catch_up(
        self,
        sub: Subscription,
        changes: dict[int, list[list[int]]],
        frames: dict[tuple[int, int], str],
    ) -> None:
        """Send ``sub`` the change from its epoch to the latest (nothing if it sees none of it);
        the change and its frame are computed once per epoch (and ``seq``) in ``changes`` and
        ``frames``."""
        base = sub.at
        epoch, qt = self.epoch, self.qt
        d = changes.get(base)
        if d is None:
            step = self._step if base == self._prev else p.diff(self._bases[base][0], self.time)
            d = changes[base] = step
        pos = sub.pos
        if pos is not None:
            d = [[pos[i], delta] for i, delta in d if i in pos]
            if not d:  # nothing it may see changed: it hears nothing
                self._stand(sub, epoch)
                return
        body = {"seq": epoch, "base": sub.seq, "d": d, "qt": qt}
        peer = sub.peer
        frame: str | None = None
        if pos is None and peer.holding is not sub:
            key = (base, sub.seq)
            frame = frames.get(key)
            if frame is None:
                frame = frames[key] = p.encode({"t": "diff", "m": self.id, **body})
        sub.seq = epoch
        self._stand(sub, epoch)
        peer.push_diff(sub, body, frame)

    # ------------------------------------------------------------ mutations

    def when_idle(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` now if the machine is idle, else once its queue ends: a mutation resolved
        and checked now then runs exactly as resolved."""
        mach = self.mach
        if mach.is_disposed or (mach.transition is None and mach.queue_len() == 0):
            fn()
            return
        mach.when_queue_ends().add_done_callback(lambda _: self.when_idle(fn))

    def touched(self, op: str, states: list[str]) -> list[str]:
        """The states the mutation would activate or deactivate, resolved on a handler-free
        copy of the machine (no handler of the real one runs); ``[]`` if it would be canceled
        by its relations. Call it on an idle machine."""
        mach = self.mach
        shadow = self._shadow
        exported = mach.export()
        if shadow is None or shadow.state_names() != exported["state_names"]:
            shadow = Machine(mach.schema, id=mach.id)
            shadow.bind_tracer(self._resolution)
            # cached only while watched: the schema hooks then tell when it goes stale
            self._shadow = shadow if self._users else None
        shadow.import_data(exported)
        resolution = self._resolution
        resolution.tx = None
        resolution.armed = True
        try:
            if op == "add_err":
                shadow.add(list(dict.fromkeys([states[0], "Exception"])))
            else:
                getattr(shadow, op)(states)
        finally:
            resolution.armed = False
        tx = resolution.tx
        resolution.tx = None
        if tx is None or not tx.is_accepted:
            return []
        return [*tx.enters, *tx.exits]

    def submit(
        self,
        op: str,
        states: list[str],
        args: dict[str, Any] | None,
        source: MutationSource,
        err: BaseException | None = None,
    ) -> Result:
        """Run a client's mutation on the machine, its source attached to the queued mutation."""
        mach = self.mach
        self.attach()
        self._stamp = source
        try:
            if op == "add_err":
                return mach.add_err_state(states[0], err, args)
            result: Result = getattr(mach, op)(states, args)
            return result
        finally:
            self._stamp = None
            self.detach()

    def dry_run(self, op: str, states: list[str], args: dict[str, Any] | None) -> Result:
        mach = self.mach
        if mach.is_disposed:
            return Canceled
        if op == "add":
            return mach.can_add(states, args)
        return mach.can_remove(states, args)

    def forbidden(self, req: Request) -> str | None:
        """Why the principal may not run the mutation (resolved now, on an idle machine)."""
        policy = req.policy
        if not policy.write:
            return f"{req.principal} may not mutate {self.id}"
        if policy.states is None:
            return None
        outside = policy.outside(self.touched(req.op, req.states))
        if not outside:
            return None
        shown = policy.visible(outside)
        hidden = len(outside) - len(shown)
        what = " ".join(shown) + (f" and {hidden} more" if hidden else "")
        return f"{req.principal} may not change {what.strip()}"

    def run_mutation(self, req: Request) -> int:
        """On an idle machine: the key's earlier answer, or the policy check and the run."""
        if self.gone:
            raise ProtocolError(p.E_UNKNOWN_MACHINE, f"unknown machine {self.id[:80]!r}")
        store, key, op, states = self.store, req.key, req.op, req.states
        if key is not None:
            known = store.get(req.scope, key)
            if known is not None:
                if (known.op, known.states) != (op, tuple(states)):
                    raise ProtocolError(p.E_BAD_MESSAGE, "key already used for another mutation")
                return known.result
        refused = self.forbidden(req)
        if refused is not None:
            raise ProtocolError(p.E_FORBIDDEN, refused)
        source = req.source if req.source is not None else MutationSource("", "", 0)
        result = int(self.submit(op, states, req.args, source, req.err))
        if key is not None:
            store.put(req.scope, key, Remembered(op, tuple(states), result))
        return result

    def mutate(self, req: Request, done: Answer) -> None:
        """Run ``req`` once the machine is idle; ``done(result, error)``."""

        def run() -> None:
            try:
                result = self.run_mutation(req)
            except ProtocolError as failed:
                done(None, failed)
                return
            except Exception:
                log.exception("machine %s: mutation failed", self.id)
                done(None, ProtocolError(p.E_INTERNAL, "internal server error"))
                return
            done(result, None)

        self.when_idle(run)

    def check(self, req: Request, done: Answer) -> None:
        """``can_add``/``can_remove`` once idle; a mutation the policy refuses is canceled."""

        def run() -> None:
            result: Result = Canceled
            if not self.gone and self.forbidden(req) is None:
                result = self.dry_run(req.op, req.states, req.args)
            done(int(result), None)

        self.when_idle(run)

    def explain(self, req: Request, done: Answer) -> None:
        """``explain_add``/``explain_remove`` once idle, as a wire dict (every state named)."""
        mach = self.mach
        explain = mach.explain_add if req.op == "add" else mach.explain_remove

        def run() -> None:
            refused = None if self.gone else self.forbidden(req)
            if refused is not None:
                done(
                    {
                        "result": int(Canceled),
                        "target": [],
                        "added": [],
                        "removed": [],
                        "canceled_by": "policy",
                        "rejected": [[s, "forbidden by policy"] for s in req.states],
                    },
                    None,
                )
                return
            x = explain(req.states, req.args)
            done(
                {
                    "result": int(x.result),
                    "target": list(x.target),
                    "added": list(x.added),
                    "removed": list(x.removed),
                    "canceled_by": x.canceled_by,
                    "rejected": [[state, str(why)] for state, why in x.rejected],
                },
                None,
            )

        self.when_idle(run)


class Hub:
    """The machines one server exposes, its connections, and its own machine (``mach``)."""

    def __init__(
        self,
        *,
        schedule: Schedule,
        authenticate: Authenticate | None = None,
        idempotency: IdempotencyStore | None = None,
        heartbeat: float = 15.0,
        handshake_timeout: float = 5.0,
        max_frame: int = p.MAX_FRAME,
        outbox_limit: int = 1000,
        flood_rate: float = 5000.0,
        flood_burst: int = 10000,
        server_id: str | None = None,
    ) -> None:
        self.id = server_id or "rpc-" + secrets.token_hex(4)
        self.mach = Machine(SERVER_SCHEMA, id=self.id)
        self.mach.verify_states(ss.names())
        self.exposed: dict[str, Exposed] = {}
        self.sessions: set[Peer] = set()
        self.idempotency = idempotency
        self.heartbeat = heartbeat
        self.handshake_timeout = handshake_timeout
        self.max_frame = max_frame
        self.outbox_limit = outbox_limit
        self.flood_rate = flood_rate
        self.flood_burst = flood_burst
        self._authenticate = authenticate
        self._schedule = schedule
        self.remote: RemoteMachines | None = None
        """Machines hosted elsewhere that this hub serves too (set by a NATS gateway)."""
        self._dirty: list[Exposed] = []
        self._flush_scheduled = False

    # ------------------------------------------------------------ machines

    def expose(self, mach: Machine, machine_id: str | None = None) -> str:
        """Make ``mach`` reachable as ``machine_id`` (default: its id)."""
        machine_id = machine_id or mach.id
        if machine_id in self.exposed:
            raise ValueError(f"machine id {machine_id!r} is already exposed")
        if mach.is_disposed:
            raise ValueError(f"machine {mach.id!r} is disposed")
        self.exposed[machine_id] = Exposed(self, mach, machine_id, self.idempotency)
        return machine_id

    def unexpose(self, machine_id: str) -> None:
        exposed = self.exposed.get(machine_id)
        if exposed is None:
            raise KeyError(machine_id)
        self.forget(exposed)

    def lookup(self, machine_id: str) -> Exposed | None:
        exposed = self.exposed.get(machine_id)
        if exposed is None and self.remote is not None:
            return self.remote.get(machine_id)
        if exposed is not None and exposed.gone:
            self.forget(exposed)
            return None
        return exposed

    def resolve(self, machine_id: str, then: Callable[[], None], since: int | None = None) -> bool:
        """True when ``lookup(machine_id)`` can answer now; else False, and ``then`` runs once
        it can (a remote machine's clock is being fetched)."""
        if self.remote is None or machine_id in self.exposed or self.remote.get(machine_id):
            return True
        self.remote.follow(machine_id, then, since)
        return False

    def forget(self, exposed: Exposed) -> None:
        """The machine is gone (disposed or unexposed): its subscribers are told so."""
        if self.exposed.get(exposed.id) is exposed:
            del self.exposed[exposed.id]
        for sub in list(exposed.subs):
            exposed.unsubscribe(sub)
            sub.peer.machine_gone(sub)

    def visible(self, principal: Principal) -> list[str]:
        ids = list(self.exposed)
        if self.remote is not None:
            ids += [m for m in self.remote.ids() if m not in self.exposed]
        return [m for m in ids if principal.policy(m).read]

    # ------------------------------------------------------------ diffs and payloads

    def mark_dirty(self, exposed: Exposed) -> None:
        self._dirty.append(exposed)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._schedule(self.flush)

    def flush(self) -> None:
        """Push every pending change now (frames queued after this follow those diffs)."""
        self._flush_scheduled = False
        while self._dirty:
            dirty, self._dirty = self._dirty, []
            for exposed in dirty:
                if exposed.dirty:
                    exposed.flush()

    def send_payload(
        self,
        name: str,
        data: Any,
        *,
        machine: str | None = None,
        client: str | None = None,
        session: str | None = None,
    ) -> int:
        """Queue a payload for the connections subscribed to ``machine``, with client id
        ``client``, with session id ``session`` (all that are given), or all connections.
        Returns how many it was queued for. Raises ``ValueError``/``TypeError`` when ``data`` is
        not strict JSON (NaN, Infinity, objects)."""
        message: dict[str, Any] = {"t": "payload", "name": name, "data": data}
        if machine is not None:
            message["m"] = machine
        frame = p.encode(message)
        self.flush()  # ordered after the diffs of everything that happened before it
        count = 0
        for peer in list(self.sessions):
            if not peer.is_open:
                continue
            if machine is not None and machine not in peer.subs:
                continue
            if client is not None and peer.client_id != client:
                continue
            if session is not None and peer.id != session:
                continue
            if peer.push_payload(frame):
                count += 1
        return count

    def disconnect(
        self, *, client: str | None = None, session: str | None = None, reason: str = "revoked"
    ) -> int:
        """Close the connections with client id ``client`` and/or session id ``session`` (close
        code 4003); returns how many. One of the two is required: closing every connection is
        ``Server.stop``'s job."""
        if client is None and session is None:
            raise ValueError("disconnect needs a client id or a session id")
        count = 0
        for peer in list(self.sessions):
            if client is not None and peer.client_id != client:
                continue
            if session is not None and peer.id != session:
                continue
            if peer.is_open:
                peer.end(p.CLOSE_REVOKED, reason[:100])
                count += 1
        return count

    # ------------------------------------------------------------ connections

    async def authenticate(self, token: str | None, info: ConnInfo) -> Principal | None:
        """Run the auth hook (sync or async); a hook that raises refuses the connection."""
        if self._authenticate is None:
            return ANONYMOUS
        try:
            result = self._authenticate(token, info)
            if inspect.isawaitable(result):
                result = await result
        except Exception:
            log.exception("authenticate hook raised; refusing")
            return None
        return result if isinstance(result, Principal) else None

    def connected(self, peer: Peer) -> None:
        self.mach.add1(ss.ClientConnected, peer.event_args())

    def disconnected(self, peer: Peer) -> None:
        self.mach.add1(ss.ClientDisconnected, peer.event_args())

    def subscribed(self, peer: Peer, machine_id: str) -> None:
        self.mach.add1(ss.ClientSubscribed, {**peer.event_args(), "machine_id": machine_id})
