"""The asyncio adapter of the server: one ``websockets`` endpoint driving ``ServerSession``s.

All protocol decisions live in the sessions and the hub; this module moves frames, runs timers
and the auth hook, and answers plain HTTP requests (path and origin refusals, the app's own
``http`` handler). Frames go out synchronously while the socket keeps up, and through a writer
task that waits for the socket when it does not, so a slow client's backlog stays in its session
(where it is coalesced into snapshots).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from websockets.asyncio.server import Server as _WsServer
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from .._machine import Machine
from . import _protocol as p
from ._auth import Authenticate
from ._hub import Exposed, Hub
from ._idempotency import IdempotencyStore
from ._metrics import ServerMetrics
from ._server_session import ServerSession
from ._states import ServerStates

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

log = logging.getLogger("asyncmachine.rpc")

ss = ServerStates()

HttpHandler = Callable[[ServerConnection, Request], "Response | Awaitable[Response | None] | None"]

WRITE_HIGH = 64 * 1024
"""Bytes buffered in the socket above which frames wait in the session instead."""
CLOSE_WAIT = 0.5
"""Seconds a closing handshake may take before the connection is dropped."""


class _Connection:
    """One WebSocket connection and its session."""

    def __init__(self, server: Server, ws: ServerConnection) -> None:
        self.server = server
        self.ws = ws
        self.loop = asyncio.get_running_loop()
        request = ws.request
        origin = request.headers.get("Origin") if request is not None else None
        remote = ws.remote_address
        where = f"{remote[0]}:{remote[1]}" if isinstance(remote, tuple) else str(remote)
        self.session = ServerSession(server.hub, where, origin, self.loop.time())
        self.session.wake = self.wake
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._writer: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._authenticating = False
        self._closing = False

    async def run(self) -> None:
        self.arm()
        session = self.session
        loop = self.loop
        try:
            async for frame in self.ws:
                session.receive(frame, loop.time())
        except ConnectionClosed:
            pass
        finally:
            if self._timer is not None:
                self._timer.cancel()
            for task in [*self._tasks, *([self._writer] if self._writer else [])]:
                task.cancel()
            session.connection_lost()

    def wake(self) -> None:
        session = self.session
        if session.pending_auth is not None and not self._authenticating:
            self._authenticating = True
            self._spawn(self._authenticate(*session.pending_auth))
        self._send()
        if session.close_request is not None and not self._closing:
            self._closing = True
            if session.close_request.abort:
                self.ws.transport.abort()
            else:
                self._spawn(self._close())

    def _send(self) -> None:
        if self._writer is not None:
            return  # the writer sends in order, as the socket drains
        ws = self.ws
        transport = ws.transport
        if transport.get_write_buffer_size() > WRITE_HIGH:
            self._writer = self.loop.create_task(self._write_slowly())
            return
        for frame in self.session.data_to_send():
            broadcast((ws,), frame)

    async def _write_slowly(self) -> None:
        session = self.session
        try:
            while frames := session.data_to_send(1):
                await self.ws.send(frames[0])  # waits while the socket's buffer is full
        except ConnectionClosed:
            return
        finally:
            self._writer = None

    async def _authenticate(self, token: str | None, info: Any) -> None:
        principal = await self.server.hub.authenticate(token, info)
        self.session.authenticated(principal, self.loop.time())
        self.arm()

    async def _close(self) -> None:
        """Send what is queued, then close; drop the connection if the peer does not answer
        (a flooding peer's close reply sits behind frames the server will never read)."""
        request = self.session.close_request
        assert request is not None
        try:
            async with asyncio.timeout(CLOSE_WAIT):
                if self._writer is not None:
                    await asyncio.wait([self._writer])
                await self.ws.close(request.code, request.reason)
        except TimeoutError:
            self.ws.transport.abort()

    def arm(self) -> None:
        """Schedule the session's next deadline (the heartbeat, the handshake)."""
        deadline = self.session.next_deadline()
        if deadline is None:
            return
        if self._timer is None or deadline < self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = deadline
            self._timer = self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.session.timer(self.loop.time())
        self.arm()

    def _spawn(self, coro: Any) -> None:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class Server:
    """Exposes local machines over one WebSocket endpoint.

    ``authenticate(token, conn)`` returns a :class:`Principal` (or ``None`` to refuse); without it
    every client is ``anonymous`` with read and write access. ``allowed_origins`` restricts the
    ``Origin`` of browser connections (refused with HTTP 403, logged). ``path`` restricts the
    endpoint's path (others get HTTP 404). ``idempotency`` is where mutation keys live (default:
    with each exposed machine; ``SqliteIdempotency`` survives restarts). ``http`` answers plain
    HTTP requests on the same port first (e.g. the demo's static files). ``metrics=True`` serves
    Prometheus metrics of the served machines at ``GET /metrics`` on the same port (needs
    ``prometheus-client``). ``server.mach`` is the server's own machine (:class:`ServerStates`).
    ``nats`` (a NATS URL, ``nats_options`` for ``nats.connect``) makes it a gateway: it also
    serves every machine hosted on that NATS network (``rpc.nats.expose``), by id.
    """

    def __init__(
        self,
        machines: Iterable[Machine] = (),
        *,
        authenticate: Authenticate | None = None,
        allowed_origins: Sequence[str] | None = None,
        path: str | None = None,
        heartbeat: float = 15.0,
        handshake_timeout: float = 5.0,
        max_frame: int = p.MAX_FRAME,
        outbox_limit: int = 1000,
        flood_rate: float = 5000.0,
        flood_burst: int = 10000,
        idempotency: IdempotencyStore | None = None,
        http: HttpHandler | None = None,
        server_id: str | None = None,
        metrics: bool = False,
        nats: str | None = None,
        nats_options: Mapping[str, Any] | None = None,
    ) -> None:
        if max_frame < p.MIN_FRAME:
            raise ValueError(f"max_frame must be at least {p.MIN_FRAME} bytes")
        self.hub = Hub(
            schedule=self._schedule,
            authenticate=authenticate,
            idempotency=idempotency,
            heartbeat=heartbeat,
            handshake_timeout=handshake_timeout,
            max_frame=max_frame,
            outbox_limit=outbox_limit,
            flood_rate=flood_rate,
            flood_burst=flood_burst,
            server_id=server_id,
        )
        self.allowed_origins = None if allowed_origins is None else list(allowed_origins)
        self.path = path
        self._http = http
        self._metrics = ServerMetrics() if metrics else None
        self.nats = nats
        self._nats_options = dict(nats_options or {})
        self._gateway: Any = None
        self._ws: _WsServer | None = None
        self._conns: dict[ServerSession, _Connection] = {}
        self.host = ""
        self.port = 0
        for mach in machines:
            self.expose(mach)

    # ------------------------------------------------------------ the hub's surface

    @property
    def mach(self) -> Machine:
        """The server's own machine: ``RpcReady``, ``ClientConnected``, ``ClientSubscribed``..."""
        return self.hub.mach

    @property
    def exposed(self) -> dict[str, Exposed]:
        return self.hub.exposed

    @property
    def sessions(self) -> set[ServerSession]:
        # the hub knows its connections only as peers; this adapter only ever adds sessions
        return cast("set[ServerSession]", self.hub.sessions)

    @property
    def heartbeat(self) -> float:
        return self.hub.heartbeat

    @property
    def max_frame(self) -> int:
        return self.hub.max_frame

    @property
    def outbox_limit(self) -> int:
        return self.hub.outbox_limit

    def expose(self, mach: Machine, machine_id: str | None = None) -> str:
        """Make ``mach`` reachable as ``machine_id`` (default: its id)."""
        machine_id = self.hub.expose(mach, machine_id)
        if self._metrics is not None and self._ws is not None:
            self._metrics.track(mach)
        return machine_id

    def unexpose(self, machine_id: str) -> None:
        exposed = self.hub.exposed.get(machine_id)
        self.hub.unexpose(machine_id)
        if self._metrics is not None and self._ws is not None and exposed is not None:
            self._metrics.untrack(exposed.mach)

    @property
    def metrics_registry(self) -> CollectorRegistry | None:
        """With ``metrics=True``, the registry ``/metrics`` shows (e.g. to push it)."""
        return None if self._metrics is None else self._metrics.registry

    def send_payload(
        self,
        name: str,
        data: Any,
        *,
        machine: str | None = None,
        client: str | None = None,
        session: str | None = None,
    ) -> int:
        """Push ``data`` to the clients subscribed to ``machine``, with client id ``client``, with
        session id ``session`` (all that are given), or to every client; returns how many. It
        follows every clock change made before it. Data JSON cannot carry exactly (NaN,
        Infinity, objects) raises ``ValueError``/``TypeError`` here."""
        return self.hub.send_payload(name, data, machine=machine, client=client, session=session)

    def disconnect(
        self, *, client: str | None = None, session: str | None = None, reason: str = "revoked"
    ) -> int:
        """Close the connections with client id ``client`` and/or session id ``session``
        (close code 4003, after the frames already queued for them); returns how many. Pair it
        with an ``authenticate`` hook that no longer admits them, or they reconnect."""
        return self.hub.disconnect(client=client, session=session, reason=reason)

    def _schedule(self, fn: Callable[[], None]) -> None:
        try:
            asyncio.get_running_loop().call_soon(fn)
        except RuntimeError:  # a machine changed outside any loop: push now
            fn()

    # ------------------------------------------------------------ lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on ``host:port`` (port 0 picks a free one: see ``port`` and ``url``)."""
        if self._ws is not None:
            raise RuntimeError("server already started")
        self.mach.add1(ss.Start)
        try:
            if self.nats is not None:
                from .nats._gateway import Gateway  # nats-py only for gateways

                self._gateway = Gateway(self.hub, self.nats, self._nats_options)
                await self._gateway.start()
            self._ws = await serve(
                self._handler,
                host,
                port,
                max_size=self.hub.max_frame,
                ping_interval=None,
                process_request=self._process_request,
                compression=None,
                close_timeout=CLOSE_WAIT,
                open_timeout=self.hub.handshake_timeout,
            )
        except BaseException as err:
            if self._gateway is not None:
                await self._gateway.stop()
                self._gateway = None
            self.mach.remove1(ss.Start)
            if isinstance(err, Exception):
                self.mach.add_err(err)
            raise
        sock = next(iter(self._ws.sockets))
        self.host, self.port = sock.getsockname()[:2]
        if self._metrics is not None:
            for mach in [self.mach, *(exposed.mach for exposed in self.exposed.values())]:
                self._metrics.track(mach)
        self.mach.add1(ss.RpcReady)

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}{self.path or ''}"

    async def stop(self) -> None:
        """Close every connection and stop listening (exposed machines stay exposed, and the
        server no longer watches them)."""
        if self._ws is None:
            return
        ws, self._ws = self._ws, None
        if self._metrics is not None:
            self._metrics.close()
        self.mach.remove1(ss.Start)
        ws.close(close_connections=True)
        # a browser's idle spare connection sits in its opening handshake until open_timeout
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ws.wait_closed(), 2.0)
        for conn in list(self._conns.values()):
            conn.ws.transport.abort()
        if self._gateway is not None:
            gateway, self._gateway = self._gateway, None
            await gateway.stop()

    async def __aenter__(self) -> Server:
        if self._ws is None:
            await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _handler(self, ws: ServerConnection) -> None:
        conn = _Connection(self, ws)
        self._conns[conn.session] = conn
        try:
            await conn.run()
        finally:
            del self._conns[conn.session]

    async def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        """Plain HTTP first: the app's handler, then the path and origin checks. Refusals carry
        ``Access-Control-Allow-Origin: *`` so a browser page can read why its socket failed."""
        if self._http is not None:
            answer = self._http(conn, request)
            if inspect.isawaitable(answer):
                answer = await answer
            if answer is not None:
                return answer
        if self._metrics is not None:
            metrics = self._metrics.respond(request)
            if metrics is not None:
                return metrics
        path = urlsplit(request.path).path
        if self.path is not None and path != self.path:
            return _refusal(conn, HTTPStatus.NOT_FOUND, f"no RPC endpoint at {path[:100]}")
        origin = request.headers.get("Origin")
        if (
            origin is not None
            and self.allowed_origins is not None
            and origin not in self.allowed_origins
        ):
            remote = conn.remote_address
            log.warning("refused origin %s from %s", origin, remote[0] if remote else "?")
            return _refusal(conn, HTTPStatus.FORBIDDEN, f"origin {origin[:100]} is not allowed")
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return _refusal(conn, HTTPStatus.UPGRADE_REQUIRED, "this is a WebSocket endpoint")
        return None


def _refusal(conn: ServerConnection, status: HTTPStatus, text: str) -> Response:
    response = conn.respond(status, text + "\n")
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response
