"""Mutation results: an ``int`` that is also awaitable, so local and remote calls read the same."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any


class Result(int):
    """``Executed`` (0), ``Canceled`` (1), or the queue tick (>= 2) of a queued mutation."""

    __slots__ = ()

    @property
    def is_queued(self) -> bool:
        """A queue tick: the mutation waits in the queue."""
        return self > 1

    def __str__(self) -> str:
        if self == 0:
            return "executed"
        if self == 1:
            return "canceled"
        return "queued"

    def __repr__(self) -> str:
        if self > 1:
            return f"Result(queued {int(self)})"
        return f"Result({self})"

    def __await__(self) -> Generator[Any, None, Result]:
        """Resolve to itself at once: the mutation already ran (or was queued)."""
        return self
        yield  # pragma: no cover - makes this a generator


Executed = Result(0)
Canceled = Result(1)
Queued = Result(2)


def is_queued(result: int) -> bool:
    """True for a queue tick, i.e. the mutation was queued and not run yet."""
    return result > 1
