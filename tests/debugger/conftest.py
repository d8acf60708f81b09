"""Fixtures for the debugger tests: a real am-dbg on 127.0.0.1 (port 0) and an inspector feed.

Importing this module needs no ``websockets``: the Pyodide run collects the pure tests of this
folder too, and the modules that need a server skip themselves there.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from dbg_support import Feed

from asyncmachine.telemetry import _debug_stream


@pytest_asyncio.fixture
async def dbg() -> AsyncIterator[Any]:
    """am-dbg on a free port; every stream opened during the test is closed after it."""
    if sys.platform == "emscripten":
        pytest.skip("am-dbg's server runs on CPython")
    pytest.importorskip("websockets")
    from asyncmachine.debugger import DebugServer

    server = DebugServer()
    await server.start("127.0.0.1", 0)
    try:
        yield server
    finally:
        await server.stop()
        for stream in list(_debug_stream._streams.values()):
            await stream.close()
        _debug_stream._streams.clear()


@pytest_asyncio.fixture
async def feed(dbg: Any) -> AsyncIterator[Feed]:
    """An inspector connected to ``dbg``, caught up with the session."""
    from websockets.asyncio.client import connect

    async with connect(f"ws://{dbg.addr}/ui", max_size=None) as ws:
        yield await Feed(ws).start(dbg.addr)
