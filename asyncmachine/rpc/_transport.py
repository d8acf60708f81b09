"""Client transports: how frames reach the server. The client code is the same everywhere; only the
socket differs (the ``websockets`` library on CPython, the browser's ``WebSocket`` in Pyodide)."""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from . import _protocol as p


class TransportClosed(ConnectionError):
    """The connection is closed; ``code`` is the WebSocket close code (1006: dropped)."""

    def __init__(self, code: int | None, reason: str = "") -> None:
        super().__init__(f"connection closed ({code}{': ' + reason if reason else ''})")
        self.code = code
        self.reason = reason


class Transport(Protocol):
    """One open connection carrying text frames."""

    async def send(self, frame: str) -> None: ...

    async def recv(self) -> str:
        """The next frame; raises ``TransportClosed`` once the connection is gone."""
        ...

    async def close(self, code: int = p.CLOSE_NORMAL, reason: str = "") -> None: ...


Connector = Callable[[str], Awaitable[Transport]]
"""Opens a transport to a ``ws://`` / ``wss://`` URL."""


class WebsocketsTransport:
    """CPython: a ``websockets`` client connection."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws

    async def send(self, frame: str) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            await self._ws.send(frame)
        except ConnectionClosed as err:
            raise _closed(err) from None

    async def recv(self) -> str:
        from websockets.exceptions import ConnectionClosed

        try:
            frame = await self._ws.recv()
        except ConnectionClosed as err:
            raise _closed(err) from None
        return frame if isinstance(frame, str) else frame.decode("utf-8", "replace")

    async def close(self, code: int = p.CLOSE_NORMAL, reason: str = "") -> None:
        await self._ws.close(code, reason)


def _closed(err: Any) -> TransportClosed:
    rcvd = getattr(err, "rcvd", None)
    return TransportClosed(rcvd.code if rcvd else 1006, rcvd.reason if rcvd else "")


async def websockets_connector(url: str, *, max_size: int = p.MAX_FRAME) -> Transport:
    from websockets.asyncio.client import connect

    ws = await connect(url, max_size=max_size, ping_interval=None, compression=None, proxy=None)
    return WebsocketsTransport(ws)


class PyodideTransport:
    """Pyodide: the JavaScript ``WebSocket`` (browser, or Node with a global ``WebSocket``).

    Event listeners are Pyodide proxies; they are destroyed when the socket closes.
    """

    def __init__(self, url: str) -> None:
        import js
        from pyodide.ffi import create_proxy

        loop = asyncio.get_running_loop()
        self._frames: asyncio.Queue[str | TransportClosed] = asyncio.Queue()
        self._opened: asyncio.Future[None] = loop.create_future()
        self._ws = js.WebSocket.new(url)
        self._listeners = {
            "open": create_proxy(self._on_open),
            "message": create_proxy(self._on_message),
            "close": create_proxy(self._on_close),
            "error": create_proxy(self._on_error),
        }
        for name, proxy in self._listeners.items():
            self._ws.addEventListener(name, proxy)

    async def opened(self) -> PyodideTransport:
        await self._opened
        return self

    def _on_open(self, event: Any) -> None:
        if not self._opened.done():
            self._opened.set_result(None)

    def _on_message(self, event: Any) -> None:
        data = event.data
        self._frames.put_nowait(data if isinstance(data, str) else str(data))

    def _on_error(self, event: Any) -> None:
        if not self._opened.done():
            self._opened.set_exception(TransportClosed(1006, "connection failed"))

    def _on_close(self, event: Any) -> None:
        closed = TransportClosed(int(event.code), str(event.reason))
        if not self._opened.done():
            self._opened.set_exception(closed)
        self._frames.put_nowait(closed)
        for name, proxy in self._listeners.items():
            self._ws.removeEventListener(name, proxy)
            proxy.destroy()
        self._listeners = {}

    async def send(self, frame: str) -> None:
        if self._ws.readyState != 1:  # OPEN
            raise TransportClosed(1006, "not open")
        self._ws.send(frame)

    async def recv(self) -> str:
        item = await self._frames.get()
        if isinstance(item, TransportClosed):
            self._frames.put_nowait(item)  # every later recv() sees the close too
            raise item
        return item

    async def close(self, code: int = p.CLOSE_NORMAL, reason: str = "") -> None:
        if self._ws.readyState < 2:  # CONNECTING or OPEN
            self._ws.close(code, reason)


async def pyodide_connector(url: str) -> Transport:
    return await PyodideTransport(url).opened()


def default_connector(max_frame: int = p.MAX_FRAME) -> Connector:
    """The browser's WebSocket inside Pyodide (no frame limit to set), the ``websockets``
    library elsewhere, accepting frames up to ``max_frame`` bytes."""
    if sys.platform == "emscripten":
        return pyodide_connector
    return functools.partial(websockets_connector, max_size=max_frame)
