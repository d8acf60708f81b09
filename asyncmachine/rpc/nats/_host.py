"""Hosting a machine on NATS: ``expose(mach, nats_url)``.

The host is a hub with one machine and one subscriber of its own, the broadcast: the hub hands it
every clock change as the WebSocket ``diff`` frame (the same seq chain), and the host publishes
that frame once on ``am.m.<id>.diff`` for every gateway. Requests from gateways (snapshots,
mutations with their idempotency key and the client's policy, dry runs) arrive by request/reply
and run through the same hub code a WebSocket server runs. The chain starts at a random ``seq``,
so a restarted host never reuses the numbers of its previous run, and the host remembers the
clocks of its last epochs, so a gateway can resume a client from an older ``seq``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import OrderedDict
from typing import Any

from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from ..._machine import Machine
from ..._transition import MutationSource
from .. import _protocol as p
from .._auth import Policy
from .._errors import ProtocolError, RemoteError
from .._hub import Exposed, Hub, Request, Subscription
from .._idempotency import IdempotencyStore
from . import _subjects as subjects
from ._link import Link, body, open_nats, soon

log = logging.getLogger("asyncmachine.rpc.nats")

HISTORY = 512
"""Epochs whose clocks a host (and a gateway) keeps, to resume clients from them."""
CLAIM_WAIT = 0.25
"""Seconds a new host listens for other hosts of its machine id."""


class _Broadcast:
    """The host's own subscriber: what the hub would send a connection goes to NATS instead."""

    holding: Subscription | None = None

    def __init__(self, host: Host) -> None:
        self.host = host
        self.id = host.id
        self.client_id = host.id
        self.subs: dict[str, Subscription] = {}

    @property
    def is_open(self) -> bool:
        return True

    def event_args(self) -> dict[str, Any]:
        return {"client_id": self.id, "principal": "nats", "session_id": self.id}

    def push_payload(self, frame: str) -> bool:
        return False

    def push_diff(self, sub: Subscription, body: dict[str, Any], frame: str | None) -> None:
        self.host.remember()
        self.host.publish_raw(frame or p.encode({"t": "diff", "m": sub.exposed.id, **body}))

    def push_snapshot(self, sub: Subscription) -> None:
        self.host.publish_snapshot()

    def machine_gone(self, sub: Subscription) -> None:
        self.host.publish({"t": "down", "m": self.host.machine_id, "host": self.id})

    def end(self, code: int, reason: str) -> None:
        return None


class Host:
    """One machine served over NATS; ``await host.close()`` ends it (gateways hear ``down``)."""

    def __init__(
        self,
        mach: Machine,
        link: Link,
        machine_id: str,
        idempotency: IdempotencyStore | None,
        heartbeat: float,
    ) -> None:
        self.mach = mach
        self.link = link
        self.machine_id = machine_id
        self.id = "h-" + secrets.token_hex(6)
        self.started = time.time()
        self.heartbeat = heartbeat
        self.hub = Hub(schedule=soon, idempotency=idempotency, server_id=self.id)
        self.hub.expose(mach, machine_id)
        self.exposed: Exposed = self.hub.exposed[machine_id]
        # a fresh range of seq numbers: a client's seq from an earlier run never matches
        self.exposed.epoch = 1 + secrets.randbelow(2**52)
        self._broadcast = _Broadcast(self)
        self._history: OrderedDict[int, tuple[list[int], int]] = OrderedDict()
        self._subs: list[Any] = []
        self._beat: asyncio.Task[None] | None = None
        self.closed = False

    # ------------------------------------------------------------ publishing

    def publish(self, message: dict[str, Any]) -> None:
        self.link.send(subjects.machine(self.machine_id, "diff"), message)

    def publish_raw(self, frame: str) -> None:
        self.link.send_raw(subjects.machine(self.machine_id, "diff"), frame.encode())

    def publish_snapshot(self) -> None:
        self.remember()
        self.publish(self.snapshot())

    def remember(self) -> None:
        """Keep the latest epoch's clock (the last ``HISTORY`` of them)."""
        exposed = self.exposed
        history = self._history
        history[exposed.epoch] = (exposed.time, exposed.qt)
        while len(history) > HISTORY:
            history.popitem(last=False)

    def snapshot(self, since: int | None = None) -> dict[str, Any]:
        """The machine now, as a ``snap`` (every state), with the clock at ``since`` if kept."""
        exposed = self.exposed
        snap: dict[str, Any] = {
            "t": "snap",
            "m": self.machine_id,
            "seq": exposed.epoch,
            "names": exposed.names,
            "schema": exposed.schema,
            "time": exposed.time,
            "qt": exposed.qt,
            "mt": exposed.mt,
            "host": self.id,
            "hb_ms": int(self.heartbeat * 1000),
        }
        if since is not None and since in self._history and since != exposed.epoch:
            then, qt = self._history[since]
            snap["from"] = [since, then, qt]
        return snap

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        nc = self.link.nc
        await self._refuse_if_claimed()
        sub = self._broadcast
        broadcast = self.exposed.subscribe(sub, Policy(), None)
        sub.subs[self.machine_id] = broadcast
        self.exposed.snapshot(broadcast)
        handlers = {
            "claim": self._on_claim,
            "snap": self._on_snap,
            "mut": self._on_mut,
            "check": self._on_check,
        }
        for kind, handler in handlers.items():
            self._subs.append(
                await nc.subscribe(subjects.machine(self.machine_id, kind), cb=handler)
            )
        await nc.flush()
        await self._refuse_if_claimed(after=True)
        self.publish_snapshot()  # gateways following this id pick the new host up now
        self._beat = asyncio.get_running_loop().create_task(self._heartbeats())

    async def _refuse_if_claimed(self, after: bool = False) -> None:
        """Refuse a second host of the machine id. Before subscribing, any answer is another
        host; after, hosts that started at once both hear each other and the younger leaves."""
        nc = self.link.nc
        subject = subjects.machine(self.machine_id, "claim")
        probe = p.encode({"t": "claim", "host": self.id, "started": self.started}).encode()
        if not after:
            try:
                reply = await nc.request(subject, probe, timeout=2.0)
            except (NoRespondersError, NatsTimeout):
                return
            other = body(reply)
            raise ValueError(
                f"machine {self.machine_id!r} is already hosted on NATS (by {other.get('host')})"
            )
        inbox = nc.new_inbox()
        answers: list[dict[str, Any]] = []

        async def collect(msg: Msg) -> None:
            with contextlib.suppress(ProtocolError):
                answers.append(body(msg))

        listener = await nc.subscribe(inbox, cb=collect)
        try:
            await nc.publish(subject, probe, reply=inbox)
            await nc.flush()
            await asyncio.sleep(CLAIM_WAIT)  # a window for other hosts' answers, by design
        finally:
            await listener.unsubscribe()
        for other in answers:
            if other.get("host") != self.id and (other.get("started", 0), other["host"]) < (
                self.started,
                self.id,
            ):
                await self.close(quiet=True)
                raise ValueError(
                    f"machine {self.machine_id!r} is already hosted on NATS (by {other['host']})"
                )

    async def _heartbeats(self) -> None:
        subject = subjects.heartbeat(self.id)
        while True:
            self.link.send(subject, {"t": "hb", "host": self.id, "m": self.machine_id})
            await asyncio.sleep(self.heartbeat)

    async def close(self, quiet: bool = False) -> None:
        """Stop serving: gateways hear ``down`` and their clients reconnect (and wait for the
        next host of the id)."""
        if self.closed:
            return
        self.closed = True
        if self._beat is not None:
            self._beat.cancel()
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        if not quiet:
            self.hub.flush()
            self.publish({"t": "down", "m": self.machine_id, "host": self.id})
        broadcast = self._broadcast.subs.pop(self.machine_id, None)
        if broadcast is not None:
            self.exposed.unsubscribe(broadcast)
        with contextlib.suppress(KeyError):
            self.hub.unexpose(self.machine_id)
        await self.link.close()

    async def __aenter__(self) -> Host:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------ requests from gateways

    def _reply(self, msg: Msg, message: dict[str, Any]) -> None:
        if msg.reply:
            self.link.send(msg.reply, message)

    def _fail(self, msg: Msg, err: ProtocolError) -> None:
        self._reply(msg, {"t": "err", "code": err.code, "msg": err.msg})

    async def _on_claim(self, msg: Msg) -> None:
        self._reply(msg, {"t": "claim", "host": self.id, "started": self.started})

    async def _on_snap(self, msg: Msg) -> None:
        try:
            since = body(msg).get("since")
        except ProtocolError:
            since = None
        self.hub.flush()  # the broadcast is on the latest epoch: so is the snapshot
        self.exposed.advance()
        self.remember()
        self._reply(msg, self.snapshot(since if p.is_int(since, 1) else None))

    def _request(self, message: dict[str, Any], ops: tuple[str, ...]) -> Request:
        """A gateway's forwarded request, checked as a WebSocket server checks a client's."""
        op = message.get("op")
        if op not in ops:
            raise ProtocolError(p.E_BAD_MESSAGE, f'"op" must be one of {", ".join(ops)}')
        states = p.field_states(message)
        unknown = [s for s in states if not self.exposed.has(s)]
        if unknown:
            raise ProtocolError(p.E_UNKNOWN_STATE, f"unknown states: {' '.join(unknown)[:200]}")
        who = p.field_str(message, "who")
        pol = message.get("pol")
        if not isinstance(pol, dict):
            pol = {}
        policy = Policy(
            write=pol.get("write") is not False,
            states=_names(pol.get("states")),
            read_states=_names(pol.get("read")),
        )
        return Request(op, states, p.field_args(message), who, policy)

    async def _on_mut(self, msg: Msg) -> None:
        try:
            message = body(msg)
            req = self._request(message, p.OPS)
            cid = p.field_str(message, "cid")
            req.key = p.field_key(message)
            req.scope = (self.machine_id, req.principal, cid)
            src = p.field_src(message)
            req.source = MutationSource(
                src.mach_id if src else "",
                src.tx_id if src else "",
                src.mach_time if src else 0,
                client_id=cid,
                tab_id=src.tab_id if src else None,
                meta=src.meta if src else None,
            )
            if req.op == "add_err":
                if len(req.states) != 1:
                    raise ProtocolError(p.E_BAD_MESSAGE, '"add_err" takes one error state')
                req.err = RemoteError(*p.field_err(message))
        except ProtocolError as err:
            self._fail(msg, err)
            return

        def done(result: Any, failed: ProtocolError | None) -> None:
            if failed is not None:
                self._fail(msg, failed)
                return
            self.hub.flush()  # the diff first, then the result that waits for it
            self._reply(msg, {"t": "res", "r": result, "seq": self.exposed.epoch, "host": self.id})

        self.exposed.mutate(req, done)

    async def _on_check(self, msg: Msg) -> None:
        try:
            message = body(msg)
            kind = message["t"]
            if kind not in ("check", "explain"):
                raise ProtocolError(p.E_BAD_MESSAGE, '"t" must be "check" or "explain"')
            req = self._request(message, p.CHECK_OPS)
        except ProtocolError as err:
            self._fail(msg, err)
            return
        field = "r" if kind == "check" else "x"

        def done(value: Any, failed: ProtocolError | None) -> None:
            if failed is not None:
                self._fail(msg, failed)
            else:
                self._reply(msg, {"t": "res", field: value})

        if kind == "check":
            self.exposed.check(req, done)
        else:
            self.exposed.explain(req, done)


def _names(value: Any) -> list[str] | None:
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return value
    return None


async def expose(
    mach: Machine,
    nats_url: str,
    machine_id: str | None = None,
    *,
    idempotency: IdempotencyStore | None = None,
    heartbeat: float = 1.0,
    **nats_options: Any,
) -> Host:
    """Serve ``mach`` on NATS as ``machine_id`` (default: its id) from this process. Raises
    ``ValueError`` when another host already serves that id. ``idempotency`` is where mutation
    keys live (``rpc.SqliteIdempotency`` survives restarts); ``nats_options`` go to
    ``nats.connect`` (credentials, TLS)."""
    machine_id = subjects.check_id(machine_id or mach.id)
    if mach.is_disposed:
        raise ValueError(f"machine {mach.id!r} is disposed")
    nc = await open_nats(nats_url, f"am-host-{machine_id}", nats_options)
    host = Host(mach, Link(nc), machine_id, idempotency, heartbeat)
    try:
        await host.start()
    except BaseException:
        await host.close(quiet=True)
        raise
    return host
