"""Fixtures for the pool tests: real supervisors forking real worker processes on 127.0.0.1.

Every test's worker processes write their pids to a folder; at teardown every one of them must be
gone (checked in ``/proc``), so a leaked process fails the test that leaked it.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
WORKER_CMD = [sys.executable, str(HERE / "worker_app.py")]

FAST: dict[str, Any] = {
    "heartbeat": 0.25,
    "health_timeout": 1.0,
    "conn_timeout": 5.0,
    "pool_pause": 0.1,
}
"""Timings that keep fault tests short (seconds)."""


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


@pytest.fixture
def node_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NODE_TEST_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
async def pool(node_dir: Path) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """``await pool(min=.., warm=.., max=.., **Supervisor options)``: a started supervisor of
    kind ``test`` with fast timings. Teardown stops it and checks that no worker outlived it."""
    from asyncmachine import node
    from worker_app import SCHEMA

    started: list[node.Supervisor] = []

    async def start(**options: Any) -> node.Supervisor:
        opts = {**FAST, **options}
        sup = node.Supervisor("test", WORKER_CMD, SCHEMA, **opts)
        started.append(sup)
        await sup.start()
        return sup

    yield start
    for sup in started:
        await sup.stop()
    leaked = [pid for pid in pids(node_dir) if alive(pid)]
    assert leaked == [], f"worker processes left running: {leaked}"
    children = [
        p.name
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and _parent(p) == os.getpid() and alive(int(p.name))
    ]
    assert children == [], f"child processes left running: {children}"


def _parent(proc: Path) -> int:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return -1


@pytest.fixture
async def clients() -> AsyncIterator[Callable[..., Any]]:
    """``clients(id)``: a ``node.Client`` of kind ``test``, stopped at teardown."""
    from asyncmachine import node
    from worker_app import SCHEMA

    made: list[node.Client] = []

    def make(client_id: str, **options: Any) -> node.Client:
        client = node.Client(client_id, "test", SCHEMA, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.stop()
