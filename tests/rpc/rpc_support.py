"""Test helpers for the RPC tests: a client transport to listen in on and disturb (``Taps``), and
a real TCP relay between clients and a server that can reset, blackhole and refuse (``Relay``).

Importing this module needs neither sockets nor ``websockets`` (Pyodide collects it too).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
from collections.abc import Callable
from typing import Any

from asyncmachine import rpc

TIMEOUT = 5.0
"""Upper bound for anything a test waits on: a broken feature fails instead of hanging."""


class Tap:
    """A client transport wrapping a real one: it records what passes, drops server frames, or
    holds them (and the close) as if the client's reader were late."""

    def __init__(self, receiver: rpc.Receiver) -> None:
        self.receiver = receiver
        self.inner: rpc.Transport | None = None
        self.sent: list[dict[str, Any]] = []
        self.received: list[dict[str, Any]] = []
        """What reached the client."""
        self.closes: list[int | str] = []
        """Close codes the client asked for; ``"abort"`` when it dropped the connection."""
        self.drop: Callable[[dict[str, Any]], bool] = lambda message: False
        """Server frames for which this is true never reach the client."""
        self.edit: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        """Rewrites server frames on their way to the client (a lying server)."""
        self.deaf = False
        """The client hears nothing while the server still gets pongs: a half-dead link."""
        self._held: list[tuple[str, Any]] | None = None

    # the server's side: what the real transport delivers

    def frame_received(self, frame: str | bytes) -> None:
        if self._held is not None:
            self._held.append(("frame", frame))
            return
        message = json.loads(frame)
        if self.deaf:
            if message["t"] == "ping" and self.inner is not None:
                self.inner.send(json.dumps({"t": "pong", "ts": message["ts"]}))
        elif not self.drop(message):
            if self.edit is not None:
                message = self.edit(message)
                frame = json.dumps(message)
            self.received.append(message)
            self.receiver.frame_received(frame)

    def connection_lost(self, code: int, reason: str) -> None:
        if self._held is not None:
            self._held.append(("lost", (code, reason)))
            return
        self.receiver.connection_lost(code, reason)

    # the client's side

    def send(self, frame: str) -> None:
        self.sent.append(json.loads(frame))
        assert self.inner is not None
        self.inner.send(frame)

    def close(self, code: int = 1000, reason: str = "") -> None:
        self.closes.append(code)
        assert self.inner is not None
        self.inner.close(code, reason)

    def abort(self) -> None:
        self.closes.append("abort")
        assert self.inner is not None
        self.inner.abort()

    # the test's controls

    def hold(self) -> None:
        """Frames and the close wait here until ``release()``."""
        if self._held is None:
            self._held = []

    def release(self) -> None:
        held, self._held = self._held or [], None
        for kind, item in held:
            if kind == "frame":
                self.frame_received(item)
            else:
                self.connection_lost(*item)


class Taps:
    """A connector for ``rpc.Client`` that keeps every transport it opened, as a ``Tap``."""

    def __init__(self, **options: Any) -> None:
        self.opened: list[Tap] = []
        self.options = options

    async def __call__(self, url: str, receiver: rpc.Receiver) -> Tap:
        from asyncmachine.rpc._transport import websockets_connector

        tap = Tap(receiver)
        tap.inner = await websockets_connector(url, tap, **self.options)
        self.opened.append(tap)
        return tap


class _Pair:
    """One relayed connection: the client's socket and the server's."""

    def __init__(
        self,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        server: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> None:
        self.client = client
        self.server = server
        self.tasks: list[asyncio.Task[None]] = []


class Relay:
    """A TCP relay on 127.0.0.1 in front of ``target_port``.

    ``blackhole()``: bytes in both directions vanish (the sockets stay open, nothing is reset: a
    silent peer); ``heal()`` ends that. ``reset()``: every relayed connection is reset (RST).
    ``refuse()``: stop listening, so new connections are refused; ``listen()`` again on the same
    port.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.blackholed = False
        self.pairs: set[_Pair] = set()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def listen(self) -> Relay:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def blackhole(self) -> None:
        self.blackholed = True

    def heal(self) -> None:
        self.blackholed = False

    def reset(self) -> None:
        for pair in list(self.pairs):
            self._drop(pair, rst=True)

    async def refuse(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def close(self) -> None:
        await self.refuse()
        for pair in list(self.pairs):
            self._drop(pair, rst=False)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            _rst(writer)
            return
        pair = _Pair((reader, writer), upstream)
        self.pairs.add(pair)
        pair.tasks = [
            asyncio.create_task(self._pump(pair, reader, upstream[1])),
            asyncio.create_task(self._pump(pair, upstream[0], writer)),
        ]

    async def _pump(
        self, pair: _Pair, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            while data := await reader.read(65536):
                if not self.blackholed:
                    writer.write(data)
                    await writer.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self._drop(pair, rst=False)

    def _drop(self, pair: _Pair, rst: bool) -> None:
        if pair not in self.pairs:
            return
        self.pairs.discard(pair)
        for task in pair.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        for _, writer in (pair.client, pair.server):
            if rst:
                _rst(writer)
            else:
                writer.close()


def _rst(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0) instead of a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
