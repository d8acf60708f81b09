"""The NATS connection as asyncmachine uses it: ordered sends from synchronous code, JSON bodies.

The sessions and the hub are synchronous; nats-py publishes with coroutines. ``Link.send`` queues
a message and one writer task publishes the queue in order, so a diff queued before a mutation's
reply reaches every subscriber before that reply (NATS keeps one publisher's order).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from .. import _protocol as p
from .._errors import AuthError, ConnectError, ProtocolError

log = logging.getLogger("asyncmachine.rpc.nats")


async def open_nats(url: str, name: str, options: dict[str, Any]) -> NatsClient:
    """Connect; credentials travel in the URL (``nats://user:pass@host``, ``nats://token@host``)
    or in ``options`` (``user``, ``password``, ``token``, ``user_credentials``, ``tls``...), which
    go to ``nats.connect`` as they are. Once connected, the connection reconnects for ever; the
    first connect raises ``AuthError`` as soon as NATS refuses the credentials and
    ``ConnectError`` after ``connect_wait`` seconds (``options``, default 10) without a server."""
    loop = asyncio.get_running_loop()
    refused: asyncio.Future[BaseException] = loop.create_future()
    last: list[BaseException] = []
    options = dict(options)
    wait = float(options.pop("connect_wait", 10.0))
    user_cb = options.pop("error_cb", None)

    async def on_error(err: BaseException) -> None:
        last[:] = [err]
        if "authorization" in str(err).lower() and not refused.done():
            refused.set_result(err)
        if user_cb is not None:
            await user_cb(err)
        else:
            log.info("nats: %s", err)

    settings: dict[str, Any] = {
        "name": name,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.5,
        "error_cb": on_error,
    }
    settings.update(options)
    servers = [u.strip() for u in url.split(",")] if isinstance(url, str) else url
    connecting: asyncio.Future[NatsClient] = loop.create_task(nats.connect(servers, **settings))
    either: list[asyncio.Future[Any]] = [connecting, refused]
    done, _ = await asyncio.wait(either, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
    if connecting in done:
        return connecting.result()
    connecting.cancel()
    with contextlib.suppress(BaseException):
        await connecting
    if refused.done():
        raise AuthError(p.E_AUTH, f"NATS refused the credentials: {refused.result()}")
    why = f": {last[0]}" if last else ""
    raise ConnectError("refused", f"no NATS server answered at {url} in {wait:g} s{why}")


class Link:
    """A NATS connection with an ordered outbox."""

    def __init__(self, nc: NatsClient) -> None:
        self.nc = nc
        self._out: deque[tuple[str, bytes]] = deque()
        self._ready = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()
        self._writer = asyncio.get_running_loop().create_task(self._write())

    def send(self, subject: str, message: dict[str, Any]) -> None:
        """Publish ``message`` (JSON) after everything sent before it."""
        self.send_raw(subject, p.encode(message).encode())

    def send_raw(self, subject: str, data: bytes) -> None:
        self._out.append((subject, data))
        self._empty.clear()
        self._ready.set()

    async def _write(self) -> None:
        out = self._out
        while True:
            await self._ready.wait()
            self._ready.clear()
            while out:
                subject, data = out.popleft()
                with contextlib.suppress(Exception):  # closed or reconnecting: NATS drops it too
                    await self.nc.publish(subject, data)
            self._empty.set()

    async def drained(self) -> None:
        """Wait until the outbox is published and the server has it."""
        await self._empty.wait()
        with contextlib.suppress(Exception):
            await self.nc.flush(timeout=2)

    async def close(self) -> None:
        await self.drained()
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer
        with contextlib.suppress(Exception):
            await self.nc.drain()


def soon(fn: Callable[[], None]) -> None:
    """The hub's ``schedule``: run ``fn`` on the next loop iteration."""
    asyncio.get_running_loop().call_soon(fn)


def body(msg: Msg) -> dict[str, Any]:
    """A NATS message's JSON object; ``ProtocolError`` for anything else."""
    try:
        return p.decode(msg.data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ProtocolError(p.E_BAD_JSON, "not UTF-8") from None
