"""Helpers of the pool tests: the worker command, fast timings, the process table."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asyncmachine import node

SS = node.SupervisorStates()
CS = node.ClientStates()
WS = node.WorkerStates()
BOOT = 20.0
"""Seconds for a pool to become ready on a loaded 2-core machine (a safety net)."""
HERE = Path(__file__).resolve().parent
WORKER_CMD = [sys.executable, str(HERE / "worker_app.py")]
FAST: dict[str, Any] = {
    "heartbeat": 0.5,
    "health_timeout": 3.0,
    "conn_timeout": 5.0,
    "pool_pause": 0.1,
}
"""Timings that keep fault tests short (seconds), with room for a loaded machine: a health check
that a busy CI runner delays a little must not kill a healthy worker."""


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (``/proc/<pid>/stat``)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def pids(folder: Path) -> list[int]:
    path = folder / "pids"
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def runs(folder: Path) -> list[str]:
    """The jobs that ran to the end, one per line (``<job> <pid>``)."""
    path = folder / "runs"
    return [line.split()[0] for line in path.read_text().splitlines()] if path.exists() else []


async def until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``check`` (for facts outside any machine: the process table) within ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        await asyncio.sleep(0.05)


def parent(proc: Path) -> int:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return -1
