"""Loki streams: the push API's JSON body and labels as a Loki-push receiver validates them,
batching, the level map, the user's logger left as it was, and a backend that is down, slow,
failing or refusing (Loki itself is not installable here: the receiver plays its push API)."""

from __future__ import annotations

import sys

import pytest

if sys.platform == "emscripten":
    pytest.skip("telemetry exporters need sockets", allow_module_level=True)

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from telemetry_backends import Receiver, Request, free_port

import asyncmachine as am
from asyncmachine.telemetry import loki
from asyncmachine.telemetry._levels import ERROR, severity
from asyncmachine.telemetry._logtap import tap_log

pytestmark = pytest.mark.usefixtures("closing")

SCHEMA: am.Schema = {"A": am.State(), "B": am.State(require=("A",))}
LEVELS = {"error", "info", "debug"}

MakeReceiver = Callable[[], Awaitable[Receiver]]

_handles: list[loki.LokiHandle] = []


@pytest.fixture
async def closing() -> AsyncIterator[None]:
    """Close every handle a test made (a failing test leaves no push task behind)."""
    yield
    while _handles:
        await _handles.pop().close()


def bind(mach: am.Machine, url: str, **client: Any) -> loki.LokiHandle:
    """A handle with its own client (options as ``LokiClient``'s) or ``bind_loki``'s shared one."""
    if client:
        handle = loki.LokiHandle(mach, loki.LokiClient(url, **client), "tests")
    else:
        handle = loki.bind_loki(mach, url, service="tests")
    _handles.append(handle)
    return handle


def validate_push(req: Request) -> list[tuple[dict[str, str], str, str]]:
    """Check one request as Loki's push API would; return its ``(labels, ts, line)`` entries."""
    assert req.method == "POST"
    assert req.path == "/loki/api/v1/push"
    assert req.headers["Content-Type"] == "application/json"
    body = json.loads(req.body)
    assert set(body) == {"streams"}
    entries = []
    for stream in body["streams"]:
        assert set(stream) == {"stream", "values"}
        labels = stream["stream"]
        assert set(labels) == {"service_name", "asyncmachine_id", "level"}
        assert all(isinstance(v, str) and v for v in labels.values())
        assert labels["level"] in LEVELS
        assert stream["values"], "a stream without lines"
        for value in stream["values"]:
            assert isinstance(value, list) and len(value) == 2
            ts, line = value
            assert isinstance(ts, str) and ts.isdigit()
            assert isinstance(line, str)
            entries.append((labels, ts, line))
    return entries


def entries(rec: Receiver) -> list[tuple[dict[str, str], str, str]]:
    return [e for req in rec.requests for e in validate_push(req)]


def lines(rec: Receiver) -> list[tuple[str, str]]:
    """``(level, line)`` of everything received, in time order (a push groups them by stream)."""
    ordered = sorted(entries(rec), key=lambda e: int(e[1]))
    return [(labels["level"], line) for labels, _, line in ordered]


# ---------------------------------------------------------------------- levels


def test_level_map() -> None:
    assert severity(am.LogLevel.CHANGES, "[error] boom") is ERROR
    assert severity(am.LogLevel.OPS, "[error:add] A (boom)") is ERROR
    assert severity(am.LogLevel.EXTERNAL, "[exter] hi").name == "info"
    assert severity(am.LogLevel.CHANGES, "[state] +A").name == "info"
    assert severity(am.LogLevel.OPS, "[add] A").name == "info"
    assert severity(am.LogLevel.DECISIONS, "[add:auto] C").name == "debug"
    assert severity(am.LogLevel.EVERYTHING, "[handle] AEnter").name == "debug"
    numbers = [severity(lv, "x").otel_number for lv in list(am.LogLevel)[1:]]
    assert numbers == sorted(numbers, reverse=True)  # finer inside each level, same order


@pytest.mark.parametrize("log_id", [True, False])
def test_sinks_get_lines_without_the_id_prefix(log_id: bool) -> None:
    got: list[str] = []
    mach = am.Machine(SCHEMA, id="abcdef123", log_id=log_id)
    tap = tap_log(mach, lambda body, sev: got.append(body))
    mach.add1("A")
    tap(am.LogLevel.CHANGES, "[abcdef123] [state] +B")  # a line prefixed with the full id
    tap(am.LogLevel.CHANGES, "[abcdef12] [state] +C")  # neither the short nor the full id
    assert got == ["[state] +A", "[state] +B", "[abcdef12] [state] +C"]


# ---------------------------------------------------------------------- the push API


async def test_lines_labels_and_levels(receiver: MakeReceiver) -> None:
    rec = await receiver()
    mach = am.Machine(SCHEMA, id="loki-mach-1")
    mach.bind_handlers(am.ExceptionHandler())
    before = time.time_ns()
    handle = bind(mach, rec.url)
    mach.add1("A")
    mach.log("hello\nworld")
    mach.add_err(ValueError("boom"))
    mach.remove1("A")
    await handle.flush()
    got = entries(rec)
    assert {labels["service_name"] for labels, _, _ in got} == {"tests"}
    assert {labels["asyncmachine_id"] for labels, _, _ in got} == {"loki-mach-1"}
    assert all(before <= int(ts) <= time.time_ns() for _, ts, _ in got)
    assert lines(rec) == [
        ("info", "[state] +A"),
        ("info", "[exter] hello world"),
        ("info", "[state] +Exception"),
        ("error", "[error] boom"),
        ("info", "[state] -A"),
    ]
    assert handle.dropped == 0
    assert handle.client.pushed == 5


async def test_error_with_traceback_is_one_error_line(receiver: MakeReceiver) -> None:
    rec = await receiver()
    mach = am.Machine(SCHEMA)
    mach.bind_handlers(am.ExceptionHandler())

    class Raising:
        def AState(self, e: am.Event) -> None:
            raise RuntimeError("in a handler")

    mach.bind_handlers(Raising())
    handle = bind(mach, rec.url)
    mach.add1("A")
    await handle.flush()
    errors = [line for level, line in lines(rec) if level == "error"]
    assert len(errors) == 1
    assert errors[0].startswith("[error:add] A (in a handler)\nTraceback")


async def test_debug_lines_when_the_machine_logs_them(receiver: MakeReceiver) -> None:
    rec = await receiver()
    mach = am.Machine(SCHEMA, log_level=am.LogLevel.EVERYTHING, logger=lambda lv, m: None)
    handle = bind(mach, rec.url)
    mach.add1("A")
    await handle.flush()
    got = lines(rec)
    assert ("info", "[add] A") in got
    assert any(level == "debug" for level, _ in got)


async def test_users_logger_and_level_are_kept(receiver: MakeReceiver) -> None:
    rec = await receiver()
    own: list[tuple[am.LogLevel, str]] = []

    def logger(level: am.LogLevel, msg: str) -> None:
        own.append((level, msg))

    mach = am.Machine(SCHEMA, logger=logger, log_id=False)  # LogLevel.NOTHING
    handle = bind(mach, rec.url)
    assert mach.log_level == am.LogLevel.CHANGES  # raised for Loki
    mach.add1("A")
    assert own == []  # the user asked for nothing, and gets nothing
    await handle.close()
    assert mach.log_level == am.LogLevel.NOTHING  # type: ignore[comparison-overlap]
    mach.set_log_level(am.LogLevel.CHANGES)
    mach.add1("B")
    assert own == [(am.LogLevel.CHANGES, "[state] +B")]  # the user's logger is back
    assert lines(rec) == [("info", "[state] +A")]


async def test_users_level_below_and_above_changes(receiver: MakeReceiver) -> None:
    rec = await receiver()
    own: list[str] = []
    mach = am.Machine(
        SCHEMA, logger=lambda lv, msg: own.append(msg), log_level=am.LogLevel.EXTERNAL
    )
    handle = bind(mach, rec.url)
    mach.log("mine")
    mach.add1("A")
    assert own == [f"[{mach.id[:5]}] [exter] mine"]  # only what EXTERNAL shows
    mach.set_log_level(am.LogLevel.OPS)  # the user changes it: everything is forwarded
    mach.add1("B")
    assert f"[{mach.id[:5]}] [state] +B" in own
    await handle.flush()
    assert ("info", "[state] +A") in lines(rec)
    assert ("info", "[add] B") in lines(rec)


async def test_batches(receiver: MakeReceiver) -> None:
    rec = await receiver()
    mach = am.Machine(SCHEMA)
    handle = bind(mach, rec.url, batch_size=4, flush_interval=60)
    for _ in range(5):
        mach.toggle1("A")  # 5 lines: one full batch goes without waiting for the interval
    await rec.wait_for(lambda: len(rec.requests) == 1)
    assert len(validate_push(rec.requests[0])) == 4
    await handle.flush()
    assert [len(validate_push(r)) for r in rec.requests] == [4, 1]


async def test_interval_pushes_without_flush(receiver: MakeReceiver) -> None:
    rec = await receiver()
    mach = am.Machine(SCHEMA)
    bind(mach, rec.url, flush_interval=0.05)
    mach.add1("A")
    await rec.wait_for(lambda: len(rec.requests) == 1)
    assert lines(rec) == [("info", "[state] +A")]


async def test_bound_without_a_loop_ships_once_one_runs(receiver: MakeReceiver) -> None:
    rec = await receiver()
    mach = am.Machine(SCHEMA)

    def sync_code() -> loki.LokiHandle:  # no running loop in this thread
        handle = bind(mach, rec.url)
        mach.add1("A")
        return handle

    handle = await asyncio.to_thread(sync_code)
    assert handle.client.buffered == 1
    mach.add1("B")  # logged while a loop runs: the push task starts
    await rec.wait_for(lambda: len(lines(rec)) == 2)
    assert lines(rec) == [("info", "[state] +A"), ("info", "[state] +B")]


@pytest.mark.parametrize("turns", range(12))
async def test_close_as_a_full_batch_wakes_the_push_task(
    receiver: MakeReceiver, turns: int
) -> None:
    """close() at any point of the push task's wake-up (a batch just filled, the loop turned
    ``turns`` times) ends the task and loses nothing."""
    rec = await receiver()
    mach = am.Machine(SCHEMA)
    handle = bind(mach, rec.url, batch_size=10)
    for _ in range(10):
        mach.toggle1("A")
    for _ in range(turns):
        await asyncio.sleep(0)
    async with asyncio.timeout(5):
        await handle.close()
    assert handle.client.pushed == 10
    assert len(lines(rec)) == 10


async def test_machines_share_a_client(receiver: MakeReceiver) -> None:
    rec = await receiver()
    m1, m2 = am.Machine(SCHEMA), am.Machine(SCHEMA)
    h1 = bind(m1, rec.url)
    h2 = loki.bind_loki(m2, rec.url, service="other")
    _handles.append(h2)
    assert h1.client is h2.client
    m1.add1("A")
    m2.add1("A")
    await h1.flush()
    assert len(rec.requests) == 1
    streams = {(lb["asyncmachine_id"], lb["service_name"]) for lb, _, _ in entries(rec)}
    assert streams == {(m1.id, "tests"), (m2.id, "other")}
    with pytest.raises(ValueError, match="other headers"):
        loki.bind_loki(am.Machine(SCHEMA), rec.url, headers={"X-Scope-OrgID": "t1"})


async def test_headers_go_with_every_push(receiver: MakeReceiver) -> None:
    rec = await receiver()
    mach = am.Machine(SCHEMA)
    handle = loki.bind_loki(mach, rec.url + "/loki/api/v1/push", headers={"X-Scope-OrgID": "t1"})
    _handles.append(handle)
    mach.add1("A")
    await handle.flush()
    assert rec.requests[0].headers["X-Scope-OrgID"] == "t1"
    assert rec.requests[0].path == "/loki/api/v1/push"


async def test_disposal_ships_the_last_lines_and_releases(receiver: MakeReceiver) -> None:
    rec = await receiver()
    mach = am.Machine({**SCHEMA, "Start": am.State()})
    handle = bind(mach, rec.url, flush_interval=60)
    mach.add1("Start")
    mach.dispose()  # removes Start first: one more line
    await handle.close()  # awaits the release disposal started
    assert lines(rec) == [("info", "[state] +Start"), ("info", "[state] -Start")]
    assert handle.client.buffered == 0


async def test_env(receiver: MakeReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AM_LOKI_ADDR", raising=False)
    assert loki.bind_loki_env(am.Machine(SCHEMA)) is None
    rec = await receiver()
    monkeypatch.setenv("AM_LOKI_ADDR", rec.url.removeprefix("http://"))
    monkeypatch.setenv("AM_SERVICE", "uploads")
    mach = am.Machine(SCHEMA)
    handle = loki.bind_loki_env(mach)
    assert handle is not None
    _handles.append(handle)
    mach.add1("A")
    await handle.flush()
    assert {lb["service_name"] for lb, _, _ in entries(rec)} == {"uploads"}


@pytest.mark.parametrize("addr", ["ftp://127.0.0.1:3100", "http://", ":3100"])
def test_env_bad_address(monkeypatch: pytest.MonkeyPatch, addr: str) -> None:
    monkeypatch.setenv("AM_LOKI_ADDR", addr)
    mach = am.Machine(SCHEMA)
    with pytest.raises(ValueError, match="AM_LOKI_ADDR must be"):
        loki.bind_loki_env(mach)
    assert mach.log_level == am.LogLevel.NOTHING  # nothing was tapped


def test_bad_arguments() -> None:
    mach = am.Machine(SCHEMA)
    with pytest.raises(ValueError, match="Loki url must be"):
        loki.bind_loki(mach, "127.0.0.1:3100")
    with pytest.raises(ValueError, match="batch_size"):
        loki.LokiClient("http://127.0.0.1:3100", batch_size=0)
    with pytest.raises(ValueError, match="batch_size"):
        loki.LokiClient("http://127.0.0.1:3100", batch_size=10, max_lines=5)
    with pytest.raises(ValueError, match="positive"):
        loki.LokiClient("http://127.0.0.1:3100", flush_interval=0)
    assert mach.log_level == am.LogLevel.NOTHING


# ---------------------------------------------------------------------- faults


def drop_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "dropping log lines" in r.getMessage()]


@pytest.mark.parametrize("fault", ["down", "500", "slow"])
async def test_failing_backend_bounded_and_logged_once(
    fault: str, receiver: MakeReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "asyncmachine.telemetry")
    rec = await receiver()
    url = rec.url
    if fault == "down":
        url = f"http://127.0.0.1:{free_port()}"
    elif fault == "500":
        rec.status = 500
    else:
        rec.delay = 1.0  # longer than the client's timeout
    mach = am.Machine(SCHEMA)
    handle = bind(
        mach,
        url,
        batch_size=10,
        max_lines=50,
        retries=1,
        min_backoff=0.01,
        flush_interval=0.01,
        timeout=0.05,
    )
    for _ in range(500):
        assert mach.toggle1("A") == am.Executed  # never blocked, never failing
    assert handle.client.buffered <= 50  # the memory bound
    assert handle.dropped >= 450
    await handle.flush()  # the rest fails too (retried once)
    assert handle.dropped == 500
    assert handle.client.pushed == 0
    warnings = drop_warnings(caplog)
    assert len(warnings) == 1
    assert url in warnings[0]


async def test_close_gives_up_retrying(receiver: MakeReceiver) -> None:
    """A backend that keeps failing does not hold a shutdown for the whole backoff schedule."""
    rec = await receiver()
    rec.status = 503
    mach = am.Machine(SCHEMA)
    handle = bind(mach, rec.url, retries=10, min_backoff=30.0, flush_interval=0.01)
    mach.add1("A")
    await rec.wait_for(lambda: len(rec.requests) == 1)  # failed: the retry waits 30 s
    async with asyncio.timeout(5):
        await handle.close()
    assert handle.dropped == 1
    assert len(rec.requests) == 1


async def test_500_is_retried_until_it_works(receiver: MakeReceiver) -> None:
    rec = await receiver()
    rec.status = 500
    mach = am.Machine(SCHEMA)
    handle = bind(mach, rec.url, retries=50, min_backoff=0.01, max_backoff=0.02)
    mach.add1("A")
    flushing = asyncio.ensure_future(handle.flush())
    await rec.wait_for(lambda: len(rec.requests) >= 3)  # failed pushes, retried
    rec.status = 204
    await flushing
    assert len({r.body for r in rec.requests}) == 1  # the same batch every time
    assert handle.client.pushed == 1
    assert handle.dropped == 0


async def test_400_drops_the_batch_at_once(
    receiver: MakeReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "asyncmachine.telemetry")
    rec = await receiver()
    rec.status = 400
    mach = am.Machine(SCHEMA)
    handle = bind(mach, rec.url, retries=5, min_backoff=0.01)
    mach.add1("A")
    mach.add1("B")
    await handle.flush()
    assert len(rec.requests) == 1  # not retried
    assert handle.dropped == 2
    assert "HTTP 400" in drop_warnings(caplog)[0]
    rec.status = 204
    mach.remove1("A")
    await handle.flush()
    assert handle.client.pushed == 1


async def test_slow_backend_never_blocks_a_transition(
    receiver: MakeReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "asyncmachine.telemetry")
    rec = await receiver()
    rec.delay = 1.0
    mach = am.Machine(SCHEMA)
    handle = bind(mach, rec.url, timeout=0.1, retries=1, min_backoff=0.01, max_lines=1000)
    mach.add1("A")
    flushing = asyncio.ensure_future(handle.flush())
    await asyncio.sleep(0.05)  # the push is on its way, waiting for the slow receiver
    for _ in range(100):
        assert mach.toggle1("A") == am.Executed
    assert rec.requests == []  # still unanswered
    assert handle.client.buffered == 100  # the lines wait in the buffer meanwhile
    await flushing  # timed out twice: the batch is dropped, the new lines too
    assert handle.dropped == 101
    assert len(drop_warnings(caplog)) == 1
    assert re.search(r"failed after 2 attempts", drop_warnings(caplog)[0])
