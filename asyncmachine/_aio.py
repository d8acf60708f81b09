"""The asyncio adapter: the only place the I/O-free core touches an event loop.

Imported lazily, when a waiter or a context is awaited or a task is forked, so the engine itself
runs (and is tested) with no loop at all, and unchanged on Pyodide's WebLoop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

CancelledError = asyncio.CancelledError


def future_when(add_done_callback: Callable[[Callable[[Any], None]], None]) -> asyncio.Future[None]:
    """A future on the running loop that completes when the callback fires."""
    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def done(_: Any) -> None:
        if not fut.done():
            fut.set_result(None)

    add_done_callback(done)
    return fut


def start_task(coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
    """Start ``coro`` on the running loop (raises ``RuntimeError`` without one)."""
    return asyncio.get_running_loop().create_task(coro)


def is_cancelled_error(err: BaseException) -> bool:
    return isinstance(err, asyncio.CancelledError)
