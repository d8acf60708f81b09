"""Worker pools on NATS: a supervisor registers its pool, a client finds it by kind."""

from __future__ import annotations

import sys

import pytest

if sys.platform == "emscripten":
    pytest.skip("needs nats-server and subprocesses", allow_module_level=True)

import asyncio
import importlib.util
from pathlib import Path
from typing import Any

from nats_support import NatsServer

from asyncmachine import node

WORKER = Path(__file__).resolve().parents[1] / "node" / "worker_app.py"


def _worker_schema() -> Any:
    spec = importlib.util.spec_from_file_location("nats_pool_worker_app", WORKER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SCHEMA


async def test_a_client_finds_supervisors_of_its_kind_on_nats(
    nats_server: NatsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NODE_TEST_DIR", str(tmp_path))
    schema = _worker_schema()
    cmd = [sys.executable, str(WORKER)]
    sup = node.Supervisor("test", cmd, schema, min=1, warm=0, max=1, nats=nats_server.url)
    # another pool kind on the same NATS (no workers needed to be found, or not)
    other = node.Supervisor("other", cmd, schema, min=0, warm=0, max=1, nats=nats_server.url)
    await sup.start()
    await other.start()
    client = node.Client("pool-user", "test", schema)
    try:
        await client.start(nats=nats_server.url)
        assert client.supervisor_url == sup.url  # its kind's, not the other pool's
        worker = await client.req_worker(timeout=20)
        assert worker.is1("Ready")
        await client.release_worker()
    finally:
        await client.stop()
        await other.stop()
        await sup.stop()
    lonely = node.Client("lonely", "nobody", schema)
    with pytest.raises(node.SupervisorError):
        await asyncio.wait_for(lonely.start(nats=nats_server.url), 20)
