"""am-dbg's server: machines stream in at ``/dbg``, inspectors watch at ``/ui``, the page at ``/``.

One asyncio ``websockets`` server on one port. Plain HTTP requests get the inspector page (from
the package: it works offline), ``/api/info`` and ``/export.jsonl.gz``. An inspector connection
is told where to fetch the session as it was when it connected (``/snapshot/<token>``, once),
then gets every new line as it arrives, batched per event-loop turn; one that cannot keep up is
closed and reconnects with a fresh copy instead of growing a queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import logging
import mimetypes
import secrets
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from .. import __version__
from . import _files
from ._messages import dumps
from ._session import Session

log = logging.getLogger("asyncmachine.debugger")

MACHINES_PATH = "/dbg"
INSPECTOR_PATH = "/ui"
MAX_FRAME = 16 << 20
"""Bytes in one frame from a machine, at most."""
FRAME_LINES = 2000
"""Lines per frame to an inspector."""
SNAPSHOT_PATH = "/snapshot/"
MAX_BEHIND = 500_000
"""Lines an inspector may be behind before it is closed (it then reconnects and resyncs)."""
LOGGED_ERRORS = 5
"""Bad messages logged per connection (the rest are only counted)."""
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
LIVE_MARK = (b'<meta name="am-dbg" content="">', b'<meta name="am-dbg" content="live">')
"""The page connects to ``./ui`` when am-dbg serves it; as a static file it opens files."""
STATIC = ("index.html", "inspector.js", "inspector.css", "graph.js", "graph.css", "favicon.svg")


@dataclass(eq=False)
class _Watcher:
    """One inspector connection and the lines it has not been sent yet."""

    ws: ServerConnection
    pending: list[str] = field(default_factory=list)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    too_slow: bool = False

    def feed(self, lines: list[str]) -> None:
        self.pending.extend(lines)
        if len(self.pending) > MAX_BEHIND:
            self.too_slow = True
        self.wake.set()


class DebugServer:
    """am-dbg on ``host:port`` (port 0 picks a free one) around a ``Session``."""

    def __init__(self, session: Session | None = None) -> None:
        self.session = session or Session()
        self.host = ""
        self.port = 0
        self.machine_conns = 0
        """Machine connections open now."""
        self._ws: Server | None = None
        self._watchers: set[_Watcher] = set()
        self._snapshots: dict[str, bytes] = {}
        """The session as it was when an inspector connected, by a one-time token: fetched
        over HTTP (the browser takes it in at network speed; WebSocket frames would be paced
        by the page's main thread), while the live lines queue on the WebSocket."""

    @property
    def url(self) -> str:
        """The inspector page."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    @property
    def addr(self) -> str:
        """What machines stream to (``AM_DBG_ADDR``)."""
        return f"{self.host}:{self.port}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        if self._ws is not None:
            raise RuntimeError("am-dbg is already listening")
        self._ws = await serve(
            self._handle,
            host,
            port,
            process_request=self._http,
            max_size=MAX_FRAME,
            compression=None,
            close_timeout=1.0,
            ping_interval=20,
        )
        sock = next(iter(self._ws.sockets))
        self.host, self.port = sock.getsockname()[:2]

    async def stop(self) -> None:
        if self._ws is None:
            return
        ws, self._ws = self._ws, None
        ws.close(close_connections=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ws.wait_closed(), 2.0)

    async def __aenter__(self) -> DebugServer:
        if self._ws is None:
            await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- HTTP

    def _http(self, conn: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path == MACHINES_PATH:
            return None
        if path == INSPECTOR_PATH:
            origin = request.headers.get("Origin")
            if origin is not None and not _local_origin(origin, request.headers.get("Host", "")):
                log.warning("am-dbg: refused an inspector from origin %s", origin)
                return conn.respond(http.HTTPStatus.FORBIDDEN, "inspector origin not allowed\n")
            return None
        if path.startswith(SNAPSHOT_PATH):
            body = self._snapshots.pop(path.removeprefix(SNAPSHOT_PATH), None)
            if body is None:
                return conn.respond(http.HTTPStatus.NOT_FOUND, "no such snapshot\n")
            response = _response(200, body, "application/x-ndjson")
            response.headers["Access-Control-Allow-Origin"] = "*"  # the token is the secret
            return response
        if path == "/api/info":
            return _response(200, json.dumps(self.info()).encode(), "application/json")
        if path == "/export.jsonl.gz":
            body = _files.encode(self.session.lines())
            response = _response(200, body, "application/gzip")
            response.headers["Content-Disposition"] = 'attachment; filename="am-dbg.jsonl.gz"'
            return response
        name = "index.html" if path == "/" else path.lstrip("/")
        if name in STATIC:
            asset = resources.files(__package__).joinpath("static", name)
            if asset.is_file():
                kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
                data = asset.read_bytes()
                if name == "index.html":
                    data = data.replace(LIVE_MARK[0], LIVE_MARK[1], 1)
                return _response(200, data, kind)
        return conn.respond(http.HTTPStatus.NOT_FOUND, f"not found: {path}\n")

    def info(self) -> dict[str, Any]:
        return {
            "tool": "am-dbg",
            "version": __version__,
            "machines": len(self.session.machines),
            "max": self.session.max_transitions,
        }

    # ---- WebSocket

    async def _handle(self, ws: ServerConnection) -> None:
        path = urlsplit(ws.request.path if ws.request else "").path
        if path == INSPECTOR_PATH:
            await self._watch(ws)
        else:
            await self._receive(ws)

    async def _receive(self, ws: ServerConnection) -> None:
        peer = _peer(ws)
        conn = self.session.connect(peer)
        self.machine_conns += 1
        log.info("am-dbg: machines connected from %s", peer)
        try:
            async for frame in ws:
                text = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
                errors = self.session.receive(conn, text)
                for err in errors[: max(0, LOGGED_ERRORS - conn.rejected + len(errors))]:
                    log.warning("am-dbg: bad message from %s: %s", peer, err)
        except ConnectionClosed:
            pass
        finally:
            self.machine_conns -= 1
            self.session.disconnect(conn)
            log.info("am-dbg: %s disconnected (%d bad messages)", peer, conn.rejected)

    async def _watch(self, ws: ServerConnection) -> None:
        watcher = _Watcher(ws)
        token = secrets.token_hex(12)
        self._snapshots[token] = "\n".join(self.session.subscribe(watcher.feed)).encode()
        self._watchers.add(watcher)
        reader = asyncio.create_task(self._commands(ws))
        try:
            snapshot = SNAPSHOT_PATH.lstrip("/") + token
            await ws.send(dumps({"kind": "server", **self.info(), "snapshot": snapshot}))
            while not reader.done():
                await watcher.wake.wait()
                watcher.wake.clear()
                if watcher.too_slow:
                    await ws.close(1013, "inspector too slow: reconnect to resync")
                    break
                lines, watcher.pending = watcher.pending, []
                for i in range(0, len(lines), FRAME_LINES):
                    await ws.send("\n".join(lines[i : i + FRAME_LINES]))
        except ConnectionClosed:
            pass
        finally:
            reader.cancel()
            self._snapshots.pop(token, None)
            self.session.unsubscribe(watcher.feed)
            self._watchers.discard(watcher)

    async def _commands(self, ws: ServerConnection) -> None:
        """What an inspector asks: ``{"kind": "clear"}`` forgets disconnected machines."""
        with contextlib.suppress(ConnectionClosed):
            async for frame in ws:
                try:
                    cmd = json.loads(frame)
                except ValueError:
                    continue
                if isinstance(cmd, dict) and cmd.get("kind") == "clear":
                    gone = self.session.clear()
                    note = dumps({"kind": "cleared", "ids": gone})
                    for watcher in list(self._watchers):
                        watcher.feed([note])
        # the inspector went away: wake its sender so it ends
        for watcher in self._watchers:
            if watcher.ws is ws:
                watcher.wake.set()


def _response(status: int, body: bytes, content_type: str) -> Response:
    headers = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-cache"),
            ("X-Content-Type-Options", "nosniff"),
        ]
    )
    return Response(status, http.HTTPStatus(status).phrase, headers, body)


def _local_origin(origin: str, host: str) -> bool:
    """Pages on this machine (or served by am-dbg itself) may watch; other sites may not."""
    netloc = urlsplit(origin).netloc
    hostname = urlsplit(origin).hostname or ""
    return hostname in LOOPBACK or (bool(host) and netloc == host)


def _peer(ws: ServerConnection) -> str:
    addr = ws.remote_address
    if isinstance(addr, tuple) and len(addr) >= 2:
        return f"{addr[0]}:{addr[1]}"
    return str(addr)
