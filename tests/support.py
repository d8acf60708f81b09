"""Small helpers shared by the engine tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

import asyncmachine as am

NO_RELS: dict[str, am.State] = {n: am.State() for n in "ABCD"}
"""Four states without relations (upstream's test schema "NoRels")."""


class Rec:
    """A handler object recording the names of its handlers as they are called (exact orders)."""

    def __init__(
        self,
        *names: str,
        do: dict[str, Callable[[am.Event], object]] | None = None,
    ) -> None:
        self.calls: list[str] = []
        fns = do or {}
        for name in [*names, *(n for n in fns if n not in names)]:
            setattr(self, name, self._handler(name, fns.get(name)))

    def _handler(self, name: str, fn: Callable[[am.Event], object] | None) -> Callable[..., object]:
        def handler(e: am.Event) -> object:
            self.calls.append(name)
            return None if fn is None else fn(e)

        return handler


def all_handlers(states: str) -> list[str]:
    """Every per-state and global handler name for single-letter states."""
    names = ["AnyEnter", "AnyState"]
    for s in states:
        names += [f"{s}Enter", f"{s}Exit", f"{s}State", f"{s}End"]
        names += [f"{s}{t}" for t in states]
    return names


def active(mach: am.Machine) -> set[str]:
    """The active states as a set (compare sets unless the order is the point)."""
    return set(mach.active_states())


def logged(
    schema: dict[str, am.State], level: am.LogLevel = am.LogLevel.OPS, **kw: Any
) -> tuple[am.Machine, list[str]]:
    """A machine whose log lines (without the id prefix) are collected in a list."""
    lines: list[str] = []
    mach = am.Machine(
        schema, log_level=level, logger=lambda _lvl, msg: lines.append(msg), log_id=False, **kw
    )
    return mach, lines


CHROMIUM = "/usr/bin/chromium"
"""Debian's Chromium: Playwright cannot download its own browser here."""

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # no calls home: the sandbox has no outside network
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Every test ends with the same tasks running as it started with (use it with
    ``pytestmark = pytest.mark.usefixtures("no_leaked_tasks")`` after importing it)."""

    def others() -> set[asyncio.Task[Any]]:
        return asyncio.all_tasks() - {asyncio.current_task()}

    before = others()
    yield
    assert others() == before
