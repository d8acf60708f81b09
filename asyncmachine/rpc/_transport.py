"""Client transports: how frames reach the server, and how a failed connect says why.

A transport pushes what it receives into a ``Receiver`` (no reader task: a frame is handled in
the event loop callback that read it) and sends synchronously. On CPython it is the Sans-I/O layer
of ``websockets`` on an asyncio protocol; in Pyodide, the JavaScript ``WebSocket``. A connector
raises ``ConnectError`` with its reason as soon as the reason is known.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from .._errors import AsyncMachineError
from . import _protocol as p
from ._errors import ConnectError


class TransportClosed(AsyncMachineError, ConnectionError):
    """The connection is closed; ``code`` is the WebSocket close code (1006: dropped)."""

    def __init__(self, code: int | None, reason: str = "") -> None:
        super().__init__(f"connection closed ({code}{': ' + reason if reason else ''})")
        self.code = code
        self.reason = reason


class Receiver(Protocol):
    """Where a transport delivers what it receives.

    A receiver may have a ``wants_reason`` attribute: when false, a browser transport does not
    spend a request finding out why a socket failed to open (nobody would read the reason).
    """

    def frame_received(self, frame: str | bytes) -> None: ...

    def connection_lost(self, code: int, reason: str) -> None:
        """Called once, when the connection is gone (1006: dropped without a close frame)."""
        ...


class Transport(Protocol):
    """One open connection carrying text frames."""

    def send(self, frame: str) -> None:
        """Send (buffered); raises ``TransportClosed`` once the connection is closing."""
        ...

    def close(self, code: int = p.CLOSE_NORMAL, reason: str = "") -> None:
        """Start the closing handshake; ``connection_lost`` follows."""
        ...

    def abort(self) -> None:
        """Drop the connection now, without a handshake; ``connection_lost`` follows."""
        ...


Connector = Callable[[str, Receiver], Awaitable[Transport]]
"""Opens a transport to a ``ws://`` / ``wss://`` URL, delivering to the receiver."""

CLOSE_WAIT = 0.5
"""Seconds the closing handshake may take before the socket is dropped."""


class WebsocketsTransport(asyncio.Protocol):
    """CPython: the Sans-I/O ``websockets`` client protocol on an asyncio socket."""

    def __init__(self, protocol: Any, receiver: Receiver, opened: asyncio.Future[None]) -> None:
        from websockets.frames import Opcode
        from websockets.http11 import Response
        from websockets.protocol import OPEN

        self._OPEN, self._Response = OPEN, Response
        self._TEXT, self._BINARY, self._CONT = Opcode.TEXT, Opcode.BINARY, Opcode.CONT
        self._ws = protocol
        self._receiver = receiver
        self._opened = opened
        self._transport: asyncio.Transport | None = None
        self._fragments: list[bytes] | None = None
        self._closer: asyncio.TimerHandle | None = None
        self._lost = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        ws = self._ws
        ws.send_request(ws.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        ws = self._ws
        ws.receive_data(data)
        events = ws.events_received()
        self._flush()
        for event in events:
            self._event(event)

    def eof_received(self) -> bool | None:
        self._ws.receive_eof()
        self._flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._closer is not None:
            self._closer.cancel()
        self._lost = True
        ws = self._ws
        ws.receive_eof()
        if not self._opened.done():
            self._opened.set_exception(ConnectError("refused", "the connection was closed"))
            return
        code = ws.close_code if ws.close_code is not None else 1006
        self._receiver.connection_lost(code, ws.close_reason or "")

    # Transport

    def send(self, frame: str) -> None:
        if self._ws.state is not self._OPEN or self._lost:
            raise TransportClosed(self._ws.close_code, "not open")
        self._ws.send_text(frame.encode())
        self._flush()

    def close(self, code: int = p.CLOSE_NORMAL, reason: str = "") -> None:
        if self._ws.state is self._OPEN:
            self._ws.send_close(code, reason)
            self._flush()
        elif self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    # internals

    def _flush(self) -> None:
        transport = self._transport
        if transport is None:
            return
        ws = self._ws
        for data in ws.data_to_send():
            if data:
                transport.write(data)
            elif transport.can_write_eof():
                transport.write_eof()
            else:
                transport.close()
        if ws.close_expected() and self._closer is None:
            self._closer = asyncio.get_running_loop().call_later(CLOSE_WAIT, transport.abort)

    def _event(self, event: Any) -> None:
        if isinstance(event, self._Response):
            if not self._opened.done():
                err = self._ws.handshake_exc
                if err is None:
                    self._opened.set_result(None)
                else:
                    self._opened.set_exception(_handshake_error(err))
            return
        opcode = event.opcode
        if opcode is self._TEXT or opcode is self._BINARY:
            if event.fin:
                data = event.data
                self._receiver.frame_received(
                    data.decode("utf-8", "replace") if opcode is self._TEXT else bytes(data)
                )
            else:
                self._fragments = [bytes(event.data)]
        elif opcode is self._CONT and self._fragments is not None:
            self._fragments.append(bytes(event.data))
            if event.fin:
                data = b"".join(self._fragments)
                self._fragments = None
                self._receiver.frame_received(data.decode("utf-8", "replace"))


def _handshake_error(err: BaseException) -> ConnectError:
    from websockets.exceptions import InvalidStatus

    if isinstance(err, InvalidStatus):
        status = err.response.status_code
        if status == 404:
            return ConnectError("not_found", f"HTTP {status}")
        if status == 403:
            return ConnectError("forbidden_origin", f"HTTP {status}")
        return ConnectError("protocol", f"HTTP {status}")
    return ConnectError("protocol", str(err)[:200])


async def websockets_connector(
    url: str,
    receiver: Receiver,
    *,
    max_size: int = p.CLIENT_MAX_FRAME,
    origin: str | None = None,
) -> Transport:
    """Open a connection with the ``websockets`` Sans-I/O client (TLS for ``wss://``)."""
    import ssl

    from websockets.client import ClientProtocol
    from websockets.exceptions import InvalidURI
    from websockets.typing import Origin
    from websockets.uri import parse_uri

    try:
        uri = parse_uri(url)
    except InvalidURI as err:
        raise ConnectError("protocol", str(err)) from None
    loop = asyncio.get_running_loop()
    opened: asyncio.Future[None] = loop.create_future()
    protocol = ClientProtocol(
        uri, origin=Origin(origin) if origin is not None else None, max_size=max_size
    )
    try:
        _, conn = await loop.create_connection(
            lambda: WebsocketsTransport(protocol, receiver, opened),
            uri.host,
            uri.port,
            ssl=ssl.create_default_context() if uri.secure else None,
        )
    except OSError as err:
        raise ConnectError("refused", str(err)) from None
    try:
        await opened
    except BaseException:
        conn.abort()
        raise
    return conn


class PyodideTransport:
    """Pyodide: the JavaScript ``WebSocket`` (browser, or Node with a global ``WebSocket``).

    Event listeners are Pyodide proxies, destroyed when the socket closes. A browser says nothing
    about why a socket failed to open, so a failed open asks the same URL over HTTP (``fetch``):
    no answer is ``refused``, 404 ``not_found``, 403 ``forbidden_origin``.
    """

    def __init__(self, url: str, receiver: Receiver) -> None:
        import js
        from pyodide.ffi import JsException, create_proxy

        self.url = url
        self._receiver = receiver
        loop = asyncio.get_running_loop()
        self._opened: asyncio.Future[None] = loop.create_future()
        self._closed = False
        try:
            self._ws = js.WebSocket.new(url)
        except JsException as err:  # a malformed URL
            raise ConnectError("protocol", str(err)[:200]) from None
        self._listeners = {
            "open": create_proxy(self._on_open),
            "message": create_proxy(self._on_message),
            "close": create_proxy(self._on_close),
            "error": create_proxy(self._on_error),
        }
        for name, proxy in self._listeners.items():
            self._ws.addEventListener(name, proxy)

    async def opened(self) -> PyodideTransport:
        try:
            await self._opened
        except BaseException:
            self.abort()
            raise
        return self

    def _on_open(self, event: Any) -> None:
        if not self._opened.done():
            self._opened.set_result(None)

    def _on_message(self, event: Any) -> None:
        data = event.data
        self._receiver.frame_received(data if isinstance(data, str) else str(data))

    def _on_error(self, event: Any) -> None:
        """Nothing to do: ``close`` follows. Listening keeps Node's ``ws`` from treating the
        error as unhandled."""

    def _on_close(self, event: Any) -> None:
        self._detach()
        if not self._opened.done():
            if getattr(self._receiver, "wants_reason", True):
                asyncio.get_running_loop().create_task(self._diagnose())
            else:
                self._opened.set_exception(ConnectError("refused", "the socket did not open"))
            return
        if not self._closed:
            self._closed = True
            self._receiver.connection_lost(int(event.code), str(event.reason))

    async def _diagnose(self) -> None:
        from pyodide.http import pyfetch

        url = "http" + self.url[2:] if self.url.startswith("ws") else self.url
        try:
            response = await pyfetch(url, cache="no-store")
            status = int(response.status)
        except Exception as err:
            error = ConnectError("refused", str(err)[:200])
        else:
            reason = {404: "not_found", 403: "forbidden_origin"}.get(status, "protocol")
            error = ConnectError(reason, f"HTTP {status}")
        if not self._opened.done():
            self._opened.set_exception(error)

    def _detach(self) -> None:
        for name, proxy in self._listeners.items():
            self._ws.removeEventListener(name, proxy)
            proxy.destroy()
        self._listeners = {}

    def send(self, frame: str) -> None:
        if self._closed or self._ws.readyState != 1:  # OPEN
            raise TransportClosed(1006, "not open")
        self._ws.send(frame)

    def close(self, code: int = p.CLOSE_NORMAL, reason: str = "") -> None:
        if self._ws.readyState < 2:  # CONNECTING or OPEN
            self._ws.close(code, reason)

    def abort(self) -> None:
        """A browser cannot drop a socket: close it, and report the loss now."""
        if self._ws.readyState < 2:
            self._ws.close(p.CLOSE_TIMEOUT, "dropped")
        self._detach()
        if not self._closed and self._opened.done():
            self._closed = True
            self._receiver.connection_lost(1006, "dropped")


async def pyodide_connector(url: str, receiver: Receiver) -> Transport:
    return await PyodideTransport(url, receiver).opened()


def default_connector(max_frame: int = p.CLIENT_MAX_FRAME, origin: str | None = None) -> Connector:
    """The browser's WebSocket inside Pyodide, the ``websockets`` library elsewhere."""
    if sys.platform == "emscripten":
        return pyodide_connector

    async def connect(url: str, receiver: Receiver) -> Transport:
        return await websockets_connector(url, receiver, max_size=max_frame, origin=origin)

    return connect
