"""The gateway side: a hub serving machines hosted elsewhere on NATS (``rpc.Server(nats=...)``).

Each remote machine a client asks for becomes a ``RemoteMachine`` in the hub, with the same
subscriptions, filters and coalesced diffs as a local one; its clock comes from its host's
``am.m.<id>.diff`` subject (one NATS subscription per machine per gateway, whatever the number of
clients) and its epochs are the host's ``seq`` numbers, so a client moving to another gateway
resumes where it was. Mutations and dry runs travel to the host by request/reply with the
client's key, principal and policy; a mutation's result is answered once the gateway's clock has
reached the host's ``seq`` after it (read your writes). A host that goes silent or says ``down``
ends the connections subscribed to its machine (1012): clients reconnect and wait for the next
host of the id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from ..._machine import Machine
from .. import _protocol as p
from .._errors import ProtocolError
from .._hub import Answer, Exposed, Hub, Request
from . import _subjects as subjects
from ._host import HISTORY
from ._link import Link, body, open_nats

log = logging.getLogger("asyncmachine.rpc.nats")

HOST_SILENCE = 3.0
"""Seconds without a heartbeat after which a host no longer lists its machine."""

CLOSE_HOST_DOWN = 1012
"""The close code for clients of a machine whose host went away (WebSocket "service restart")."""

_NO_MACHINE = Machine({}, id="remote")
"""A remote machine has no local ``Machine``; the hub's code paths that need one are replaced."""


class RemoteMachine(Exposed):
    """A machine hosted elsewhere, as one gateway's hub serves it."""

    resumable = True

    def __init__(self, gateway: Gateway, machine_id: str) -> None:
        super().__init__(gateway.hub, _NO_MACHINE, machine_id, None)
        self.gateway = gateway
        self.host: str | None = None
        self.hb = 3.0
        self.loaded = False
        self.up = False
        self.history: OrderedDict[int, tuple[list[int], int]] = OrderedDict()
        self.waiting: list[Callable[[], None]] = []
        self.at_seq: list[tuple[str, int, Callable[[], None]]] = []
        self.buffer: list[dict[str, Any]] = []
        self.nats_sub: Any = None
        self.loading: asyncio.Task[None] | None = None
        self.linger: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------ what sessions read

    @property
    def gone(self) -> bool:
        return not self.up

    def has(self, state: str) -> bool:
        return state in self._index

    def state_names(self) -> list[str]:
        return self.names

    def base(self, seq: int) -> tuple[list[int], int] | None:
        return self.history.get(seq)

    def advance(self) -> bool:
        return True  # the clock is pushed in from NATS

    def attach(self) -> None:
        self._users += 1
        if self.linger is not None:
            self.linger.cancel()
            self.linger = None

    def detach(self) -> None:
        self._users -= 1
        self.idle()

    def idle(self) -> None:
        """Nobody watches it: stop following it after ``linger`` seconds, unless someone does."""
        if self._users == 0 and not self.waiting and self.linger is None:
            loop = asyncio.get_running_loop()
            self.linger = loop.call_later(self.gateway.linger, self.gateway.unfollow, self)

    def when_idle(self, fn: Callable[[], None]) -> None:
        fn()

    # ------------------------------------------------------------ the clock from the host

    def load(self, snap: dict[str, Any]) -> None:
        """A snapshot from the host: a new host or new names resets every subscription; a gap
        in the same chain only moves the clock (subscriptions get diffs)."""
        names, time_, seq = snap.get("names"), snap.get("time"), snap.get("seq")
        if (
            not isinstance(names, list)
            or not isinstance(time_, list)
            or len(names) != len(time_)
            or not p.is_int(seq)
        ):
            log.warning("gateway: a malformed snapshot of %s", self.id)
            return
        host = str(snap.get("host"))
        hb_ms = snap.get("hb_ms")
        self.hb = hb_ms / 1000 if p.is_int(hb_ms, 1) else 3.0
        qt, mt = int(snap.get("qt", 0)), int(snap.get("mt", 0))
        same = self.loaded and host == self.host and names == self.names and seq >= self.epoch
        self.host = host
        self.up = True
        self.gateway.seen[host] = time.monotonic()
        if same:
            if seq > self.epoch:
                self._set_latest(time_, qt, p.diff(self.time, time_), epoch=seq)
                self._keep(seq)
                self._changed()
        else:
            self.loaded = True
            self.names = [str(n) for n in names]
            self._index = {name: i for i, name in enumerate(self.names)}
            schema = snap.get("schema")
            self.schema = schema if isinstance(schema, dict) else {}
            self.mt = mt
            self.history.clear()
            self.epoch = 0
            self._set_latest(list(time_), qt, [], epoch=seq)
            self._bases = {seq: (self.time, qt)}
            self._on = {}
            self._keep(seq)
            for sub in list(self.subs):
                sub.at = 0
                sub.reindex()
                sub.peer.push_snapshot(sub)
        start = snap.get("from")
        if isinstance(start, list) and len(start) == 3 and p.is_int(start[0]):
            self.history[start[0]] = (list(start[1]), int(start[2]))
        buffered, self.buffer = self.buffer, []
        for message in buffered:
            self.receive(message)
        self._reached()
        waiting, self.waiting = self.waiting, []
        for then in waiting:
            then()

    def receive(self, message: dict[str, Any]) -> None:
        """A message on the machine's ``diff`` subject (a sign of its host's life, too: a host
        too busy to send its heartbeat on time still publishes its changes)."""
        if self.host is not None:
            self.gateway.seen[self.host] = time.monotonic()
        kind = message.get("t")
        if kind == "snap":
            self.load(message)
        elif kind == "down":
            if message.get("host") == self.host:
                self.lost("its host closed")
        elif kind == "diff":
            if not self.loaded or self.loading is not None:
                self.buffer.append(message)
                return
            seq, base = message.get("seq"), message.get("base")
            if not p.is_int(seq) or (self.up and seq <= self.epoch and base != self.epoch):
                return  # old news
            if base != self.epoch or not self.up:
                self.gateway.fetch(self)  # a gap (or a new host): the host's snapshot
                return
            now = self.time.copy()
            d = message.get("d")
            try:
                p.apply_diff(now, d)  # checks every [index, delta] of it
            except ProtocolError:
                self.gateway.fetch(self)
                return
            assert isinstance(d, list)
            step = sorted([int(i), int(delta)] for i, delta in d)
            qt = message.get("qt")
            self._set_latest(now, qt if p.is_int(qt) else self.qt, step, epoch=seq)
            self._keep(seq)
            self._changed()
            self._reached()

    def _keep(self, seq: int) -> None:
        history = self.history
        history[seq] = (self.time, self.qt)
        while len(history) > HISTORY:
            history.popitem(last=False)

    def _changed(self) -> None:
        if self.subs and not self.dirty:
            self.dirty = True
            self.hub.mark_dirty(self)

    def when_at(self, host: str, seq: int, fn: Callable[[], None]) -> None:
        """Run ``fn`` once the clock is at ``seq`` of ``host``'s chain (or that host is gone)."""
        if host != self.host or self.epoch < seq:
            self.at_seq.append((host, seq, fn))
            if host != self.host:
                self.gateway.fetch(self)
            return
        fn()

    def _reached(self) -> None:
        if not self.at_seq:
            return
        now, self.at_seq = self.at_seq, []
        for host, seq, fn in now:
            if (host == self.host and self.epoch >= seq) or not self.up:
                fn()
            else:
                self.at_seq.append((host, seq, fn))

    def lost(self, why: str) -> None:
        """The host is gone: the clients of this machine reconnect (and wait for a new host)."""
        if not self.up:
            return
        log.info("gateway: machine %s lost its host %s (%s)", self.id, self.host, why)
        self.up = False
        self._reached()
        for sub in list(self.subs):
            sub.peer.end(CLOSE_HOST_DOWN, "host down")

    # ------------------------------------------------------------ requests to the host

    def _forward(self, kind: str, req: Request, extra: dict[str, Any], done: Answer) -> None:
        message: dict[str, Any] = {
            "t": kind,
            "op": req.op,
            "states": req.states,
            "who": req.principal,
            "pol": {
                "write": req.policy.write,
                "states": None if req.policy.states is None else sorted(req.policy.states),
                "read": None if req.policy.read_states is None else sorted(req.policy.read_states),
            },
            **extra,
        }
        if req.args:
            message["args"] = req.args
        if not req.policy.write and kind == "mut":
            done(None, ProtocolError(p.E_FORBIDDEN, f"{req.principal} may not mutate {self.id}"))
            return
        self.gateway.request(self, "mut" if kind == "mut" else "check", message, done)

    def mutate(self, req: Request, done: Answer) -> None:
        extra: dict[str, Any] = {"cid": req.scope[2]}
        if req.key is not None:
            extra["key"] = req.key
        source = req.source
        if source is not None:
            src = p.Src(
                source.mach_id,
                source.tx_id,
                source.mach_time,
                client_id=None,
                tab_id=source.tab_id,
                meta=source.meta,
            ).to_wire()
            if src:
                extra["src"] = src
        if req.err is not None:
            name = getattr(req.err, "type_name", None) or type(req.err).__name__
            extra["err"] = {"type": name[: p.MAX_ERR_TYPE], "msg": str(req.err)[: p.MAX_ERR_MSG]}

        def answered(reply: Any, failed: ProtocolError | None) -> None:
            if failed is not None:
                done(None, failed)
                return
            result = reply.get("r")
            if not p.is_int(result):
                done(None, ProtocolError(p.E_INTERNAL, "the host's answer has no result"))
                return
            seq, host = reply.get("seq"), str(reply.get("host"))
            self.when_at(host, seq if p.is_int(seq) else 0, lambda: done(result, None))

        self._forward("mut", req, extra, answered)

    def check(self, req: Request, done: Answer) -> None:
        self._forward("check", req, {}, lambda reply, err: done(reply and reply.get("r"), err))

    def explain(self, req: Request, done: Answer) -> None:
        self._forward("explain", req, {}, lambda reply, err: done(reply and reply.get("x"), err))


class Gateway:
    """The NATS side of a server: follows remote machines on demand (``hub.remote``)."""

    def __init__(
        self,
        hub: Hub,
        nats_url: str,
        options: dict[str, Any] | None = None,
        *,
        hold: float = 10.0,
        linger: float = 5.0,
        request_timeout: float = 30.0,
    ) -> None:
        self.hub = hub
        self.url = nats_url
        self.options = dict(options or {})
        self.hold = hold
        """Seconds a request for a machine whose host is away waits for a new host."""
        self.linger = linger
        """Seconds a machine nobody watches stays followed."""
        self.request_timeout = request_timeout
        """Seconds a request waits for its host: a safety net (a host that died is noticed by
        its heartbeats), long enough for a busy host's backlog."""
        self.machines: dict[str, RemoteMachine] = {}
        self.seen: dict[str, float] = {}
        """Host id -> when its last heartbeat (or snapshot) arrived (monotonic)."""
        self.hosted: dict[str, str] = {}
        """Machine id -> the host id whose heartbeats name it."""
        self.link: Link | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._hb_sub: Any = None
        self._watch: asyncio.Task[None] | None = None

    async def start(self) -> None:
        nc = await open_nats(self.url, f"am-gateway-{self.hub.id}", self.options)
        self.link = Link(nc)
        self._hb_sub = await nc.subscribe(subjects.HEARTBEATS, cb=self._on_heartbeat)
        self._watch = asyncio.get_running_loop().create_task(self._watch_hosts())
        self.hub.remote = self

    async def stop(self) -> None:
        if self.hub.remote is self:
            self.hub.remote = None
        for task in [*self._tasks, *([self._watch] if self._watch else [])]:
            task.cancel()
        for remote in list(self.machines.values()):
            if remote.linger is not None:
                remote.linger.cancel()
        self.machines.clear()
        if self.link is not None:
            await self.link.close()
            self.link = None

    # ------------------------------------------------------------ RemoteMachines

    def get(self, machine_id: str) -> Exposed | None:
        remote = self.machines.get(machine_id)
        if remote is None or not remote.loaded or not remote.up:
            return None
        return remote

    def follow(self, machine_id: str, then: Callable[[], None], since: int | None = None) -> None:
        try:
            subjects.check_id(machine_id)
        except ValueError:
            then()  # no such subject: unknown
            return
        remote = self.machines.get(machine_id)
        if remote is None:
            remote = self.machines[machine_id] = RemoteMachine(self, machine_id)
        remote.waiting.append(then)
        self.fetch(remote, since)

    def unfollow(self, remote: RemoteMachine) -> None:
        remote.linger = None
        if self.link is None:  # stopped: the connection went with everything on it
            return
        if remote._users or remote.waiting or self.machines.get(remote.id) is not remote:
            return
        del self.machines[remote.id]
        remote.up = False
        remote._reached()  # answers waiting for the chain get what is known
        if remote.nats_sub is not None:
            self._spawn(remote.nats_sub.unsubscribe())

    # ------------------------------------------------------------ NATS

    def fetch(self, remote: RemoteMachine, since: int | None = None) -> None:
        """Load the host's snapshot (subscribing to the diffs first), unless already loading."""
        if remote.loading is None:
            remote.loading = self._spawn(self._load(remote, since))

    async def _load(self, remote: RemoteMachine, since: int | None) -> None:
        assert self.link is not None
        nc = self.link.nc
        try:
            if remote.nats_sub is None:
                remote.nats_sub = await nc.subscribe(
                    subjects.machine(remote.id, "diff"), cb=self._diff_handler(remote)
                )
            ask: dict[str, Any] = {"t": "snap"}
            if since is not None:
                ask["since"] = since
            try:
                reply = await nc.request(
                    subjects.machine(remote.id, "snap"),
                    p.encode(ask).encode(),
                    timeout=self.request_timeout,
                )
                snap = body(reply)
            except (NoRespondersError, NatsTimeout, ProtocolError):
                snap = None
            remote.loading = None
            if snap is not None:
                remote.load(snap)
                remote.idle()  # (a mutation without a subscription needs it only briefly)
            elif not remote.loaded:
                self._unknown(remote)  # never hosted: unknown at once
            else:  # its host is away: a new one announces itself on the diff subject
                loop = asyncio.get_running_loop()
                loop.call_later(self.hold, self._give_up, remote)
        finally:
            remote.loading = None

    def _give_up(self, remote: RemoteMachine) -> None:
        """No host came back within ``hold``: what waits for the machine learns it is unknown."""
        if not remote.up:
            self._unknown(remote)

    def _unknown(self, remote: RemoteMachine) -> None:
        remote.buffer = []
        waiting, remote.waiting = remote.waiting, []
        for then in waiting:
            then()
        if not remote.subs:
            self.unfollow(remote)

    def _diff_handler(self, remote: RemoteMachine) -> Callable[[Msg], Any]:
        async def on_diff(msg: Msg) -> None:
            try:
                message = body(msg)
            except ProtocolError:
                return
            remote.receive(message)

        return on_diff

    async def _on_heartbeat(self, msg: Msg) -> None:
        host = msg.subject.rsplit(".", 1)[-1]
        self.seen[host] = time.monotonic()
        with contextlib.suppress(ProtocolError):
            machine_id = body(msg).get("m")
            if isinstance(machine_id, str):
                self.hosted[machine_id] = host

    def ids(self) -> list[str]:
        now = time.monotonic()
        return sorted(
            m for m, host in self.hosted.items() if now - self.seen.get(host, 0.0) < HOST_SILENCE
        )

    async def _watch_hosts(self) -> None:
        """Hosts silent for three heartbeats are gone."""
        while True:
            await asyncio.sleep(0.25)
            now = time.monotonic()
            for remote in list(self.machines.values()):
                if remote.up and remote.host is not None:
                    last = self.seen.get(remote.host, now)
                    if now - last > 3 * remote.hb:
                        remote.lost("no heartbeat")

    def request(
        self, remote: RemoteMachine, kind: str, message: dict[str, Any], done: Answer
    ) -> None:
        self._spawn(self._request(remote, kind, message, done))

    async def _request(
        self, remote: RemoteMachine, kind: str, message: dict[str, Any], done: Answer
    ) -> None:
        assert self.link is not None
        try:
            reply = await self.link.nc.request(
                subjects.machine(remote.id, kind),
                p.encode(message).encode(),
                timeout=self.request_timeout,
            )
            answer = body(reply)
        except NoRespondersError:
            remote.lost("no host answers")
            done(None, ProtocolError(p.E_UNKNOWN_MACHINE, "the machine has no host now"))
            return
        except NatsTimeout:  # busy, or gone (then its heartbeats stop too)
            done(None, ProtocolError(p.E_TIMEOUT, "the machine's host did not answer in time"))
            return
        except ProtocolError as err:
            done(None, err)
            return
        host = answer.get("host")
        if isinstance(host, str):
            self.seen[host] = time.monotonic()
        if answer.get("t") == "err":
            done(None, ProtocolError(str(answer.get("code")), str(answer.get("msg"))))
        else:
            done(answer, None)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
