"""Waiting for an event with a deadline, as the push exporters' tasks do between pushes."""

from __future__ import annotations

import asyncio
import contextlib


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait until ``event`` is set or ``timeout`` seconds pass; True when it was set.

    ``asyncio.timeout`` rather than ``wait_for``: on Python 3.11, ``wait_for`` can swallow a
    cancellation that arrives as the awaited event fires.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()
    return event.is_set()
