"""Small helpers shared by the engine tests."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http.server
import importlib.util
import os
import re
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
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


CHROMIUM = os.environ.get("CHROMIUM") or "/usr/bin/chromium"
"""The browser the tests drive: ``$CHROMIUM`` (``make test CHROMIUM=/path``), else Debian's
Chromium (Playwright cannot download its own browser here)."""

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


@dataclass
class Watch:
    """What the pages did that they must not: console errors and requests leaving 127.0.0.1."""

    errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    expected: list[re.Pattern[str]] = field(default_factory=list)
    """Console errors the current test causes on purpose (the browser reports failed sockets)."""

    def console_error(self, text: str) -> None:
        if not any(pattern.search(text) for pattern in self.expected):
            self.errors.append(text)

    def check(self) -> None:
        """Fail on what was seen since the last check, and start over."""
        errors, blocked = list(self.errors), list(self.blocked)
        self.errors.clear()
        self.blocked.clear()
        self.expected.clear()
        assert errors == [], f"console errors: {errors}"
        assert blocked == [], f"requests left 127.0.0.1: {blocked}"


LOCAL = ("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")


async def keep_local(context: Any, watch: Watch) -> None:
    """Let an (async) Playwright browser context reach 127.0.0.1 only; the rest is blocked and
    recorded in ``watch``."""

    async def route(route: Any) -> None:
        if route.request.url.startswith(LOCAL):
            await route.continue_()
        else:
            watch.blocked.append(route.request.url)
            await route.abort()

    await context.route("**/*", route)


def watch_page(page: Any, watch: Watch) -> Any:
    """Send a page's console errors and uncaught exceptions to ``watch``."""
    page.on("console", lambda msg: msg.type == "error" and watch.console_error(msg.text))
    page.on("pageerror", lambda err: watch.errors.append(str(err)))
    return page


@contextlib.contextmanager
def serve_files(root: Path, pages: dict[str, Path] | None = None) -> Iterator[str]:
    """``root`` over HTTP on a free port of 127.0.0.1 (plus ``pages``: URL path -> file), in a
    thread; yields the base URL."""
    extra = pages or {}

    class Handler(http.server.SimpleHTTPRequestHandler):
        def translate_path(self, path: str) -> str:
            page = extra.get(path.split("?")[0])
            return str(page) if page else super().translate_path(path)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    handler = functools.partial(Handler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
def import_file(path: Path, name: str) -> ModuleType:
    """A module from a file outside any package (``tools/*.py``, ``wasm-demo/server.py``)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look up their module while the class is built
    spec.loader.exec_module(module)
    return module
