"""Small helpers shared by the §-organised engine tests."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import ModuleType
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


def import_file(path: Path, name: str) -> ModuleType:
    """A module from a file outside any package (``tools/*.py``, ``wasm-demo/server.py``)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look up their module while the class is built
    spec.loader.exec_module(module)
    return module
