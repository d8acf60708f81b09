"""Worker pools on NATS: supervisors of a kind answer on ``am.node.<kind>.who``.

``NatsDiscovery`` has the shape of ``node``'s discovery seam (``announce``, ``withdraw``,
``supervisors``): a supervisor that announces itself answers every ``who`` request of its kind
with its id and URL until it withdraws; a client asks once and gets the URLs of every supervisor
that answered, the quickest first.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from nats.aio.msg import Msg

from .. import _protocol as p
from . import _subjects as subjects
from ._link import Link, body, open_nats

GRACE = 0.05
"""Seconds to wait for more supervisors after the first one answered."""


def who(kind: str) -> str:
    kind = subjects.check_id(kind, "pool kind")
    return f"{subjects.PREFIX}.node.{kind}.who"


class NatsDiscovery:
    """Supervisors of a kind found through NATS; ``await discovery.close()`` at the end."""

    def __init__(self, nats_url: str, *, timeout: float = 2.0, **nats_options: Any) -> None:
        self.url = nats_url
        self.timeout = timeout
        """Seconds ``supervisors`` waits for the first answer."""
        self.options = nats_options
        self._link: Link | None = None
        self._opening: asyncio.Lock | None = None
        self._announced: dict[tuple[str, str], Any] = {}

    async def _nc(self) -> Any:
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._link is None:
                self._link = Link(await open_nats(self.url, "am-node-discovery", self.options))
        return self._link.nc

    async def announce(self, kind: str, supervisor_id: str, url: str) -> None:
        nc = await self._nc()
        answer = body_bytes({"t": "sup", "id": supervisor_id, "url": url})

        async def reply(msg: Msg) -> None:
            if msg.reply:
                await nc.publish(msg.reply, answer)

        await self.withdraw(kind, supervisor_id)
        self._announced[(kind, supervisor_id)] = await nc.subscribe(who(kind), cb=reply)
        await nc.flush()

    async def withdraw(self, kind: str, supervisor_id: str) -> None:
        sub = self._announced.pop((kind, supervisor_id), None)
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def supervisors(self, kind: str) -> list[str]:
        nc = await self._nc()
        loop = asyncio.get_running_loop()
        urls: list[str] = []
        first: asyncio.Future[None] = loop.create_future()

        async def collect(msg: Msg) -> None:
            with contextlib.suppress(Exception):
                url = body(msg).get("url")
                if isinstance(url, str) and url not in urls:
                    urls.append(url)
                    if not first.done():
                        first.set_result(None)

        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox, cb=collect)
        try:
            await nc.publish(who(kind), body_bytes({"t": "who"}), reply=inbox)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(first, self.timeout)
                await asyncio.sleep(GRACE)  # the others that answer about as fast
        finally:
            await sub.unsubscribe()
        return list(urls)

    async def close(self) -> None:
        for kind, supervisor_id in list(self._announced):
            await self.withdraw(kind, supervisor_id)
        if self._link is not None:
            await self._link.close()
            self._link = None


def body_bytes(message: dict[str, Any]) -> bytes:
    return p.encode(message).encode()
