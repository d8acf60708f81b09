"""The RPC server: local machines exposed by id over one asyncio WebSocket endpoint.

Per connection: a versioned handshake, the auth hook, subscriptions with clock diffs chained by a
sequence number, mutations, payloads and heartbeats. Every frame to a client leaves through one
ordered outbox; a client that falls behind gets a fresh snapshot instead of an ever-growing queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, ClassVar

from websockets.asyncio.server import Server as _WsServer
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from .._machine import Machine
from .._schema import schema_to_dict
from .._tracer import Tracer
from .._transition import Transition
from . import _protocol as p
from ._auth import ANONYMOUS, Authenticate, ConnInfo, Principal

log = logging.getLogger("asyncmachine.rpc")

HttpHandler = Callable[[ServerConnection, Request], "Response | Awaitable[Response | None] | None"]


class _Exposed(Tracer):
    """A machine the server exposes, and the subscriptions watching it."""

    def __init__(self, server: Server, mach: Machine, machine_id: str) -> None:
        self.server = server
        self.mach = mach
        self.id = machine_id
        self.subs: set[_Subscription] = set()
        self.idempotent: OrderedDict[tuple[str, str, str], tuple[str, tuple[str, ...], int]] = (
            OrderedDict()
        )
        """(principal, client id, key) -> (op, states, result) of mutations sent with a key."""
        mach.bind_tracer(self)

    def transition_end(self, tx: Transition) -> None:
        if tx.mutation.is_check:
            return
        for sub in self.subs:
            sub.session.mark_dirty(sub)

    def machine_dispose(self, mach_id: str) -> None:
        self.server._forget(self)

    def snapshot(self) -> tuple[list[str], list[int], int, int]:
        mach = self.mach
        return mach.state_names(), list(mach.time()), mach.queue_tick(), mach.machine_tick()


class _Subscription:
    """One session watching one machine: the last clock it was sent, and the chain position."""

    __slots__ = ("base_qt", "base_time", "dirty", "exposed", "seq", "session")

    def __init__(self, session: _Session, exposed: _Exposed) -> None:
        self.session = session
        self.exposed = exposed
        self.seq = 0
        self.base_time: list[int] = []
        self.base_qt = 0
        self.dirty = False

    def snap(self, rid: int | None = None) -> dict[str, Any]:
        names, time_, qt, mt = self.exposed.snapshot()
        self.seq += 1
        self.base_time, self.base_qt, self.dirty = time_, qt, False
        message: dict[str, Any] = {
            "t": "snap",
            "m": self.exposed.id,
            "seq": self.seq,
            "names": names,
            "schema": schema_to_dict(self.exposed.mach.schema),
            "time": time_,
            "qt": qt,
            "mt": mt,
        }
        if rid is not None:
            message["id"] = rid
        return message

    def diff(self) -> dict[str, Any] | None:
        """The changes since the last frame, advancing the chain; None when nothing changed."""
        self.dirty = False
        mach = self.exposed.mach
        now, qt = list(mach.time()), mach.queue_tick()
        if len(now) != len(self.base_time):
            return self.snap()  # the schema grew
        changes = p.diff(self.base_time, now)
        if not changes and qt == self.base_qt:
            return None
        base = self.seq
        self.seq += 1
        self.base_time, self.base_qt = now, qt
        return {
            "t": "diff",
            "m": self.exposed.id,
            "seq": self.seq,
            "base": base,
            "d": changes,
            "qt": qt,
        }


class _Session:
    """One client connection."""

    def __init__(self, server: Server, ws: ServerConnection) -> None:
        self.server = server
        self.ws = ws
        self.id = "s-" + secrets.token_hex(6)
        self.client_id = ""
        self.principal: Principal = ANONYMOUS
        self.subs: dict[str, _Subscription] = {}
        self.outbox: deque[tuple[str, str]] = deque()
        """(kind, frame): kind "diff" frames may be dropped in favour of a snapshot."""
        self.wakeup = asyncio.Event()
        self.flush_scheduled = False
        self.last_seen = time.monotonic()
        self.tokens = float(server.flood_burst)
        self.tokens_at = time.monotonic()
        self.closing = False
        self.tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------ sending

    def send(self, message: dict[str, Any], kind: str = "msg") -> None:
        """Queue a frame. ``kind`` "diff" and "resync" frames are replaced by a fresh snapshot
        when the client falls behind; a client still behind after that is disconnected."""
        if self.closing:
            return
        if len(self.outbox) >= self.server.outbox_limit:
            self._resync()
            if kind in ("diff", "resync"):
                return  # the snapshot just queued covers it
            if len(self.outbox) >= self.server.outbox_limit:
                log.warning("session %s: outbox full after a resync; closing", self.id)
                self.closing = True
                self.background(self.ws.close(p.CLOSE_POLICY, "too slow"))
                return
        self.outbox.append((kind, p.encode(message)))
        self.wakeup.set()

    def _resync(self) -> None:
        """A slow client: drop its queued diffs and snapshots, queue one fresh snapshot each."""
        self.outbox = deque(item for item in self.outbox if item[0] not in ("diff", "resync"))
        log.info("session %s is slow: resyncing %d subscriptions", self.id, len(self.subs))
        for sub in self.subs.values():
            self.outbox.append(("resync", p.encode(sub.snap())))

    def background(self, coro: Any) -> None:
        """Run a coroutine tied to this session (kept referenced until it ends)."""
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def error(self, code: str, msg: str, rid: int | None = None, m: str | None = None) -> None:
        message: dict[str, Any] = {"t": "err", "code": code, "msg": msg}
        if rid is not None:
            message["id"] = rid
        if m is not None:
            message["m"] = m
        self.send(message)

    def mark_dirty(self, sub: _Subscription) -> None:
        sub.dirty = True
        if not self.flush_scheduled:
            self.flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Send one coalesced diff per changed subscription."""
        self.flush_scheduled = False
        for sub in self.subs.values():
            if sub.dirty:
                message = sub.diff()
                if message is not None:
                    self.send(message, "resync" if message["t"] == "snap" else "diff")

    async def writer(self) -> None:
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            while self.outbox:
                _, frame = self.outbox.popleft()
                await self.ws.send(frame)

    async def heartbeat(self) -> None:
        every = self.server.heartbeat
        while True:
            await asyncio.sleep(every)
            if time.monotonic() - self.last_seen > 2 * every:
                log.info("session %s timed out", self.id)
                await self.ws.close(p.CLOSE_TIMEOUT, "heartbeat timeout")
                return
            self.send({"t": "ping", "ts": int(time.time() * 1000)})

    # ------------------------------------------------------------ receiving

    async def run(self) -> None:
        if not await self.handshake():
            return
        writer = asyncio.create_task(self.writer())
        beat = asyncio.create_task(self.heartbeat())
        try:
            async for frame in self.ws:
                self.last_seen = time.monotonic()
                if not self.take_token():
                    log.warning("session %s flooded; closing", self.id)
                    self.error(p.E_FLOOD, "too many messages")
                    await self.drain()
                    await self.close_now(p.CLOSE_POLICY, "flood")
                    return
                self.handle(frame)
        finally:
            self.closing = True
            writer.cancel()
            beat.cancel()
            await asyncio.gather(writer, beat, return_exceptions=True)

    async def close_now(self, code: int, reason: str) -> None:
        """Send a close frame, then drop the connection if the peer does not answer at once: a
        flooding peer's close reply sits behind frames the server will never read."""
        try:
            await asyncio.wait_for(self.ws.close(code, reason), 0.2)
        except TimeoutError:
            self.ws.transport.abort()

    async def drain(self) -> None:
        while self.outbox:
            _, frame = self.outbox.popleft()
            await self.ws.send(frame)

    def take_token(self) -> bool:
        """Token bucket: ``flood_rate`` messages a second, bursts up to ``flood_burst``."""
        now = time.monotonic()
        server = self.server
        self.tokens = min(
            server.flood_burst, self.tokens + (now - self.tokens_at) * server.flood_rate
        )
        self.tokens_at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    async def handshake(self) -> bool:
        server = self.server
        try:
            frame = await asyncio.wait_for(self.ws.recv(), server.handshake_timeout)
            hello = p.decode(frame)
            if hello["t"] != "hello":
                raise p.ProtocolError(p.E_BAD_MESSAGE, 'the first message must be "hello"')
            version = hello.get("v")
            if type(version) is not int or version != p.VERSION:
                raise p.ProtocolError(
                    p.E_VERSION, f"unsupported protocol version {hello.get('v')!r}"
                )
        except (TimeoutError, p.ProtocolError) as err:
            code = err.code if isinstance(err, p.ProtocolError) else p.E_BAD_MESSAGE
            msg = err.msg if isinstance(err, p.ProtocolError) else "no hello in time"
            log.info("handshake failed from %s: %s", self.ws.remote_address, msg)
            await self.ws.send(p.encode({"t": "err", "code": code, "msg": msg}))
            await self.ws.close(p.CLOSE_HANDSHAKE, msg[:100])
            return False
        cid = hello.get("cid")
        self.client_id = cid if isinstance(cid, str) and 0 < len(cid) <= 128 else self.id
        token = hello.get("token")
        request = self.ws.request
        origin = request.headers.get("Origin") if request is not None else None
        remote = self.ws.remote_address
        where = f"{remote[0]}:{remote[1]}" if isinstance(remote, tuple) else str(remote)
        info = ConnInfo(where, origin, self.client_id)
        principal = await server.authenticate(token if isinstance(token, str) else None, info)
        if principal is None:
            log.warning("auth refused for client %s from %s", self.client_id, info.remote)
            await self.ws.send(
                p.encode({"t": "err", "code": p.E_AUTH, "msg": "authentication refused"})
            )
            await self.ws.close(p.CLOSE_AUTH, "authentication refused")
            return False
        self.principal = principal
        visible = [m for m in server.exposed if principal.policy(m).read]
        welcome = {
            "t": "welcome",
            "v": p.VERSION,
            "sid": self.id,
            "hb_ms": int(server.heartbeat * 1000),
            "machines": visible,
        }
        await self.ws.send(p.encode(welcome))
        return True

    def handle(self, frame: str | bytes) -> None:
        """One message; a bad one gets an ``err`` and changes nothing."""
        rid: int | None = None
        try:
            message = p.decode(frame)
            kind = message["t"]
            if kind in ("sub", "unsub", "mut", "sync"):
                rid = p.req_id(message)
            elif isinstance(message.get("id"), int) and not isinstance(message.get("id"), bool):
                rid = message["id"]
            handler = self.handlers.get(kind)
            if handler is None:
                raise p.ProtocolError(p.E_UNKNOWN_TYPE, f"unknown message type {kind[:40]!r}")
            handler(self, message, rid)
        except p.ProtocolError as err:
            log.info("session %s: %s: %s", self.id, err.code, err.msg)
            self.error(err.code, err.msg, err.req_id if err.req_id is not None else rid)
        except Exception:
            log.exception("session %s: internal error", self.id)
            self.error(p.E_INTERNAL, "internal server error", rid)

    def _exposed(self, message: dict[str, Any], rid: int | None) -> _Exposed:
        machine_id = p.field_str(message, "m", rid)
        exposed = self.server.exposed.get(machine_id)
        policy = self.principal.policy(machine_id)
        if exposed is None or not policy.read:
            raise p.ProtocolError(p.E_UNKNOWN_MACHINE, f"unknown machine {machine_id[:80]!r}", rid)
        return exposed

    def on_sub(self, message: dict[str, Any], rid: int | None) -> None:
        exposed = self._exposed(message, rid)
        sub = self.subs.get(exposed.id)
        if sub is None:
            sub = self.subs[exposed.id] = _Subscription(self, exposed)
            exposed.subs.add(sub)
        self.send(sub.snap(rid), "snap")

    def on_unsub(self, message: dict[str, Any], rid: int | None) -> None:
        exposed = self._exposed(message, rid)
        sub = self.subs.pop(exposed.id, None)
        if sub is not None:
            exposed.subs.discard(sub)
        self.send({"t": "res", "id": rid, "m": exposed.id, "r": 0})

    def on_sync(self, message: dict[str, Any], rid: int | None) -> None:
        exposed = self._exposed(message, rid)
        sub = self.subs.get(exposed.id)
        if sub is None:
            raise p.ProtocolError(p.E_NOT_SUBSCRIBED, "sync needs a subscription", rid)
        self.send(sub.snap(rid), "snap")

    def on_mut(self, message: dict[str, Any], rid: int | None) -> None:
        exposed = self._exposed(message, rid)
        op = message.get("op")
        if op not in p.OPS:
            raise p.ProtocolError(p.E_BAD_MESSAGE, f'"op" must be one of {", ".join(p.OPS)}', rid)
        states = p.field_states(message, rid)
        args = p.field_args(message, rid)
        key = message.get("key")
        if key is not None and (not isinstance(key, str) or not 0 < len(key) <= 128):
            raise p.ProtocolError(p.E_BAD_MESSAGE, '"key" must be a short string', rid)
        mach = exposed.mach
        unknown = [s for s in states if not mach.has1(s)]
        if unknown:
            raise p.ProtocolError(
                p.E_UNKNOWN_STATE, f"unknown states: {' '.join(unknown)[:200]}", rid
            )
        if not self.principal.policy(exposed.id).may_write(op, states, mach.active_states()):
            raise p.ProtocolError(p.E_FORBIDDEN, f"{self.principal.name} may not mutate that", rid)
        cache_key = (self.principal.name, self.client_id, key) if key is not None else None
        cached = exposed.idempotent.get(cache_key) if cache_key is not None else None
        if cached is not None:
            if cached[:2] != (op, tuple(states)):
                raise p.ProtocolError(p.E_BAD_MESSAGE, "key already used for another mutation", rid)
            result = cached[2]
        else:
            result = int(getattr(mach, op)(states, args))
            if cache_key is not None:
                exposed.idempotent[cache_key] = (op, tuple(states), result)
                if len(exposed.idempotent) > self.server.idempotency_cache:
                    exposed.idempotent.popitem(last=False)
        # the diff goes out before the result, so the client reads its own write
        sub = self.subs.get(exposed.id)
        if sub is not None and sub.dirty:
            diff = sub.diff()
            if diff is not None:
                self.send(diff, "diff")
        self.send({"t": "res", "id": rid, "m": exposed.id, "r": result})

    def on_ping(self, message: dict[str, Any], rid: int | None) -> None:
        ts = message.get("ts")
        # echo only a number: anything else could be arbitrarily deep or large
        self.send({"t": "pong", "ts": ts if isinstance(ts, int | float) else None})

    def on_pong(self, message: dict[str, Any], rid: int | None) -> None:
        return None

    def on_bye(self, message: dict[str, Any], rid: int | None) -> None:
        self.closing = True
        self.background(self.ws.close(p.CLOSE_NORMAL, "bye"))

    handlers: ClassVar[dict[str, Callable[[_Session, dict[str, Any], int | None], None]]] = {
        "sub": on_sub,
        "unsub": on_unsub,
        "sync": on_sync,
        "mut": on_mut,
        "ping": on_ping,
        "pong": on_pong,
        "bye": on_bye,
    }

    def close_subs(self) -> None:
        for sub in self.subs.values():
            sub.exposed.subs.discard(sub)
        self.subs.clear()


class Server:
    """Exposes local machines over one WebSocket endpoint.

    ``authenticate(token, conn)`` returns a :class:`Principal` (or ``None`` to refuse); without it
    every client is ``anonymous`` with read and write access. ``allowed_origins`` restricts the
    ``Origin`` of browser connections. ``http`` answers plain HTTP requests on the same port
    (e.g. the demo's static files).
    """

    def __init__(
        self,
        machines: Iterable[Machine] = (),
        *,
        authenticate: Authenticate | None = None,
        allowed_origins: Sequence[str] | None = None,
        heartbeat: float = 15.0,
        handshake_timeout: float = 5.0,
        max_frame: int = p.MAX_FRAME,
        outbox_limit: int = 1000,
        flood_rate: float = 5000.0,
        flood_burst: int = 10000,
        idempotency_cache: int = 4096,
        http: HttpHandler | None = None,
    ) -> None:
        self.exposed: dict[str, _Exposed] = {}
        self._authenticate = authenticate
        self.allowed_origins = allowed_origins
        self.heartbeat = heartbeat
        self.handshake_timeout = handshake_timeout
        self.max_frame = max_frame
        self.outbox_limit = outbox_limit
        self.flood_rate = flood_rate
        self.flood_burst = flood_burst
        self.idempotency_cache = idempotency_cache
        self._http = http
        self._ws: _WsServer | None = None
        self.sessions: set[_Session] = set()
        self.host = ""
        self.port = 0
        for mach in machines:
            self.expose(mach)

    # ------------------------------------------------------------ machines

    def expose(self, mach: Machine, machine_id: str | None = None) -> str:
        """Make ``mach`` reachable as ``machine_id`` (default: its id)."""
        machine_id = machine_id or mach.id
        if machine_id in self.exposed:
            raise ValueError(f"machine id {machine_id!r} is already exposed")
        self.exposed[machine_id] = _Exposed(self, mach, machine_id)
        return machine_id

    def unexpose(self, machine_id: str) -> None:
        exposed = self.exposed.get(machine_id)
        if exposed is None:
            raise KeyError(machine_id)
        self._forget(exposed)
        if not exposed.mach.is_disposed:
            exposed.mach.detach_tracer(exposed)

    def _forget(self, exposed: _Exposed) -> None:
        self.exposed.pop(exposed.id, None)
        for sub in list(exposed.subs):
            sub.session.subs.pop(exposed.id, None)
            sub.session.error(p.E_UNKNOWN_MACHINE, "machine is gone", m=exposed.id)
        exposed.subs.clear()

    # ------------------------------------------------------------ payloads

    def send_payload(
        self, name: str, data: Any, *, machine: str | None = None, client: str | None = None
    ) -> int:
        """Push ``data`` to clients: those subscribed to ``machine``, or the client ``client``,
        or every session. Returns how many sessions it was queued for."""
        message: dict[str, Any] = {"t": "payload", "name": name, "data": data}
        if machine is not None:
            message["m"] = machine
        p.encode(message)  # fail here, not in a session, when data is not JSON
        count = 0
        for session in list(self.sessions):
            if machine is not None and machine not in session.subs:
                continue
            if client is not None and session.client_id != client:
                continue
            session.send(message)
            count += 1
        return count

    # ------------------------------------------------------------ lifecycle

    async def authenticate(self, token: str | None, info: ConnInfo) -> Principal | None:
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

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on ``host:port`` (port 0 picks a free one: see ``port`` and ``url``)."""
        if self._ws is not None:
            raise RuntimeError("server already started")
        origins: list[Any] | None = None
        if self.allowed_origins is not None:
            origins = [*self.allowed_origins, None]  # None: non-browser clients send no Origin
        self._ws = await serve(
            self._handler,
            host,
            port,
            origins=origins,
            max_size=self.max_frame,
            ping_interval=None,
            process_request=self._http,
            compression=None,
            close_timeout=1.0,  # a peer that stopped reading (a flood) must not hold a close
            open_timeout=self.handshake_timeout,
        )
        sock = next(iter(self._ws.sockets))
        self.host, self.port = sock.getsockname()[:2]

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    async def stop(self) -> None:
        """Close every connection and stop listening (exposed machines stay exposed)."""
        if self._ws is None:
            return
        ws, self._ws = self._ws, None
        ws.close(close_connections=True)
        # a browser's idle spare connection sits in its opening handshake until open_timeout
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ws.wait_closed(), 2.0)

    async def __aenter__(self) -> Server:
        if self._ws is None:
            await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _handler(self, ws: ServerConnection) -> None:
        session = _Session(self, ws)
        self.sessions.add(session)
        try:
            await session.run()
        except ConnectionClosed:
            pass
        finally:
            session.closing = True
            session.close_subs()
            self.sessions.discard(session)
