"""Fixtures for the pool tests: real supervisors forking real worker processes on 127.0.0.1.

Every test's worker processes write their pids to a folder; at teardown every one of them must be
gone (checked in ``/proc``), so a leaked process fails the test that leaked it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from node_support import FAST, WORKER_CMD, alive, parent, pids


@pytest.fixture
def node_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NODE_TEST_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
async def pool(node_dir: Path) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """``await pool(min=.., warm=.., max=.., **Supervisor options)``: a started supervisor of
    kind ``test`` with fast timings. Teardown stops it and checks that no worker outlived it."""
    from worker_app import SCHEMA

    from asyncmachine import node

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
        if p.name.isdigit()
        and parent(p) == os.getpid()
        and alive(int(p.name))
        and b"_app.py" in _cmdline(p)  # this folder's programs (not, say, a test's browser)
    ]
    assert children == [], f"child processes left running: {children}"


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""


@pytest.fixture
async def clients() -> AsyncIterator[Callable[..., Any]]:
    """``clients(id)``: a ``node.Client`` of kind ``test``, stopped at teardown."""
    from worker_app import SCHEMA

    from asyncmachine import node

    made: list[node.Client] = []

    def make(client_id: str, **options: Any) -> node.Client:
        client = node.Client(client_id, "test", SCHEMA, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.stop()
