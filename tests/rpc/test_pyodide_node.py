"""The Pyodide RPC client under Node against a real server on 127.0.0.1 (CPython drives both)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
from pathlib import Path

import pytest

pytest.importorskip("websockets")
if sys.platform == "emscripten":
    pytest.skip("drives Node from CPython", allow_module_level=True)

import asyncmachine as am
from asyncmachine import rpc

ROOT = Path(__file__).resolve().parents[2]
TESTDIST = ROOT / "build" / "testdist"


class Pong:
    """Answers a ``Counter`` add carrying ``payload: ping`` with a payload to its author."""

    def __init__(self, server: rpc.Server) -> None:
        self.server = server

    def CounterState(self, e: am.Event) -> None:
        if e.args.get("payload") == "ping":
            self.server.send_payload("pong", {"to": "pyodide-2"}, client="pyodide-2")


async def test_pyodide_client_against_server() -> None:
    if not (TESTDIST / "pyodide-lock.json").exists() or shutil.which("node") is None:
        pytest.fail("build/testdist and node are needed: run `make testdist`")
    mach = am.Machine(
        {"A": am.State(), "B": am.State(require=("A",)), "Counter": am.State(multi=True)},
        id="shared",
    )
    server = rpc.Server(
        [mach],
        path="/rpc",
        authenticate=lambda token, conn: rpc.Principal(conn.client_id) if token is None else None,
    )
    mach.bind_handlers(Pong(server))
    await server.start()
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # a port nobody listens on
        refused = f"ws://127.0.0.1:{closed.getsockname()[1]}/rpc"
    env = {**os.environ, "AM_TEST_RPC_URL": server.url, "AM_TEST_REFUSED_URL": refused}
    proc = await asyncio.create_subprocess_exec(
        "node",
        "--experimental-wasm-stack-switching",
        str(ROOT / "tools" / "run_pyodide_pytest.mjs"),
        str(TESTDIST),
        str(ROOT),
        "tests/pyodide_rpc",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(120):
            out, _ = await proc.communicate()
    finally:
        await server.stop()
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-3000:]
    assert "5 passed" in text, text[-3000:]
    assert mach.is_(["Counter", "Exception"]) and not mach.any1("A", "B")
    err = mach.err()
    assert isinstance(err, rpc.RemoteError) and err.type_name == "OverflowError"
