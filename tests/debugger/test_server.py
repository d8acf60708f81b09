"""Machines streaming to a real am-dbg, over real WebSockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gzip
import json
import sys
import urllib.error
import urllib.request
from typing import Any

import pytest
from dbg_support import Feed, replay

import asyncmachine as am
from asyncmachine import telemetry
from asyncmachine.telemetry._debug_stream import dbg_url

pytestmark = pytest.mark.skipif(sys.platform == "emscripten", reason="needs sockets")

SCHEMA = {"A": am.State(remove=("B",)), "B": am.State(remove=("A",))}


def toggle(mach: am.Machine, n: int) -> None:
    for i in range(n):
        mach.add1("AB"[i % 2])


async def test_a_machine_appears_with_its_states_and_transitions(dbg: Any, feed: Feed) -> None:
    mach = am.Machine(SCHEMA, id="first")
    tracer = telemetry.debug(mach, dbg.addr)
    toggle(mach, 4)
    await feed.until(lambda m: len(feed.txs("first")) == 4)
    schema = feed.last("schema", "first")
    assert schema["names"] == ["A", "B", "Exception"]
    status = feed.last("status", "first")
    assert status["connected"] is True and status["proc"]["runtime"] == "cpython"
    assert replay(feed.msgs)["first"][-1][1] == mach.clock()
    # live: the next transition arrives on its own
    mach.add1("A")
    await feed.until(lambda m: len(feed.txs("first")) == 5, timeout=2)
    assert await tracer.flush()
    assert dbg.session.machines["first"].received == 6


async def test_an_inspector_connecting_later_gets_everything(dbg: Any) -> None:
    from websockets.asyncio.client import connect

    mach = am.Machine(SCHEMA, id="early")
    tracer = telemetry.debug(mach, dbg.addr)
    toggle(mach, 10)
    assert await tracer.flush()
    async with connect(f"ws://{dbg.addr}/ui") as ws:
        feed = await Feed(ws).start(dbg.addr)
        assert feed.msgs[0]["kind"] == "server" and feed.msgs[0]["machines"] == 1
        assert len(feed.txs("early")) == 10


async def test_disposed_and_exited_machines_stay_listed(dbg: Any, feed: Feed) -> None:
    mach = am.Machine(SCHEMA, id="short")
    tracer = telemetry.debug(mach, dbg.addr)
    mach.add1("A")
    mach.dispose()
    await feed.until(lambda m: any(x["kind"] == "dispose" for x in m))
    assert await tracer.flush()
    assert tracer.stream is not None
    await tracer.stream.close()  # the process "exits": its connection closes
    await feed.until(lambda m: feed.last("status", "short")["connected"] is False)
    assert feed.last("status", "short")["disposed"] is True
    assert "short" in dbg.session.machines


async def test_a_stopped_am_dbg_never_stops_the_machines(dbg: Any) -> None:
    """am-dbg goes away mid-stream: the machine keeps running, the outbox keeps the newest
    transitions and counts the rest; a new am-dbg on the same port gets exact clocks."""
    from asyncmachine.debugger import DebugServer

    mach = am.Machine(SCHEMA, id="steady")
    tracer = telemetry.debug(mach, dbg.addr, outbox_limit=100)
    toggle(mach, 10)
    assert await tracer.flush()
    port = dbg.port
    await dbg.stop()
    toggle(mach, 5000)  # synchronous: nothing can be sent meanwhile anyway
    assert mach.tick("A") + mach.tick("B") == 2 * 5010 - 1
    await asyncio.sleep(0)  # the sender notices the closed socket and starts retrying
    toggle(mach, 1000)
    outbox = tracer.outbox
    # kept: the newest 100; a batch may have gone into the dead socket; the rest counted
    assert len(outbox) == 100 and outbox.dropped_total >= 6000 - 100 - 1000
    again = DebugServer()
    await again.start("127.0.0.1", port)
    try:
        assert await tracer.flush(timeout=10)
        from websockets.asyncio.client import connect

        async with connect(f"ws://{again.addr}/ui", max_size=None) as ws:
            feed = await Feed(ws).start(again.addr)
        dropped = [m for m in feed.msgs if m["kind"] == "dropped"]
        assert sum(m["count"] for m in dropped) == outbox.dropped_total
        history = replay(feed.msgs)["steady"]
        assert len(history) == 100 and history[-1][1] == mach.clock()
    finally:
        await again.stop()


async def test_machine_stays_quick_with_no_am_dbg_at_all() -> None:
    """Nothing listens: connection attempts fail in the background; mutations never wait."""
    mach = am.Machine(SCHEMA, id="alone")
    tracer = telemetry.debug(mach, "127.0.0.1:9", outbox_limit=50)  # discard port: refused
    try:
        toggle(mach, 2000)
        for _ in range(3):
            await asyncio.sleep(0)
            toggle(mach, 10)
        assert len(tracer.outbox) == 50 and tracer.outbox.dropped_total > 1900
        assert not await tracer.flush(timeout=0.2)
    finally:
        assert tracer.stream is not None
        await tracer.stream.close()
        tracer.close()


async def test_mach_debug_env(dbg: Any, feed: Feed, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AM_DBG_ADDR", raising=False)
    assert telemetry.mach_debug_env(am.Machine(SCHEMA)) is None
    monkeypatch.setenv("AM_DBG_ADDR", dbg.addr)
    mach = am.Machine(SCHEMA, id="env")
    tracer = telemetry.mach_debug_env(mach)
    assert isinstance(tracer, telemetry.DebugTracer)
    mach.add1("B")
    await feed.until(lambda m: len(feed.txs("env")) == 1)


@pytest.mark.parametrize(
    ("addr", "url"),
    [
        ("1", "ws://127.0.0.1:6831/dbg"),
        ("localhost:7000", "ws://localhost:7000/dbg"),
        ("ws://h:1", "ws://h:1/dbg"),
        ("wss://h:1/x/dbg", "wss://h:1/x/dbg"),
    ],
)
def test_addresses(addr: str, url: str) -> None:
    assert dbg_url(addr) == url


@pytest.mark.parametrize("addr", ["", "host", "host:port", ":80", "h:70000", "ws://"])
def test_bad_addresses_are_refused(addr: str) -> None:
    with pytest.raises(ValueError, match="am-dbg address"):
        dbg_url(addr)
    with pytest.raises(ValueError, match="am-dbg address"):
        telemetry.debug(am.Machine(SCHEMA), addr)


def _get(url: str, origin: str | None = None) -> tuple[int, bytes, dict[str, str]]:
    headers = {"Origin": origin} if origin else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read(), dict(err.headers)


async def test_http_endpoints(dbg: Any) -> None:
    mach = am.Machine(SCHEMA, id="exp")
    tracer = telemetry.debug(mach, dbg.addr)
    toggle(mach, 3)
    assert await tracer.flush()
    base = f"http://{dbg.addr}"
    status, body, _ = await asyncio.to_thread(_get, base + "/api/info")
    assert status == 200 and json.loads(body)["tool"] == "am-dbg"
    status, body, headers = await asyncio.to_thread(_get, base + "/export.jsonl.gz")
    assert status == 200 and "attachment" in headers["Content-Disposition"]
    lines = gzip.decompress(body).decode().splitlines()
    assert replay(lines)["exp"][-1][1] == mach.clock()
    status, _, _ = await asyncio.to_thread(_get, base + "/nope")
    assert status == 404
    status, _, _ = await asyncio.to_thread(_get, base + "/ui", "https://evil.example")
    assert status == 403


async def test_foreign_origins_cannot_watch_but_local_pages_can(dbg: Any) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    with pytest.raises(InvalidStatus, match="403"):
        await connect(f"ws://{dbg.addr}/ui", origin="https://evil.example")  # type: ignore[arg-type]
    for origin in ("http://localhost:8000", "http://127.0.0.1:1234"):
        ws = await connect(f"ws://{dbg.addr}/ui", origin=origin)  # type: ignore[arg-type]
        await ws.close()


async def test_bad_messages_are_counted_and_the_rest_kept(dbg: Any, feed: Feed) -> None:
    from websockets.asyncio.client import connect

    mach = am.Machine(SCHEMA, id="ok")
    tracer = telemetry.debug(mach, dbg.addr)
    mach.add1("A")
    assert await tracer.flush()
    async with connect(f"ws://{dbg.addr}/dbg") as ws:
        await ws.send('{"kind":"hello","v":1}\nnot json\n{"kind":"dispose","id":"ok"}')
        await feed.until(lambda m: any(x["kind"] == "dispose" for x in m))
    assert dbg.session.machines["ok"].disposed
