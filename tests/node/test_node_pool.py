"""The pool's normal life: start, lend a worker, drive it, take it back; who may do what; bad
input. Real supervisor, real worker processes, real WebSockets on 127.0.0.1."""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("websockets")
if sys.platform == "emscripten":
    pytest.skip("needs subprocesses and listening sockets", allow_module_level=True)

import asyncio
from typing import Any

from node_support import BOOT, CS, SS, WORKER_CMD, WS, runs, until
from worker_app import SCHEMA

import asyncmachine as am
from asyncmachine import node, rpc


class Payloads:
    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def WorkerPayloadState(self, e: am.Event) -> None:
        self.seen.append(dict(e.args))


async def test_a_client_gets_a_worker_drives_it_and_gives_it_back(pool, clients, node_dir) -> None:
    sup = await pool(min=2, warm=1, max=3)
    await asyncio.wait_for(sup.mach.when([SS.PoolReady, SS.WorkersAvailable]), BOOT)
    assert sup.mach.not1(SS.PoolStarting)
    assert len(sup.workers()) == 3  # min + warm

    client = clients("c1")
    payloads = Payloads()
    client.mach.bind_handlers(payloads)
    await client.start([sup.url])
    assert client.mach.is1(CS.SuperReady)
    worker = await client.req_worker(timeout=10)
    assert client.mach.is_([CS.WorkerReady, CS.Ready]) and client.worker is worker
    assert client.mach.not1(CS.WorkerRequested)
    busy = [w for w in sup.workers() if w.status == "busy"]
    assert [(w.id, w.client_id) for w in busy] == [(worker.id, "c1")]
    assert worker.is_([WS.Ready, WS.ServeClient, WS.ClientConnected, WS.Idle])

    assert await worker.add1(WS.WorkRequested, {"job": "j1", "rounds": 100}) == am.Executed
    await asyncio.wait_for(worker.when1(WS.WorkReady), 10)
    await asyncio.wait_for(client.mach.when1(CS.WorkerPayload), 5)
    assert payloads.seen[0]["name"] == "done"
    assert payloads.seen[0]["data"]["job"] == "j1" and payloads.seen[0]["source"] == worker.id
    assert runs(node_dir) == ["j1"]

    worker_id = worker.id
    await client.release_worker()
    assert client.worker is None and client.mach.not1(CS.WorkerReady)
    await asyncio.wait_for(_status(sup, worker_id, "idle"), 5)
    # a second request gets a worker again (maybe the same process, with a new token)
    again = await client.req_worker(timeout=10)
    assert again.is1(WS.ClientConnected)


async def _status(sup: node.Supervisor, worker_id: str, status: str) -> None:
    while not any(w.id == worker_id and w.status == status for w in sup.workers()):
        await asyncio.sleep(0.02)


async def test_the_token_is_for_that_client_only_and_dies_with_the_release(pool, clients) -> None:
    sup = await pool(min=1, warm=0, max=1)
    await asyncio.wait_for(sup.mach.when1(SS.PoolReady), BOOT)
    client = clients("owner")
    await client.start([sup.url])
    assigned: list[dict[str, Any]] = []
    assert client._super is not None
    client._super.on_payload(lambda name, data, m: assigned.append(data))
    worker = await client.req_worker(timeout=10)
    token, url = assigned[0]["token"], assigned[0]["url"]

    # another client id with the same token is refused; so is a made-up token
    for cid, tok in (("thief", token), ("owner", "guess")):
        with pytest.raises(rpc.AuthError):
            await rpc.Client(url, token=tok, client_id=cid).connect(5)
    # the client may drive the work group, nothing else
    with pytest.raises(rpc.RpcError, match="forbidden"):
        await worker.remove1(WS.ServeClient)
    with pytest.raises(rpc.RpcError, match="forbidden"):
        await worker.add1(WS.Healthcheck)
    assert client.supervisor is not None
    with pytest.raises(rpc.RpcError, match="forbidden"):
        await client.supervisor.remove1(SS.PoolReady)
    with pytest.raises(rpc.RpcError, match="forbidden"):
        await client.supervisor.add1(SS.WorkerAddr, {"url": "ws://127.0.0.1:1"})

    await client.release_worker()
    with pytest.raises(rpc.AuthError):
        await rpc.Client(url, token=token, client_id="owner").connect(5)


async def test_requests_wait_for_a_free_worker_oldest_first(pool, clients) -> None:
    sup = await pool(min=1, warm=0, max=1)
    await asyncio.wait_for(sup.mach.when1(SS.PoolReady), BOOT)
    first, second = clients("first"), clients("second")
    await first.start([sup.url])
    await second.start([sup.url])
    held = await first.req_worker(timeout=10)
    assert sup.mach.not1(SS.WorkersAvailable)
    with pytest.raises(TimeoutError):
        await second.req_worker(timeout=0.5)
    assert second.mach.not1(CS.WorkerRequested)
    waiting = asyncio.ensure_future(second.req_worker(timeout=10))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    await first.release_worker()
    got = await asyncio.wait_for(waiting, 10)
    assert got.id == held.id and second.mach.is1(CS.WorkerReady)
    assert [w.client_id for w in sup.workers()] == ["second"]


async def test_a_client_leaving_the_supervisor_gives_its_worker_back(pool, clients) -> None:
    sup = await pool(min=1, warm=0, max=1)
    await asyncio.wait_for(sup.mach.when1(SS.PoolReady), BOOT)
    client = clients("leaver")
    await client.start([sup.url])
    worker = await client.req_worker(timeout=10)
    assert client._super is not None
    await client._super.close()  # gone from the supervisor, still connected to the worker
    await asyncio.wait_for(client.mach.when1(CS.ErrWorker), 10)  # taken back
    assert client.worker is None
    await asyncio.wait_for(_status(sup, worker.id, "idle"), 5)
    assert sup.mach.is1(SS.WorkersAvailable)


async def test_start_tries_supervisors_in_order_and_fails_clearly(pool, clients) -> None:
    sup = await pool(min=0, warm=0, max=1)
    client = clients("picky")
    await client.start(["ws://127.0.0.1:1", sup.url])  # nothing listens on port 1
    assert client.supervisor_url == sup.url
    lost = clients("lost")
    with pytest.raises(node.SupervisorError, match="no supervisor answered"):
        await lost.start(["ws://127.0.0.1:1"])
    assert lost.mach.is_([CS.ErrSupervisor, am.EXCEPTION]) and lost.mach.not1(CS.Start)
    # a supervisor of another kind does not count
    other = node.Client("other", "not-test", SCHEMA, conn_timeout=2)
    with pytest.raises(node.SupervisorError):
        await other.start([sup.url])
    await other.stop()


async def test_bad_input_is_refused_with_a_clear_error(pool, clients) -> None:
    with pytest.raises(TypeError, match="argv"):
        node.Supervisor("test", "python worker.py", SCHEMA)
    with pytest.raises(TypeError, match="strings"):
        node.Supervisor("test", ["python", 3], SCHEMA)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="over max"):
        node.Supervisor("test", WORKER_CMD, SCHEMA, min=3, max=2)
    with pytest.raises(ValueError, match="min >= 0"):
        node.Supervisor("test", WORKER_CMD, SCHEMA, warm=-1)
    with pytest.raises(ValueError, match="WORKER_SCHEMA"):
        node.Supervisor("test", WORKER_CMD, {"Foo": am.State()})
    with pytest.raises(ValueError, match="kind"):
        node.Supervisor("", WORKER_CMD, SCHEMA)
    with pytest.raises(ValueError, match="client id"):
        node.Client("", "test", SCHEMA)
    client = clients("early")
    with pytest.raises(RuntimeError, match="start"):
        await client.req_worker()
    with pytest.raises(TypeError, match="list of supervisor URLs"):
        await client.start("ws://127.0.0.1:1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="--supervisor"):
        node.run_worker(SCHEMA, None, kind="test", argv=[])

    # over RPC: a request without a request id, a release of someone else's worker: canceled
    sup = await pool(min=1, warm=0, max=1)
    await asyncio.wait_for(sup.mach.when1(SS.PoolReady), BOOT)
    owner, other = clients("owner"), clients("other")
    await owner.start([sup.url])
    await other.start([sup.url])
    worker = await owner.req_worker(timeout=10)
    assert other.supervisor is not None
    assert await other.supervisor.add1(SS.WorkerRequested) == am.Canceled
    assert await other.supervisor.add1(SS.WorkerRequested, {"req": 5}) == am.Canceled
    assert await other.supervisor.add1(SS.WorkerReleased, {"worker_id": worker.id}) == am.Canceled
    assert owner.mach.is1(CS.WorkerReady) and [w.client_id for w in sup.workers()] == ["owner"]
    # the worker's own guards: a job without a client is no job
    assert await worker.add1(WS.WorkRequested, {"job": "ok", "rounds": 1}) == am.Executed


async def test_a_supervisor_refuses_a_client_id_taken_by_another_principal(pool) -> None:
    table = {"t-alice": rpc.Principal("alice"), "t-bob": rpc.Principal("bob")}
    sup = await pool(min=0, warm=0, max=1, authenticate=rpc.tokens(table))
    alice = node.Client("shared-id", "test", SCHEMA, token="t-alice")
    await alice.start([sup.url])
    bob = node.Client("shared-id", "test", SCHEMA, token="t-bob", conn_timeout=2)
    with pytest.raises(node.SupervisorError):
        await bob.start([sup.url])
    nobody = node.Client("nobody", "test", SCHEMA, token="wrong", conn_timeout=2)
    with pytest.raises(node.SupervisorError, match="auth"):
        await nobody.start([sup.url])
    for c in (alice, bob, nobody):
        await c.stop()


async def test_release_and_request_at_once_never_ends_the_new_assignment(pool, clients) -> None:
    sup = await pool(min=1, warm=0, max=1)
    await asyncio.wait_for(sup.mach.when1(SS.PoolReady), BOOT)
    client = clients("quick")
    await client.start([sup.url])
    for _ in range(8):
        worker = await client.req_worker(timeout=10)
        await client.release_worker()  # the next request races the release
    worker = await client.req_worker(timeout=10)
    await asyncio.sleep(0.5)  # what a late release would have ended by now
    assert client.mach.is1(CS.WorkerReady) and client.mach.not1(CS.ErrWorker)
    assert worker.is1(WS.ClientConnected)
    assert [(w.status, w.client_id) for w in sup.workers()] == [("busy", "quick")]


async def test_am_dbg_sees_the_supervisor_and_its_workers(pool, monkeypatch) -> None:
    from asyncmachine.debugger import DebugServer
    from asyncmachine.telemetry import _debug_stream

    dbg = DebugServer()
    await dbg.start("127.0.0.1", 0)
    monkeypatch.setenv("AM_DBG_ADDR", dbg.addr)  # the workers inherit it
    try:
        sup = await pool(min=1, warm=0, max=1)
        await asyncio.wait_for(sup.mach.when1(SS.PoolReady), BOOT)
        worker_id = sup.workers()[0].id
        await until(
            lambda: {"ns-test", worker_id} <= set(dbg.session.machines), 10, "both in am-dbg"
        )
    finally:
        for stream in list(_debug_stream._streams.values()):
            await stream.close()
        _debug_stream._streams.clear()
        await dbg.stop()


async def test_a_stranger_cannot_join_the_pool(pool, node_dir) -> None:
    """A worker started by hand (``--supervisor``, ``--id``, ``--secret``) that the supervisor
    did not fork is refused and exits with status 1."""
    sup = await pool(min=1, warm=0, max=2)
    await asyncio.wait_for(sup.mach.when1(SS.PoolReady), BOOT)
    known = [w.id for w in sup.workers()]
    for worker_id in ("stranger", known[0]):  # an unknown id, and a known id without its secret
        proc = await asyncio.create_subprocess_exec(
            *WORKER_CMD, "--supervisor", sup.url, "--id", worker_id, "--secret", "guess",
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await asyncio.wait_for(proc.communicate(), BOOT)
        assert proc.returncode == 1
        assert b"cannot report" in err
    assert [w.id for w in sup.workers()] == known
