"""How clients find supervisors, and how a supervisor makes itself findable.

The only seam between the pool and its network: the WebSocket default is a fixed list of URLs
(``Client.start([url, ...])``) and a supervisor that announces nothing. Another transport (NATS)
implements the same two methods: ``announce`` when a supervisor starts serving, ``withdraw`` when
it stops, and ``supervisors`` to list the URLs of the supervisors of a kind, best first.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol


class Discovery(Protocol):
    """Where supervisors of a kind are."""

    async def announce(self, kind: str, supervisor_id: str, url: str) -> None:
        """A supervisor of ``kind`` serves at ``url``."""
        ...

    async def withdraw(self, kind: str, supervisor_id: str) -> None:
        """The supervisor stopped serving."""
        ...

    async def supervisors(self, kind: str) -> list[str]:
        """The URLs of the supervisors of ``kind``, in the order to try them."""
        ...


class StaticDiscovery:
    """A fixed list of supervisor URLs; announcing is a no-op."""

    def __init__(self, urls: Iterable[str] = ()) -> None:
        self.urls = list(urls)
        if not all(isinstance(url, str) and url for url in self.urls):
            raise TypeError("supervisor URLs must be non-empty strings")

    async def announce(self, kind: str, supervisor_id: str, url: str) -> None:
        return None

    async def withdraw(self, kind: str, supervisor_id: str) -> None:
        return None

    async def supervisors(self, kind: str) -> list[str]:
        return list(self.urls)
