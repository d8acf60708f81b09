"""Faults with real processes on 127.0.0.1: workers killed idle and mid-job, a hung worker,
workers that exit at start, the supervisor killed and restarted while a client holds a worker, a
client that vanishes. In each, the pool is back to ``PoolReady`` with ``min`` ready workers within
``RECOVER`` seconds, no client waits forever, no process outlives the test (the ``pool`` fixture
checks ``/proc``), and no job the client was told finished ran twice."""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("websockets")
if sys.platform == "emscripten":
    pytest.skip("needs subprocesses and listening sockets", allow_module_level=True)

import asyncio
import os
import signal
from collections import Counter
from pathlib import Path

from node_support import BOOT, CS, HERE, SS, WS, alive, pids, runs, until

import asyncmachine as am
from asyncmachine import node

RECOVER = 15.0
"""The bound within which the pool is back to PoolReady with min ready workers."""


async def recovered(sup: node.Supervisor, minimum: int) -> None:
    """PoolReady with ``minimum`` ready workers, within RECOVER seconds."""

    def ready() -> bool:
        count = sum(w.status in ("idle", "ready", "busy") for w in sup.workers())
        return sup.mach.is1(SS.PoolReady) and count >= minimum

    await until(ready, RECOVER, f"PoolReady with {minimum} ready workers")


class Done:
    """Jobs the client was told finished (payloads ``done``)."""

    def __init__(self) -> None:
        self.jobs: list[str] = []

    def WorkerPayloadState(self, e: am.Event) -> None:
        if e.args["name"] == "done":
            self.jobs.append(e.args["data"]["job"])


def no_job_ran_twice(folder: Path, told: list[str]) -> None:
    counts = Counter(runs(folder))
    assert all(counts[job] == 1 for job in told), (told, counts)


async def test_a_worker_killed_while_idle_is_replaced(pool, node_dir) -> None:
    sup = await pool(min=2, warm=0, max=3)
    await asyncio.wait_for(sup.mach.when1(SS.PoolReady), BOOT)
    victim = sup.workers()[0]
    errors = sup.mach.tick(SS.ErrWorker)
    os.kill(victim.pid, signal.SIGKILL)
    await until(lambda: sup.mach.tick(SS.ErrWorker) > errors, RECOVER, "ErrWorker")
    await recovered(sup, 2)
    assert victim.id not in [w.id for w in sup.workers()]
    assert not alive(victim.pid)
    assert sup.mach.not_([SS.ErrWorker, am.EXCEPTION])  # handled: the error cleared itself


async def test_a_worker_killed_mid_job_surfaces_as_err_worker_and_a_new_one_serves(
    pool, clients, node_dir
) -> None:
    sup = await pool(min=2, warm=0, max=2)
    await asyncio.wait_for(sup.mach.when1(SS.PoolReady), BOOT)
    client = clients("busy")
    done = Done()
    client.mach.bind_handlers(done)
    await client.start([sup.url])
    worker = await client.req_worker(timeout=10)
    await worker.add1(WS.WorkRequested, {"job": "j1", "rounds": 10, "hold": 30})
    await asyncio.wait_for(worker.when1(WS.Working), 5)
    pid = next(w.pid for w in sup.workers() if w.id == worker.id)
    os.kill(pid, signal.SIGKILL)
    await asyncio.wait_for(client.mach.when1(CS.ErrWorker), 10)
    assert client.worker is None and client.mach.not1(CS.WorkerReady)

    # the client was told nothing finished: it sends the job again, to a fresh worker
    fresh = await client.req_worker(timeout=RECOVER)
    assert fresh.id != worker.id
    await fresh.add1(WS.WorkRequested, {"job": "j1", "rounds": 10})
    await asyncio.wait_for(client.mach.when1(CS.WorkerPayload), 10)
    assert done.jobs == ["j1"]
    no_job_ran_twice(node_dir, done.jobs)
    await recovered(sup, 2)


async def test_a_hung_worker_fails_its_health_check_and_is_replaced(pool, node_dir) -> None:
    sup = await pool(min=1, warm=1, max=2)
    await asyncio.wait_for(sup.mach.when1(SS.PoolReady), BOOT)
    await until(lambda: len([w for w in sup.workers() if w.status == "idle"]) == 2, BOOT, "2 idle")
    victim = sup.workers()[0]
    reasons: list[str] = []

    class Errors:
        def ErrWorkerState(self, e: am.Event) -> None:
            reasons.append(e.args.get("reason", ""))

    sup.mach.bind_handlers(Errors())
    os.kill(victim.pid, signal.SIGSTOP)  # alive, but answers nothing
    try:
        await until(lambda: bool(reasons), RECOVER, "ErrWorker for the hung worker")
        assert "heartbeat" in reasons[0] or "Healthcheck" in reasons[0]
        await until(lambda: not alive(victim.pid), 5, "the hung worker killed")
    finally:
        if alive(victim.pid):
            os.kill(victim.pid, signal.SIGKILL)
    await recovered(sup, 1)
    await until(lambda: len(sup.workers()) == 2, RECOVER, "the pool refilled")


async def test_workers_that_exit_at_start_show_err_pool_then_the_pool_recovers(
    pool, node_dir, monkeypatch
) -> None:
    failing = node_dir / "exit-count"
    failing.write_text("4")  # the first four starts exit with status 3
    monkeypatch.setenv("NODE_TEST_EXIT", str(failing))
    sup = await pool(min=1, warm=0, max=1, max_start_failures=2)
    await asyncio.wait_for(sup.mach.when1(SS.ErrPool), BOOT)
    assert sup.mach.not1(SS.PoolReady)
    await asyncio.wait_for(sup.mach.when1(SS.PoolReady), BOOT)
    assert sup.mach.not_([SS.ErrPool, am.EXCEPTION])
    assert failing.read_text() == "0"
    await recovered(sup, 1)
    assert len(pids(node_dir)) == 5  # four failed, one serves


async def test_the_supervisor_killed_and_restarted_while_a_client_holds_a_worker(
    clients, node_dir
) -> None:
    loop = asyncio.get_running_loop()

    async def supervisor(port: int) -> tuple[asyncio.subprocess.Process, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(HERE / "supervisor_app.py"),
            str(port),
            stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), BOOT)
        return proc, line.decode().strip()

    first, url = await supervisor(0)
    procs = [first]
    try:
        client = clients("holder")
        await client.start([url])
        worker = await client.req_worker(timeout=10)
        held_pids = pids(node_dir)
        first.kill()
        await first.wait()
        # its workers notice they are orphans and exit; the client hears of both losses
        await asyncio.wait_for(client.mach.when1(CS.ErrWorker), RECOVER)
        await asyncio.wait_for(client.mach.when1(CS.ErrSupervisor), RECOVER)
        assert client.worker is None and client.mach.not1(CS.SuperReady)
        await until(lambda: not any(alive(p) for p in held_pids), RECOVER, "orphans exited")
        started = loop.time()
        # a request meanwhile fails within its timeout instead of hanging
        with pytest.raises(TimeoutError):
            await client.req_worker(timeout=0.5)

        port = int(url.rsplit(":", 1)[1])
        second, url2 = await supervisor(port)
        procs.append(second)
        assert url2 == url
        await asyncio.wait_for(client.mach.when1(CS.SuperReady), RECOVER)
        fresh = await client.req_worker(timeout=RECOVER)
        assert fresh.id != worker.id and fresh.is1(WS.ClientConnected)
        assert loop.time() - started < 2 * RECOVER
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.terminate()
                await proc.wait()
    await until(lambda: not any(alive(p) for p in pids(node_dir)), RECOVER, "no worker left")


async def test_a_client_that_vanishes_gives_its_worker_back(pool, node_dir) -> None:
    sup = await pool(min=1, warm=0, max=1)
    await asyncio.wait_for(sup.mach.when1(SS.PoolReady), BOOT)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(HERE / "client_app.py"), sup.url, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        worker_id = (await asyncio.wait_for(proc.stdout.readline(), BOOT)).decode().strip()
        assert [(w.id, w.status) for w in sup.workers()] == [(worker_id, "busy")]
    finally:
        proc.kill()
        await proc.wait()
    await until(
        lambda: [(w.id, w.status) for w in sup.workers()] == [(worker_id, "idle")],
        RECOVER,
        "the worker back in the pool",
    )
    assert sup.mach.is_([SS.PoolReady, SS.WorkersAvailable])


async def test_a_worker_that_errs_too_often_is_replaced(pool, clients, node_dir) -> None:
    sup = await pool(min=1, warm=0, max=1, max_errors=2)
    await asyncio.wait_for(sup.mach.when1(SS.PoolReady), BOOT)
    client = clients("unlucky")
    await client.start([sup.url])
    worker = await client.req_worker(timeout=10)
    first = worker.id
    for n in range(3):
        before = worker.tick(am.EXCEPTION)
        await worker.add1(WS.WorkRequested, {"job": f"bad{n}", "rounds": 1, "fail": True})

        def erred(before: int = before) -> bool:
            return worker.tick(am.EXCEPTION) > before or client.worker is None

        await until(erred, 5, "the error")
        if client.worker is None:
            break
    await asyncio.wait_for(client.mach.when1(CS.ErrWorker), RECOVER)
    await recovered(sup, 1)
    assert [w.id for w in sup.workers()] != [first]
    assert runs(node_dir) == []
