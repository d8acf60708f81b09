"""The am-dbg stream, I/O half: one WebSocket per am-dbg address, fed from a shared outbox.

A sender task takes what the tracers put in the outbox and sends it in batches (JSON lines, one
frame per batch). It connects lazily, from the first hook that runs inside an event loop, and
reconnects with a capped backoff; while am-dbg is away the outbox keeps the newest records and
counts the ones it drops. A new connection starts with a ``hello`` (drops so far) and the schema
of every machine with its exact clock, so am-dbg can restart at any time.

CPython uses the ``websockets`` client; Pyodide the page's (or Node's) ``WebSocket``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from ._debug import (
    DEFAULT_OUTBOX,
    PROTOCOL_VERSION,
    DebugTracer,
    Message,
    Outbox,
    encode,
    process_info,
)
from ._recording import machine_created

if TYPE_CHECKING:
    from .._machine import Machine

log = logging.getLogger("asyncmachine.debug")

DEFAULT_ADDR = "127.0.0.1:6831"
ENV_ADDR = "AM_DBG_ADDR"
"""``HOST:PORT`` (or a ``ws://`` URL) of a running am-dbg; ``1`` means the default address."""
FRAME_MESSAGES = 1000
"""Messages per WebSocket frame, at most."""
RETRY_MIN, RETRY_MAX = 0.05, 2.0
"""Reconnect backoff in seconds: doubles after each failed attempt, up to the maximum."""
CONNECT_TIMEOUT = 5.0
MAX_BUFFERED = 1 << 20
"""Bytes a browser WebSocket may hold unsent before the sender waits (Pyodide)."""


def dbg_url(addr: str) -> str:
    """``HOST:PORT``, ``1`` or a ``ws://``/``wss://`` URL → the URL machines stream to."""
    addr = addr.strip()
    if addr == "1":
        addr = DEFAULT_ADDR
    if addr.startswith(("ws://", "wss://")):
        rest = addr.split("://", 1)[1]
        if not rest or rest.startswith("/"):
            raise ValueError(f"am-dbg address {addr!r} has no host")
        return addr if "/" in rest else addr + "/dbg"
    host, sep, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"am-dbg address must be HOST:PORT or a ws:// URL, got {addr!r}")
    return f"ws://{host}:{port}/dbg"


class Connection(Protocol):
    async def send(self, frame: str) -> None: ...

    async def close(self) -> None: ...


Connector = Callable[[str], Awaitable[Connection]]


class _Websockets:
    """CPython: a ``websockets`` client connection (the stream only sends)."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws

    async def send(self, frame: str) -> None:
        await self._ws.send(frame)

    async def close(self) -> None:
        await self._ws.close()


async def websockets_connect(url: str) -> Connection:
    from websockets.asyncio.client import connect

    ws = await asyncio.wait_for(
        connect(url, compression=None, proxy=None, open_timeout=CONNECT_TIMEOUT), CONNECT_TIMEOUT
    )
    return _Websockets(ws)


class _JsWebSocket:
    """Pyodide: the JavaScript ``WebSocket``; its listeners are proxies destroyed on close."""

    def __init__(self, url: str) -> None:
        import js
        from pyodide.ffi import create_proxy

        self._opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._closed = False
        self._ws = js.WebSocket.new(url)
        self._listeners = {
            "open": create_proxy(self._on_open),
            "close": create_proxy(self._on_close),
            "error": create_proxy(self._on_error),
        }
        for name, proxy in self._listeners.items():
            self._ws.addEventListener(name, proxy)

    def _on_open(self, event: Any) -> None:
        if not self._opened.done():
            self._opened.set_result(None)

    def _on_error(self, event: Any) -> None:
        if not self._opened.done():
            self._opened.set_exception(ConnectionError(f"cannot connect to {self._ws.url}"))

    def _on_close(self, event: Any) -> None:
        self._closed = True
        if not self._opened.done():
            self._opened.set_exception(ConnectionError(f"cannot connect to {self._ws.url}"))
        for name, proxy in self._listeners.items():
            self._ws.removeEventListener(name, proxy)
            proxy.destroy()
        self._listeners = {}

    async def opened(self) -> _JsWebSocket:
        await asyncio.wait_for(self._opened, CONNECT_TIMEOUT)
        return self

    async def send(self, frame: str) -> None:
        while not self._closed and self._ws.bufferedAmount > MAX_BUFFERED:
            await asyncio.sleep(0.02)  # the browser's socket drains on its own; no event for it
        if self._closed or self._ws.readyState != 1:
            raise ConnectionError("am-dbg connection closed")
        self._ws.send(frame)

    async def close(self) -> None:
        if self._ws.readyState < 2:
            self._ws.close()


async def js_connect(url: str) -> Connection:
    return await _JsWebSocket(url).opened()


def default_connector() -> Connector:
    return js_connect if sys.platform == "emscripten" else websockets_connect


class Stream:
    """One am-dbg address: the outbox its tracers fill and the task that sends it."""

    def __init__(
        self,
        url: str,
        *,
        outbox_limit: int = DEFAULT_OUTBOX,
        connect: Connector | None = None,
        tab_id: str | None = None,
    ) -> None:
        self.url = url
        self.outbox = Outbox(outbox_limit)
        self.outbox.on_ready = self._wake
        self.proc = process_info(tab_id)
        self.connected = False
        self.connections = 0
        """Successful connections so far (1 after the first, more after reconnects)."""
        self._connect = connect or default_connector()
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None
        self._progress: asyncio.Condition | None = None
        self._idle = False
        self._warned = False

    # ---- called from hooks: cheap, never blocks

    def _wake(self) -> None:
        ready = self._ready
        task = self._task
        if ready is not None and task is not None and not task.done():
            ready.set()
        else:
            self.start()

    def start(self) -> bool:
        """Start the sender on the running event loop; False when there is none (yet)."""
        task = self._task
        if task is not None and not task.done():
            return True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.outbox.wanted = True  # retry from the next hook
            return False
        self.outbox.wanted = False
        self._ready = asyncio.Event()
        self._ready.set()
        self._progress = asyncio.Condition()
        self._idle = False
        self._task = loop.create_task(self._run(), name=f"am-dbg stream {self.url}")
        return True

    # ---- the sender

    async def _run(self) -> None:
        delay = RETRY_MIN
        while True:
            try:
                conn = await self._connect(self.url)
            except Exception as err:  # refused, timed out, or a failed handshake (HTTP 404)
                self._unreachable(err)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                continue
            delay = RETRY_MIN
            self.connected = True
            self.connections += 1
            if self._warned:
                log.info("am-dbg: connected to %s", self.url)
            self._warned = False
            try:
                await self._send_all(conn)
            except Exception as err:  # OSError, websockets.ConnectionClosed and the like
                log.debug("am-dbg: connection to %s lost: %r", self.url, err)
            finally:
                self.connected = False
                self._idle = False
                with contextlib.suppress(Exception):
                    await conn.close()

    def _unreachable(self, err: BaseException) -> None:
        if not self._warned:
            self._warned = True
            log.info(
                "am-dbg: %s unreachable (%s); keeping the newest %d transitions meanwhile",
                self.url,
                err,
                self.outbox.limit,
            )

    async def _send_all(self, conn: Connection) -> None:
        outbox = self.outbox
        hello: Message = {
            "kind": "hello",
            "v": PROTOCOL_VERSION,
            "proc": self.proc,
            "dropped": outbox.dropped_total,
        }
        await conn.send("\n".join(map(encode, [hello, *outbox.greeting()])))
        assert self._ready is not None and self._progress is not None
        ready, progress = self._ready, self._progress
        while True:
            if not len(outbox):
                self._idle = True
                async with progress:
                    progress.notify_all()
                ready.clear()
                await ready.wait()
                self._idle = False
            batch = outbox.take(FRAME_MESSAGES)
            if batch:
                try:
                    await conn.send("\n".join(batch))
                except BaseException:
                    outbox.lost(batch)
                    raise

    async def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far was handed to the connection; False when that
        did not happen within ``timeout`` seconds (am-dbg unreachable)."""
        if not self.start() or self._progress is None:
            return False
        progress = self._progress
        try:
            async with asyncio.timeout(timeout), progress:
                await progress.wait_for(
                    lambda: self.connected and self._idle and not len(self.outbox)
                )
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        """Stop sending (what is still queued stays queued)."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.connected = False


_streams: dict[str, Stream] = {}


def stream_for(
    addr: str, *, outbox_limit: int = DEFAULT_OUTBOX, tab_id: str | None = None
) -> Stream:
    """The process's stream to ``addr`` (one connection per am-dbg, shared by its machines)."""
    url = dbg_url(addr)
    stream = _streams.get(url)
    if stream is None:
        stream = _streams[url] = Stream(url, outbox_limit=outbox_limit, tab_id=tab_id)
    return stream


def debug(
    mach: Machine,
    addr: str = DEFAULT_ADDR,
    *,
    log: bool = True,
    checks: bool = False,
    outbox_limit: int = DEFAULT_OUTBOX,
    tab_id: str | None = None,
) -> DebugTracer:
    """Stream ``mach`` (schema and every transition) to the am-dbg at ``addr``.

    Nothing waits for am-dbg: transitions are queued (``outbox_limit`` at most, the oldest
    dropped and counted) and sent by a task on the running event loop, started now or by the
    first transition that happens inside one. ``log`` copies the machine's log lines (at its own
    log level) into the stream; ``checks`` includes ``can_*`` dry runs.
    """
    stream = stream_for(addr, outbox_limit=outbox_limit, tab_id=tab_id)
    machine_created(mach)
    tracer = DebugTracer(mach, stream.outbox, log=log, checks=checks)
    tracer.stream = stream
    stream.start()
    return tracer


def mach_debug_env(mach: Machine) -> DebugTracer | None:
    """``debug(mach, $AM_DBG_ADDR)`` when ``AM_DBG_ADDR`` is set (``1``: the default address);
    nothing otherwise (but a test recording machines, ``--am-trace``, still records it)."""
    addr = os.environ.get(ENV_ADDR, "").strip()
    if not addr:
        machine_created(mach)
        return None
    return debug(mach, addr)
