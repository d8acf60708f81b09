"""One connection on the server side, without I/O: frames in, frames (and a close) out.

The adapter feeds ``receive(frame, now)`` and ``timer(now)``, runs the auth hook when
``pending_auth`` is set (it may be ``async``) and answers with ``authenticated(principal)``, and
sends what ``data_to_send()`` returns. ``wake`` tells it when there is something to do (frames,
a close, an auth). The session keeps the handshake, policies, subscriptions, the idempotency
lookups, the flood limit and the heartbeat bookkeeping; ``now`` comes from the adapter's clock.
"""

from __future__ import annotations

import logging
import secrets
from collections import deque
from collections.abc import Callable
from typing import Any, ClassVar

from .._transition import MutationSource
from . import _protocol as p
from ._auth import ANONYMOUS, ConnInfo, Principal
from ._errors import ProtocolError, RemoteError
from ._hub import Exposed, Hub, Request, Subscription
from ._protocol import CloseRequest

log = logging.getLogger("asyncmachine.rpc")

_HELLO, _AUTH, _OPEN, _CLOSED = range(4)

_DIFF, _PUSHED_SNAP, _OTHER = range(3)
"""Outbox kinds: the first two may be dropped for a fresh snapshot when the client lags."""


def _nothing() -> None:
    return None


class ServerSession:
    """The protocol state of one client connection."""

    def __init__(self, hub: Hub, remote: str, origin: str | None, now: float) -> None:
        self.hub = hub
        self.id = "s-" + secrets.token_hex(6)
        self.remote = remote
        self.origin = origin
        self.client_id = self.id
        self.principal: Principal = ANONYMOUS
        self.subs: dict[str, Subscription] = {}
        self.peer_max_frame: int | None = None
        """The client's limit from ``hello``; ``None``: it announced none (browsers)."""
        self.pending_auth: tuple[str | None, ConnInfo] | None = None
        """Set after ``hello``: run ``hub.authenticate(*pending_auth)``, then ``authenticated``."""
        self.close_request: CloseRequest | None = None
        self.holding: Subscription | None = None
        """While a mutation from this connection runs, the diff of its machine waits to ride
        in the ``res``."""
        self.wake: Callable[[], None] = _nothing
        self._state = _HELLO
        self._welcomed = False
        self._outbox: deque[tuple[int, str]] = deque()
        self._held: dict[str, Any] | None = None
        self._early: list[str | bytes] = []
        self._opened_at = now
        self._last_seen = now
        self._next_ping = 0.0
        self._tokens = float(hub.flood_burst)
        self._tokens_at = now
        hub.sessions.add(self)

    @property
    def is_open(self) -> bool:
        return self._state == _OPEN

    def event_args(self) -> dict[str, Any]:
        """The args of this connection's states on the server's machine."""
        return {
            "client_id": self.client_id,
            "principal": self.principal.name,
            "session_id": self.id,
        }

    # ------------------------------------------------------------ input

    def receive(self, frame: str | bytes, now: float) -> None:
        """One frame from the client."""
        state = self._state
        if state == _CLOSED:
            return
        self._last_seen = now
        if state == _OPEN:
            if not self._take_token(now):
                self._flooded()
                return
            self._handle(frame)
        elif state == _HELLO:
            self._hello(frame)
        elif len(self._early) < self.hub.flood_burst:  # authenticating: later
            self._early.append(frame)
        else:
            self._flooded()

    def authenticated(self, principal: Principal | None, now: float) -> None:
        """The auth hook's answer for ``pending_auth``."""
        request, self.pending_auth = self.pending_auth, None
        if self._state != _AUTH or request is None:
            return
        if principal is None:
            log.warning(
                "auth refused for client %s from %s (origin %s)",
                self.client_id,
                self.remote,
                self.origin,
            )
            self._refuse(p.E_AUTH, "authentication refused", p.CLOSE_AUTH)
            return
        hub = self.hub
        self.principal = principal
        self._state = _OPEN
        self._welcomed = True
        self._next_ping = now + hub.heartbeat
        self._tokens_at = now
        welcome = {
            "t": "welcome",
            "v": p.VERSION,
            "sid": self.id,
            "hb_ms": int(hub.heartbeat * 1000),
            "max_frame": hub.max_frame,
            "machines": hub.visible(principal),
        }
        self._queue(p.encode(welcome))
        hub.connected(self)
        early, self._early = self._early, []
        for frame in early:
            self.receive(frame, now)

    def timer(self, now: float) -> None:
        """Heartbeat and handshake deadlines; call at ``next_deadline()``."""
        state = self._state
        hub = self.hub
        if state in (_HELLO, _AUTH):
            if now - self._opened_at >= hub.handshake_timeout:
                log.info("handshake failed from %s: no hello in time", self.remote)
                self._refuse(p.E_BAD_MESSAGE, "no hello in time", p.CLOSE_HANDSHAKE)
        elif state == _OPEN:
            if now - self._last_seen >= 2 * hub.heartbeat:
                log.info("session %s (%s) is silent: dropping it", self.id, self.client_id)
                self._close(p.CLOSE_TIMEOUT, "heartbeat timeout", abort=True)
            elif now >= self._next_ping:
                self._next_ping = now + hub.heartbeat
                self._queue(p.encode({"t": "ping", "ts": int(now * 1000)}))

    def next_deadline(self) -> float | None:
        """When ``timer()`` has something to do next; ``None`` once closed."""
        state = self._state
        if state == _OPEN:
            return min(self._next_ping, self._last_seen + 2 * self.hub.heartbeat)
        if state == _CLOSED:
            return None
        return self._opened_at + self.hub.handshake_timeout

    def connection_lost(self) -> None:
        """The connection is gone: subscriptions end, the server's machine hears of it."""
        was_open, self._welcomed = self._welcomed, False
        self._state = _CLOSED
        self._outbox.clear()
        for sub in self.subs.values():
            sub.exposed.unsubscribe(sub)
        self.subs.clear()
        self.hub.sessions.discard(self)
        if was_open:
            self.hub.disconnected(self)

    # ------------------------------------------------------------ output

    def data_to_send(self, limit: int | None = None) -> list[str]:
        """Frames to send, oldest first (at most ``limit``), removed from the outbox."""
        outbox = self._outbox
        if limit is None or limit >= len(outbox):
            frames = [frame for _, frame in outbox]
            outbox.clear()
            return frames
        return [outbox.popleft()[1] for _ in range(limit)]

    def backlog(self) -> int:
        return len(self._outbox)

    def push_diff(self, sub: Subscription, body: dict[str, Any], frame: str | None) -> None:
        if self.holding is sub:
            self._held = body
            return
        if frame is None:
            frame = p.encode({"t": "diff", "m": sub.exposed.id, **body})
        self._queue_push(frame, _DIFF)

    def push_snapshot(self, sub: Subscription) -> None:
        self._queue_push(p.encode(sub.exposed.snapshot(sub)), _PUSHED_SNAP)

    def push_payload(self, frame: str) -> bool:
        if not self._fits(frame):
            log.warning("session %s: payload too large for the client; skipped", self.id)
            return False
        self._queue(frame)
        return True

    def machine_gone(self, sub: Subscription) -> None:
        machine_id = sub.exposed.id
        if self.subs.get(machine_id) is sub:
            del self.subs[machine_id]
            self._error(p.E_UNKNOWN_MACHINE, "machine is gone", m=machine_id)

    def _fits(self, frame: str) -> bool:
        limit = self.peer_max_frame
        # four UTF-8 bytes per character at most: most frames need no counting
        return limit is None or len(frame) * 4 <= limit or p.frame_size(frame) <= limit

    def _queue_push(self, frame: str, kind: int) -> None:
        if not self._fits(frame):
            log.warning("session %s: a frame over the client's limit; closing", self.id)
            self._close(p.CLOSE_TOO_BIG, "frame over the client's limit")
            return
        self._queue(frame, kind)

    def _queue(self, frame: str, kind: int = _OTHER) -> None:
        """Queue a frame. A client too far behind gets fresh snapshots instead of its queued
        diffs; one still behind after that is disconnected (1008)."""
        if self._state == _CLOSED:
            return
        if self._held is not None:  # nothing may overtake the diff a result carries
            held, self._held = self._held, None
            self._queue(p.encode({"t": "diff", "m": self.holding_id(), **held}), _DIFF)
        outbox = self._outbox
        limit = self.hub.outbox_limit
        if len(outbox) >= limit:
            self._resync()
            if kind != _OTHER:
                return  # the snapshots just queued cover it
            if len(outbox) >= limit:
                log.warning("session %s: outbox full after a resync; closing", self.id)
                self._close(p.CLOSE_POLICY, "too slow")
                return
        outbox.append((kind, frame))
        if len(outbox) == 1:
            self.wake()

    def holding_id(self) -> str:
        return self.holding.exposed.id if self.holding is not None else ""

    def _resync(self) -> None:
        """Drop queued diffs and pushed snapshots; queue one fresh snapshot per subscription."""
        log.info("session %s is slow: resyncing %d subscriptions", self.id, len(self.subs))
        kept = deque(item for item in self._outbox if item[0] == _OTHER)
        for sub in self.subs.values():
            kept.append((_PUSHED_SNAP, p.encode(sub.exposed.snapshot(sub))))
        self._outbox = kept

    def _error(self, code: str, msg: str, rid: int | None = None, m: str | None = None) -> None:
        message: dict[str, Any] = {"t": "err", "code": code, "msg": msg}
        if rid is not None:
            message["id"] = rid
        if m is not None:
            message["m"] = m
        self._queue(p.encode(message))

    def end(self, code: int, reason: str) -> None:
        """Close the connection on the application's behalf, after what is already queued."""
        self._close(code, reason)

    def _close(self, code: int, reason: str, abort: bool = False) -> None:
        if self.close_request is None:
            self.close_request = CloseRequest(code, reason, abort)
        self._state = _CLOSED
        self.wake()

    def _refuse(self, code: str, msg: str, close_code: int) -> None:
        """A failed handshake: ``err``, then close."""
        self._queue(p.encode({"t": "err", "code": code, "msg": msg}))
        self._close(close_code, msg[:100])

    def _flooded(self) -> None:
        log.warning("session %s (%s) flooded; closing", self.id, self.client_id)
        self._error(p.E_FLOOD, "too many messages")
        self._close(p.CLOSE_POLICY, "flood")

    def _take_token(self, now: float) -> bool:
        """Token bucket: ``flood_rate`` messages a second, bursts up to ``flood_burst``."""
        hub = self.hub
        tokens = self._tokens + (now - self._tokens_at) * hub.flood_rate
        self._tokens = tokens if tokens < hub.flood_burst else float(hub.flood_burst)
        self._tokens_at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    # ------------------------------------------------------------ the handshake

    def _hello(self, frame: str | bytes) -> None:
        try:
            hello = p.decode(frame)
            if hello["t"] != "hello":
                raise ProtocolError(p.E_BAD_MESSAGE, 'the first message must be "hello"')
            if not p.is_int(hello.get("v")) or hello["v"] != p.VERSION:
                version = str(hello.get("v"))[:20]
                raise ProtocolError(p.E_VERSION, f"unsupported protocol version {version}")
            max_frame = hello.get("max_frame")
            if max_frame is not None and not p.is_int(max_frame, p.MIN_FRAME, 2**62):
                raise ProtocolError(
                    p.E_BAD_MESSAGE, f'"max_frame" must be an integer >= {p.MIN_FRAME}'
                )
        except ProtocolError as err:
            log.info("handshake failed from %s: %s", self.remote, err.msg)
            self._refuse(err.code, err.msg, p.CLOSE_HANDSHAKE)
            return
        cid = hello.get("cid")
        if isinstance(cid, str) and 0 < len(cid) <= p.MAX_NAME:
            self.client_id = cid
        self.peer_max_frame = max_frame
        token = hello.get("token")
        info = ConnInfo(self.remote, self.origin, self.client_id)
        self._state = _AUTH
        self.pending_auth = (token if isinstance(token, str) else None, info)
        self.wake()

    # ------------------------------------------------------------ messages

    def _handle(self, frame: str | bytes) -> None:
        """One message; a bad one gets an ``err`` and changes nothing."""
        rid: int | None = None
        try:
            message = p.decode(frame)
            kind = message["t"]
            if kind in self.requests:
                rid = p.req_id(message)
            elif p.is_int(message.get("id")):
                rid = message["id"]
            handler = self.handlers.get(kind)
            if handler is None:
                raise ProtocolError(p.E_UNKNOWN_TYPE, f"unknown message type {kind[:40]!r}")
            machine_id = message.get("m")
            if rid is not None and isinstance(machine_id, str) and machine_id:
                later = self._handler_later(handler, message, rid)
                seq = message.get("seq") if kind == "sub" else None
                if not self.hub.resolve(machine_id, later, seq if p.is_int(seq, 1) else None):
                    return  # a remote machine: once its clock is known (in arrival order)
            handler(self, message, rid)
        except ProtocolError as err:
            log.info("session %s: %s: %s", self.id, err.code, err.msg)
            self._error(err.code, err.msg, err.req_id if err.req_id is not None else rid)
        except Exception:
            log.exception("session %s: internal error", self.id)
            self._error(p.E_INTERNAL, "internal server error", rid)

    def _handler_later(
        self,
        handler: Callable[[ServerSession, dict[str, Any], int | None], None],
        message: dict[str, Any],
        rid: int,
    ) -> Callable[[], None]:
        def later() -> None:
            if self._state != _OPEN:
                return
            try:
                handler(self, message, rid)
            except ProtocolError as err:
                self._error(err.code, err.msg, err.req_id if err.req_id is not None else rid)
            except Exception:
                log.exception("session %s: internal error", self.id)
                self._error(p.E_INTERNAL, "internal server error", rid)

        return later

    def _exposed(self, message: dict[str, Any], rid: int | None) -> Exposed:
        machine_id = p.field_str(message, "m", rid)
        exposed = self.hub.lookup(machine_id)
        if exposed is None or not self.principal.policy(machine_id).read:
            raise ProtocolError(p.E_UNKNOWN_MACHINE, f"unknown machine {machine_id[:80]!r}", rid)
        return exposed

    def _visible_states(self, exposed: Exposed, states: list[str], rid: int | None) -> None:
        """Every state exists and this principal may see it (an invisible state is unknown)."""
        read_states = self.principal.policy(exposed.id).read_states
        unknown = [
            s
            for s in states
            if not exposed.has(s) or (read_states is not None and s not in read_states)
        ]
        if unknown:
            raise ProtocolError(
                p.E_UNKNOWN_STATE, f"unknown states: {' '.join(unknown)[:200]}", rid
            )

    def on_sub(self, message: dict[str, Any], rid: int | None) -> None:
        assert rid is not None
        exposed = self._exposed(message, rid)
        states = None
        if message.get("states") is not None:
            states = p.field_states(message, rid)
        old = self.subs.pop(exposed.id, None)
        if old is not None:
            exposed.unsubscribe(old)
        try:
            sub = exposed.subscribe(self, self.principal.policy(exposed.id), states)
        except ProtocolError as err:
            raise ProtocolError(err.code, err.msg, rid) from None
        seq = message.get("seq")
        if p.is_int(seq, 1) and exposed.resume(sub, seq):
            # the client's mirror is on ``seq`` of the same chain: a diff brings it up to date
            self.subs[exposed.id] = sub
            self._answer(exposed, rid, 0)
            self.hub.subscribed(self, exposed.id)
            return
        frame = p.encode(exposed.snapshot(sub, rid))
        if not self._fits(frame):
            exposed.unsubscribe(sub)
            raise ProtocolError(p.E_TOO_LARGE, "the snapshot is over the client's limit", rid)
        self.subs[exposed.id] = sub
        self._queue(frame)
        self.hub.subscribed(self, exposed.id)

    def on_unsub(self, message: dict[str, Any], rid: int | None) -> None:
        exposed = self._exposed(message, rid)
        sub = self.subs.pop(exposed.id, None)
        if sub is not None:
            exposed.unsubscribe(sub)
        self._queue(p.encode({"t": "res", "id": rid, "m": exposed.id, "r": 0}))

    def on_sync(self, message: dict[str, Any], rid: int | None) -> None:
        exposed = self._exposed(message, rid)
        sub = self.subs.get(exposed.id)
        if sub is None:
            raise ProtocolError(p.E_NOT_SUBSCRIBED, "sync needs a subscription", rid)
        exposed.advance()
        self._queue(p.encode(exposed.snapshot(sub, rid)))

    def on_mut(self, message: dict[str, Any], rid: int | None) -> None:
        assert rid is not None
        exposed = self._exposed(message, rid)
        op = message.get("op")
        if op not in p.OPS:
            raise ProtocolError(p.E_BAD_MESSAGE, f'"op" must be one of {", ".join(p.OPS)}', rid)
        states = p.field_states(message, rid)
        args = p.field_args(message, rid)
        key = p.field_key(message, rid)
        src = p.field_src(message, rid)
        err: BaseException | None = None
        if op == "add_err":
            if len(states) != 1:
                raise ProtocolError(p.E_BAD_MESSAGE, '"add_err" takes one error state', rid)
            err = RemoteError(*p.field_err(message, rid))
        self._visible_states(exposed, states, rid)
        if not self.principal.policy(exposed.id).write:
            raise ProtocolError(
                p.E_FORBIDDEN, f"{self.principal.name} may not mutate {exposed.id}", rid
            )
        if src is not None and src.client_id not in (None, self.client_id):
            raise ProtocolError(p.E_BAD_MESSAGE, '"src.cid" is not this client', rid)
        source = MutationSource(
            src.mach_id if src else "",
            src.tx_id if src else "",
            src.mach_time if src else 0,
            client_id=self.client_id,
            tab_id=src.tab_id if src else None,
            meta=src.meta if src else None,
        )
        principal = self.principal
        req = Request(
            op,
            states,
            args,
            principal.name,
            principal.policy(exposed.id),
            key=key,
            scope=(exposed.id, principal.name, self.client_id),
            source=source,
            err=err,
        )

        def done(result: Any, failed: ProtocolError | None) -> None:
            if failed is not None:
                self._error(failed.code, failed.msg, rid)
            else:
                self._answer(exposed, rid, result)

        exposed.mutate(req, done)

    def _answer(self, exposed: Exposed, rid: int, result: int) -> None:
        """The ``res`` of a mutation, carrying the diff of its machine (read your writes)."""
        sub = self.subs.get(exposed.id)
        if sub is not None:
            self.holding = sub
            try:
                exposed.flush_one(sub)
            finally:
                self.holding = None
        held, self._held = self._held, None
        res: dict[str, Any] = {"t": "res", "id": rid, "m": exposed.id, "r": result}
        if held is not None:
            res["diff"] = held
        elif sub is not None:
            res["qt"] = exposed.qt
        self._queue(p.encode(res))

    def _dry_run(self, message: dict[str, Any], rid: int | None) -> tuple[Exposed, Request]:
        exposed = self._exposed(message, rid)
        op = message.get("op")
        if op not in p.CHECK_OPS:
            ops = ", ".join(p.CHECK_OPS)
            raise ProtocolError(p.E_BAD_MESSAGE, f'"op" must be one of {ops}', rid)
        states = p.field_states(message, rid)
        args = p.field_args(message, rid)
        self._visible_states(exposed, states, rid)
        principal = self.principal
        return exposed, Request(op, states, args, principal.name, principal.policy(exposed.id))

    def _reply(self, exposed: Exposed, rid: int | None, field: str) -> Any:
        """``done`` of a dry run: its value in ``res`` as ``field``, or the error."""

        def done(value: Any, failed: ProtocolError | None) -> None:
            if failed is not None:
                self._error(failed.code, failed.msg, rid)
                return
            if field == "x":
                value = self._explanation(exposed, value)
            self._queue(p.encode({"t": "res", "id": rid, "m": exposed.id, field: value}))

        return done

    def on_check(self, message: dict[str, Any], rid: int | None) -> None:
        """A dry run (``can_add``/``can_remove``) on the server, negotiation handlers included;
        a mutation the policy would refuse is ``Canceled``."""
        exposed, req = self._dry_run(message, rid)
        exposed.check(req, self._reply(exposed, rid, "r"))

    def on_explain(self, message: dict[str, Any], rid: int | None) -> None:
        exposed, req = self._dry_run(message, rid)
        exposed.explain(req, self._reply(exposed, rid, "x"))

    def _explanation(self, exposed: Exposed, x: dict[str, Any]) -> dict[str, Any]:
        """An explanation without the states this principal cannot see."""
        policy = self.principal.policy(exposed.id)
        names = exposed.state_names()
        hidden = set(names) - set(policy.visible(names))

        def reason(text: str) -> str:
            return "a hidden state" if hidden.intersection(str(text).split()) else str(text)

        return {
            "result": x["result"],
            "target": policy.visible(x["target"]),
            "added": policy.visible(x["added"]),
            "removed": policy.visible(x["removed"]),
            "canceled_by": x["canceled_by"],
            "rejected": [
                [state, reason(why)] for state, why in x["rejected"] if state not in hidden
            ],
        }

    def on_ping(self, message: dict[str, Any], rid: int | None) -> None:
        ts = message.get("ts")
        # echo only a number JavaScript reads exactly: anything else could be deep or large
        exact = isinstance(ts, int | float) and not isinstance(ts, bool) and abs(ts) <= p.MAX_ID
        self._queue(p.encode({"t": "pong", "ts": ts if exact else None}))

    def on_pong(self, message: dict[str, Any], rid: int | None) -> None:
        return None

    def on_bye(self, message: dict[str, Any], rid: int | None) -> None:
        self._close(p.CLOSE_NORMAL, "bye")

    requests: ClassVar[frozenset[str]] = frozenset(
        {"sub", "unsub", "sync", "mut", "check", "explain"}
    )
    handlers: ClassVar[dict[str, Callable[[ServerSession, dict[str, Any], int | None], None]]] = {
        "sub": on_sub,
        "unsub": on_unsub,
        "sync": on_sync,
        "mut": on_mut,
        "check": on_check,
        "explain": on_explain,
        "ping": on_ping,
        "pong": on_pong,
        "bye": on_bye,
    }
