"""A page asks a real supervisor for a worker and drives it (``requestWorker`` in
``asyncmachine.mjs``): real worker processes, Chromium, Pyodide."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

Page = Any
NODE_TESTS = Path(__file__).resolve().parents[1] / "node"


class PoolServer:
    """A ``node.Supervisor`` of kind ``test`` on its own loop in a thread (Playwright's sync
    API owns the test's thread)."""

    def __init__(self, folder: Path) -> None:
        sys.path.insert(0, str(NODE_TESTS))
        from node_support import FAST, WORKER_CMD
        from worker_app import SCHEMA

        from asyncmachine import node

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        env = {"NODE_TEST_DIR": str(folder)}
        self.sup = node.Supervisor(
            "test", WORKER_CMD, SCHEMA, min=1, warm=0, max=1, worker_env=env, **FAST
        )
        self.call(self.sup.start())
        self.call(_wait(self.sup.mach.when1("PoolReady")), 60)

    def call(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def workers(self) -> list[Any]:
        async def read() -> list[Any]:
            return self.sup.workers()

        return self.call(read())

    def close(self) -> None:
        self.call(self.sup.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


async def _wait(waiter: Any) -> None:
    await waiter


@pytest.fixture(scope="module")
def pool_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PoolServer]:
    pytest.importorskip("websockets")
    folder = tmp_path_factory.mktemp("node")
    server = PoolServer(folder)
    yield server
    server.close()
    pids = [int(p) for p in (folder / "pids").read_text().split()]
    assert not [p for p in pids if os.path.exists(f"/proc/{p}")], "worker processes leaked"


def test_a_page_requests_a_worker_drives_it_and_gives_it_back(
    bridge_page: tuple[Page, Any], pool_server: PoolServer
) -> None:
    page, _ = bridge_page
    out = page.evaluate(
        """async (url) => {
        const lease = await bridge.requestWorker(am, url, {kind: "test"});
        const w = lease.worker;
        const done = new Promise((resolve) => w.onPayload((name, data) => resolve({name, data})));
        const before = w.activeStates().sort();
        const result = await w.add1("WorkRequested", {job: "page-1", rounds: 1000});
        const payload = await done;
        await w.when1("WorkReady");
        const forbidden = await w.remove1("ServeClient").then(() => null, (e) => e.message);
        const pool = lease.supervisor.activeStates().sort();
        const id = lease.workerId;
        await lease.release();
        return {before, result, payload, forbidden, pool, id, disposed: w.isDisposed};
    }""",
        pool_server.sup.url,
    )
    assert {"Ready", "ServeClient", "ClientConnected", "Idle"} <= set(out["before"])
    assert out["result"] == 0
    assert out["payload"]["name"] == "done" and out["payload"]["data"]["job"] == "page-1"
    assert "forbidden" in out["forbidden"]
    assert "PoolReady" in out["pool"]
    assert out["disposed"] is True
    for _ in range(100):
        if [(w.id, w.status) for w in pool_server.workers()] == [(out["id"], "idle")]:
            break
        page.wait_for_timeout(50)
    assert [(w.id, w.status) for w in pool_server.workers()] == [(out["id"], "idle")]


def test_a_page_waits_for_a_busy_pool_within_its_timeout(
    bridge_page: tuple[Page, Any], pool_server: PoolServer
) -> None:
    page, _ = bridge_page
    out = page.evaluate(
        """async (url) => {
        const first = await bridge.requestWorker(am, url, {kind: "test"});
        const late = await bridge.requestWorker(am, url, {kind: "test", timeout: 700})
            .then(() => "got one", (e) => e.name);
        const waiting = bridge.requestWorker(am, url, {kind: "test", timeout: 10000});
        await new Promise((r) => setTimeout(r, 200));
        await first.release();
        const second = await waiting;
        const same = second.workerId === first.workerId;
        await second.release();
        const noKind = await bridge.requestWorker(am, url, {}).then(() => null, (e) => e.name);
        const other = await bridge.requestWorker(am, url, {kind: "nope", timeout: 3000})
            .then(() => null, (e) => e.name);
        return {late, same, noKind, other};
    }""",
        pool_server.sup.url,
    )
    assert out == {
        "late": "TimeoutError",
        "same": True,
        "noKind": "TypeError",
        "other": "RpcError",
    }
