"""Machine log lines as Loki streams: batched JSON pushes to ``/loki/api/v1/push``.

``bind_loki(mach, url)`` taps the machine's logger (raising its level to ``CHANGES`` if lower;
the user's own logger keeps getting what it got before). A line costs the machine one append to
a bounded buffer: an asyncio task ships the buffer in batches, retries with exponential backoff
when Loki is down, slow or answers 429/5xx, and never makes a transition wait. When the buffer is
full the oldest lines go; dropped lines are counted (``handle.dropped``) and the first drop is
logged once, to the stdlib logger ``asyncmachine.telemetry``.

Streams carry the labels ``service_name``, ``asyncmachine_id`` and ``level``: ``error`` for
lines starting with ``[error``, ``info`` for ``EXTERNAL``/``CHANGES``/``OPS`` lines, ``debug``
for ``DECISIONS``/``EVERYTHING`` (upstream drops ``EXTERNAL`` lines; here they are the user's own
``mach.log()`` lines and are shipped). Lines lose the machine's ``[id] `` prefix: the label has it.

Machines pushing to the same URL from one event loop share one client (one buffer, one task, one
connection pool).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections import deque
from collections.abc import Mapping
from time import time_ns
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import aiohttp

from ._levels import Severity
from ._logtap import LogTap, tap_log
from ._wait import wait_event

if TYPE_CHECKING:
    from .._machine import Machine

__all__ = ["LokiClient", "LokiHandle", "bind_loki", "bind_loki_env"]

PUSH_PATH = "/loki/api/v1/push"

_log = logging.getLogger("asyncmachine.telemetry")

_Stream = tuple[tuple[str, str], ...]
"""A stream's labels, sorted: the key lines are grouped by."""
_Line = tuple[_Stream, int, str]


class LokiClient:
    """One Loki endpoint: a bounded buffer of lines and the asyncio task that pushes them.

    ``batch_size`` lines make a push (or whatever is buffered after ``flush_interval`` seconds);
    ``max_lines`` bounds the buffer. A push that fails with a connection error, a timeout, 429 or
    5xx is retried ``retries`` times, waiting ``min_backoff`` seconds and doubling up to
    ``max_backoff``; then its lines are dropped. Other 4xx answers drop the batch at once (Loki
    refused those lines; sending them again would not help). Once closing, a failed push is not
    retried: shutting down takes one request's ``timeout`` at most.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        batch_size: int = 1000,
        flush_interval: float = 1.0,
        max_lines: int = 10_000,
        timeout: float = 5.0,
        retries: int = 5,
        min_backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        self.url = push_url(url)
        if batch_size < 1 or max_lines < batch_size:
            raise ValueError(f"need 1 <= batch_size <= max_lines, got {batch_size}, {max_lines}")
        if not flush_interval > 0 or not timeout > 0 or retries < 0 or not min_backoff > 0:
            raise ValueError("flush_interval, timeout and min_backoff must be positive")
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_lines = max_lines
        self.timeout = timeout
        self.retries = retries
        self.min_backoff = min_backoff
        self.max_backoff = max(max_backoff, min_backoff)
        self.pushed = 0
        """Lines Loki accepted."""
        self.dropped = 0
        """Lines lost: pushed out of a full buffer, or in a batch that failed for good."""
        self.handles = 0
        self._buffer: deque[_Line] = deque()
        self._wake = asyncio.Event()
        self._sending = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._closing = asyncio.Event()

    # ------------------------------------------------------------------ the machine's side

    def add(self, stream: _Stream, line: str) -> None:
        """Buffer one line (never blocks; drops the oldest line when full)."""
        buffer = self._buffer
        if len(buffer) >= self.max_lines:
            buffer.popleft()
            self._drop(1, "the buffer is full")
        buffer.append((stream, time_ns(), line))
        if self._task is None:
            self.start()
        elif len(buffer) >= self.batch_size:
            self._wake.set()

    def start(self) -> None:
        """Start the push task on the running loop; without one, lines wait in the buffer."""
        if self._task is not None or self._closed:
            return
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._task = self._loop.create_task(self._run())

    @property
    def buffered(self) -> int:
        """Lines waiting to be pushed."""
        return len(self._buffer)

    # ------------------------------------------------------------------ pushing

    async def _run(self) -> None:
        while not self._closed:
            await wait_event(self._wake, self.flush_interval)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Push everything buffered now (retrying as configured); returns once sent or dropped."""
        async with self._sending:
            while self._buffer:
                n = min(len(self._buffer), self.batch_size)
                batch = [self._buffer.popleft() for _ in range(n)]
                try:
                    await self._push(batch)
                except asyncio.CancelledError:
                    self._buffer.extendleft(reversed(batch))  # not lost: the next flush sends them
                    raise

    async def _push(self, batch: list[_Line]) -> None:
        body = _encode(batch)
        backoff = self.min_backoff
        attempts = 0
        while True:
            status, why = await self._post(body)
            attempts += 1
            if 200 <= status < 300:
                self.pushed += len(batch)
                return
            if status and status != 429 and status < 500:
                self._drop(len(batch), f"Loki refused a batch: {why}")
                return
            if attempts > self.retries or self._closed:
                break
            if await wait_event(self._closing, backoff):  # closing cuts the backoff short
                break
            backoff = min(backoff * 2, self.max_backoff)
        tries = f"{attempts} attempt{'s' if attempts > 1 else ''}"
        self._drop(len(batch), f"a batch failed after {tries}, last: {why}")

    async def _post(self, body: bytes) -> tuple[int, str]:
        """POST one batch: ``(HTTP status or 0, what happened)``."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.post(
                self.url,
                data=body,
                headers=self.headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as resp:
                text = "" if resp.status < 300 else (await resp.text())[:200]
                return resp.status, f"HTTP {resp.status} {text}".strip()
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            return 0, repr(err)

    def _drop(self, n: int, why: str) -> None:
        if not self.dropped:
            _log.warning(
                "asyncmachine: dropping log lines for %s (%s); counted in .dropped, logged once",
                self.url,
                why,
            )
        self.dropped += n

    async def close(self) -> None:
        """Push what is buffered (one more try, no retries), then stop the task and close the
        connections."""
        self._closed = True
        self._closing.set()
        self._wake.set()
        if self._task is not None:
            await self._task  # it ends after its current push
            self._task = None
        await self.flush()
        if self._session is not None:
            await self._session.close()
            self._session = None


def _encode(batch: list[_Line]) -> bytes:
    """The push API's JSON body: lines grouped by stream, in order, timestamps in ns strings."""
    streams: dict[_Stream, list[list[str]]] = {}
    for stream, ts, line in batch:
        values = streams.get(stream)
        if values is None:
            values = streams[stream] = []
        values.append([str(ts), line])
    payload = {"streams": [{"stream": dict(s), "values": v} for s, v in streams.items()]}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def push_url(url: str) -> str:
    """The push endpoint of a Loki base address (a full push URL is kept as it is)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"Loki url must be http(s)://HOST[:PORT], got {url!r}")
    base = url.rstrip("/")
    return base if base.endswith(PUSH_PATH) else base + PUSH_PATH


class LokiHandle:
    """One machine bound to a :class:`LokiClient`; ``await flush()``, ``await close()``."""

    def __init__(self, mach: Machine, client: LokiClient, service: str) -> None:
        self.machine_id = mach.id
        self.client = client
        self.service = service
        base = (("asyncmachine_id", mach.id), ("service_name", service))
        self._streams = {
            level: tuple(sorted((*base, ("level", level)))) for level in ("error", "info", "debug")
        }
        client.handles += 1
        self._tap: LogTap | None = tap_log(mach, self._sink)
        self._closing: asyncio.Task[None] | None = None
        mach.on_dispose(self._disposed)
        client.start()

    def _sink(self, body: str, sev: Severity) -> None:
        self.client.add(self._streams[sev.name], body)

    @property
    def dropped(self) -> int:
        """Lines dropped by the client (shared by the machines pushing to the same URL)."""
        return self.client.dropped

    async def flush(self) -> None:
        """Push every line buffered so far."""
        await self.client.flush()

    async def close(self) -> None:
        """Stop shipping this machine's lines; push what is buffered."""
        if self._closing is None:
            self._untap()
            self._closing = asyncio.ensure_future(self._release())
        await self._closing

    def _untap(self) -> None:
        if self._tap is not None:
            self._tap.remove(self._sink)
            self._tap = None

    def _disposed(self, _mach_id: str) -> None:
        """A disposed machine logs nothing more: release the client (its lines still go out)."""
        self._untap()
        if self._closing is None:
            with contextlib.suppress(RuntimeError):  # no loop: close() releases it
                self._closing = asyncio.get_running_loop().create_task(self._release())
                _releasing.add(self._closing)
                self._closing.add_done_callback(_releasing.discard)

    async def _release(self) -> None:
        client = self.client
        client.handles -= 1
        if client.handles:
            await client.flush()
            return
        for key, known in list(_clients.items()):
            if known is client:
                del _clients[key]
        await client.close()


_clients: dict[tuple[str, asyncio.AbstractEventLoop | None], LokiClient] = {}
_releasing: set[asyncio.Task[None]] = set()
"""Releases started by disposal, kept referenced until they finish."""


def bind_loki(
    mach: Machine,
    url: str,
    *,
    service: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> LokiHandle:
    """Ship ``mach``'s log lines to the Loki at ``url`` (``http://127.0.0.1:3100``).

    ``service`` is the ``service_name`` label (default ``asyncmachine``); ``headers`` go with
    every push (``X-Scope-OrgID`` for a multi-tenant Loki, ``Authorization``...). Machines on the
    same URL in the same event loop share a :class:`LokiClient`. Call it with a running loop, or
    lines wait in the buffer until the first one is logged while a loop runs.
    """
    endpoint = push_url(url)
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    client = _clients.get((endpoint, loop))
    if client is None:
        client = _clients[(endpoint, loop)] = LokiClient(url, headers=headers)
    elif headers and dict(headers).items() - client.headers.items():
        raise ValueError(f"a Loki client for {endpoint} already runs with other headers")
    return LokiHandle(mach, client, service or "asyncmachine")


def bind_loki_env(mach: Machine) -> LokiHandle | None:
    """``bind_loki`` when ``AM_LOKI_ADDR`` is set (``HOST:PORT`` or a URL), with ``AM_SERVICE``
    as the service name; else nothing (``None``)."""
    addr = os.environ.get("AM_LOKI_ADDR", "")
    if not addr:
        return None
    url = addr if "://" in addr else f"http://{addr}"
    try:
        push_url(url)
    except ValueError:
        raise ValueError(
            f"AM_LOKI_ADDR must be HOST:PORT or an http(s) URL, got {addr!r}"
        ) from None
    return bind_loki(mach, url, service=os.environ.get("AM_SERVICE") or None)
