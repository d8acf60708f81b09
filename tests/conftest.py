"""Test configuration shared by the CPython and the Pyodide runs of the suite."""

from __future__ import annotations

import sys

if sys.platform == "emscripten":  # pragma: no cover - only inside Pyodide
    import asyncio
    import contextvars
    from typing import Any

    import pytest_asyncio.plugin

    class WebLoopRunner:
        """pytest-asyncio's ``asyncio.Runner``, reusing Pyodide's always-running WebLoop.

        ``asyncio.Runner`` refuses to start inside a running loop, and in Pyodide the browser's
        loop is always running; with JSPI, ``run_until_complete`` can still drive it.
        """

        def __init__(self, debug: bool | None = None, loop_factory: Any = None) -> None:
            self._loop = asyncio.get_event_loop()

        def __enter__(self) -> WebLoopRunner:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def close(self) -> None:
            return None

        def get_loop(self) -> asyncio.AbstractEventLoop:
            return self._loop

        def run(self, coro: Any, *, context: contextvars.Context | None = None) -> Any:
            task = self._loop.create_task(coro, context=context)
            return self._loop.run_until_complete(task)

    pytest_asyncio.plugin.Runner = WebLoopRunner  # type: ignore[misc,assignment]
